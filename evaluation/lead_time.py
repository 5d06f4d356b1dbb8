"""Lead time: how early a threshold on a horizon's risk flags the patients who will have the event.

The reviewers' first question of a dynamic risk score is not its AUROC but "first score above
threshold": when a team acts on every score at or above a threshold, how many days before the
event did the first alert come, how many events were flagged before their day, and how many
patients are flagged per patient who has the event (the work the alerts make): the "first
score above threshold" analysis asked of any early-warning score before a ward relies on it.

Definitions, for one horizon's risk on the held-out landmark rows (a patient has a row on each
landmark day L while alive and event-free, :mod:`features.landmarks`; ``event_day`` E from the
outcome table, NaN without the event, :mod:`icans.horizons`):

* an **alert** is a row whose risk is at or above the threshold; a patient's **first alert** is
  the earliest landmark day with one;
* an **event patient** has the event by day 28; it is **alerted before the event** when its first
  alert came on a landmark day before E (every row is before E by construction), and its
  **lead time** is E minus the first alert's day, in days;
* **alerted patients per event patient alerted**: all patients alerted at least once over the
  event patients among them (the number needed to alert; 1 is a perfect alarm);
* per landmark day L, with the horizon's window (``Horizon.event``): the rows alerted, the
  share of rows with the event in the window that were alerted (sensitivity on that day), the
  share of alerted rows with it (positive predictive value), and the median days from L to the
  event of the alerted rows that have it.

Only the days the model was scored on count: with landmarks 0, 1, 3, 5, 7, 10, 14 an alert
that a daily score would give on day 2 is first seen on day 3.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from icans.horizons import horizon


def lead_time(
    patient_id: np.ndarray,
    landmark_day: np.ndarray,
    risk: np.ndarray,
    event_day: np.ndarray,
    threshold: float,
) -> dict[str, float]:
    """Patient-level figures of alerting on ``risk >= threshold`` (module docstring): event
    patients, those alerted before the event and their share, the median and quartiles of the
    lead time in days, patients alerted, alerted patients without the event, and alerted
    patients per event patient alerted (NaN when no event patient was alerted)."""
    patients, index = np.unique(np.asarray(patient_id), return_inverse=True)
    day = np.asarray(landmark_day, dtype=float)
    alert = np.asarray(risk, dtype=float) >= threshold
    first_alert = np.full(len(patients), np.inf)  # inf: never alerted
    np.minimum.at(first_alert, index[alert], day[alert])
    event = np.full(len(patients), np.nan)
    event[index] = np.asarray(event_day, dtype=float)  # one event day per patient
    has_event = ~np.isnan(event)
    early = has_event & (first_alert < event)
    lead = event[early] - first_alert[early]
    n_events, n_early = int(has_event.sum()), int(early.sum())
    alerted = int(np.isfinite(first_alert).sum())
    q1, median, q3 = np.percentile(lead, [25, 50, 75]) if len(lead) else (np.nan,) * 3
    return {
        "threshold": float(threshold),
        "event_patients": n_events,
        "alerted_before_event": n_early,
        "share_alerted_before_event": n_early / n_events if n_events else np.nan,
        "lead_time_median_days": float(median),
        "lead_time_q1_days": float(q1),
        "lead_time_q3_days": float(q3),
        "alerted_patients": alerted,
        "alerted_without_event": alerted - n_early,
        "alerted_per_event_alerted": alerted / n_early if n_early else np.nan,
    }


def lead_time_by_landmark(
    landmark_day: np.ndarray,
    risk: np.ndarray,
    event_day: np.ndarray,
    threshold: float,
    horizon_name: str,
) -> pd.DataFrame:
    """Per landmark day: rows, rows with the event in the window of ``horizon_name``, rows
    alerted, the sensitivity and positive predictive value of the alert for that window, and
    the median days from the landmark to the event of the alerted rows that have it."""
    day = np.asarray(landmark_day, dtype=float)
    event_day = np.asarray(event_day, dtype=float)
    alert = np.asarray(risk, dtype=float) >= threshold
    in_window = horizon(horizon_name).event(event_day, day.astype(int))
    rows = []
    for d in np.unique(day):
        at = day == d
        hits = at & alert & in_window
        rows.append(
            {
                "landmark_day": int(d),
                "rows": int(at.sum()),
                "events_in_window": int((at & in_window).sum()),
                "alerts": int((at & alert).sum()),
                "sensitivity": hits.sum() / (at & in_window).sum()
                if (at & in_window).any()
                else np.nan,
                "ppv": hits.sum() / (at & alert).sum() if (at & alert).any() else np.nan,
                "median_days_to_event": float(np.median(event_day[hits] - d))
                if hits.any()
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


def lead_time_curve(
    patient_id: np.ndarray,
    landmark_day: np.ndarray,
    risk: np.ndarray,
    event_day: np.ndarray,
    thresholds: np.ndarray,
) -> pd.DataFrame:
    """:func:`lead_time` across ``thresholds`` (one row each): the trade-off a team chooses
    its threshold on, drawn by the report."""
    return pd.DataFrame(
        [lead_time(patient_id, landmark_day, risk, event_day, float(t)) for t in thresholds]
    )
