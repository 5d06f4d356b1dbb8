"""Lead time of alerts on a horizon's risk (``evaluation.lead_time``), on courses written out by
hand: each expected figure is counted from the table in the test, not from the code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.lead_time import lead_time, lead_time_by_landmark, lead_time_curve

NAN = np.nan
# patient, landmark day, risk, event day (NaN: no event by day 28)
ROWS = [
    ("a", 0, 0.05, 9.0),  # event on day 9: first alert on day 3 -> 6 days ahead
    ("a", 1, 0.10, 9.0),
    ("a", 3, 0.40, 9.0),
    ("a", 5, 0.20, 9.0),  # below again: the first alert still counts
    ("a", 7, 0.60, 9.0),
    ("b", 0, 0.02, 4.0),  # event on day 4, never alerted: missed
    ("b", 1, 0.05, 4.0),
    ("b", 3, 0.15, 4.0),
    ("c", 0, 0.50, 2.0),  # event on day 2, alerted on day 0 -> 2 days ahead
    ("c", 1, 0.70, 2.0),
    ("d", 0, 0.35, NAN),  # no event, alerted on day 0: a false alarm
    ("d", 1, 0.05, NAN),
    ("e", 0, 0.01, NAN),  # no event, never alerted
    ("e", 1, 0.02, NAN),
    ("f", 5, 0.90, 14.0),  # first scored on day 5 (an imported cohort's landmarks), 9 days ahead
]
FRAME = pd.DataFrame(ROWS, columns=["patient", "day", "risk", "event_day"])


def _lead(threshold: float) -> dict:
    return lead_time(
        FRAME["patient"].to_numpy(),
        FRAME["day"].to_numpy(),
        FRAME["risk"].to_numpy(),
        FRAME["event_day"].to_numpy(),
        threshold,
    )


def test_first_alert_lead_times_and_alerts_per_event():
    got = _lead(0.30)
    # events: a, b, c, f; alerted before the event: a (day 3), c (day 0), f (day 5)
    assert got["event_patients"] == 4
    assert got["alerted_before_event"] == 3
    assert got["share_alerted_before_event"] == pytest.approx(3 / 4)
    # lead times 9-3=6, 2-0=2, 14-5=9 -> median 6, quartiles by numpy's linear rule: 4, 7.5
    assert got["lead_time_median_days"] == 6.0
    assert (got["lead_time_q1_days"], got["lead_time_q3_days"]) == (4.0, 7.5)
    # alerted: a, c, d, f; d without the event
    assert got["alerted_patients"] == 4
    assert got["alerted_without_event"] == 1
    assert got["alerted_per_event_alerted"] == pytest.approx(4 / 3)


def test_a_threshold_no_one_reaches_alerts_no_one():
    got = _lead(0.95)
    assert got["alerted_patients"] == 0 and got["alerted_before_event"] == 0
    assert got["share_alerted_before_event"] == 0.0
    assert np.isnan(got["lead_time_median_days"]) and np.isnan(got["alerted_per_event_alerted"])


def test_per_landmark_the_alert_is_judged_on_the_horizons_window():
    table = lead_time_by_landmark(
        FRAME["day"].to_numpy(),
        FRAME["risk"].to_numpy(),
        FRAME["event_day"].to_numpy(),
        0.30,
        "72h",
    ).set_index("landmark_day")
    # day 0: rows a b c d e; events within days 1-3: c (day 2); alerts: c, d
    assert table.loc[0, ["rows", "events_in_window", "alerts"]].tolist() == [5, 1, 2]
    assert table.loc[0, "sensitivity"] == 1.0 and table.loc[0, "ppv"] == 0.5
    assert table.loc[0, "median_days_to_event"] == 2.0
    # day 1: rows a b c d e; window days 2-4: b (4), c (2); alert: c only
    assert table.loc[1, ["rows", "events_in_window", "alerts"]].tolist() == [5, 2, 1]
    assert table.loc[1, "sensitivity"] == 0.5 and table.loc[1, "ppv"] == 1.0
    # day 3: rows a b; window days 4-6: b (4), not alerted; a alerted, its event (9) outside
    assert table.loc[3, "sensitivity"] == 0.0 and table.loc[3, "ppv"] == 0.0
    assert np.isnan(table.loc[3, "median_days_to_event"])
    # day 7: only a, alerted, event on day 9 within 72 h
    day7 = table.loc[7, ["events_in_window", "alerts", "median_days_to_event"]]
    assert day7.tolist() == [1, 1, 2]


def test_the_curve_trades_alerts_for_missed_events():
    curve = lead_time_curve(
        FRAME["patient"].to_numpy(),
        FRAME["day"].to_numpy(),
        FRAME["risk"].to_numpy(),
        FRAME["event_day"].to_numpy(),
        np.array([0.0, 0.30, 0.95]),
    )
    assert curve["threshold"].tolist() == [0.0, 0.30, 0.95]
    # at 0 every patient is alerted on their first row: all 4 events ahead, 6 patients alerted
    assert curve["alerted_before_event"].tolist() == [4, 3, 0]
    assert curve["alerted_patients"].tolist() == [6, 4, 0]
