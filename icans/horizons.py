"""The horizons a risk is given for: the next 72 hours, the next 7 days, and to day 28.

One definition, used wherever an outcome per horizon is needed (the landmark rows' labels,
evaluation, the true risk, the service's answer). Why these three: the decisions a CAR-T team
makes look at different spans (icans-facts-3, "decision horizons"). Prophylaxis (anakinra,
dexamethasone) is decided at infusion, for the whole course: **day 28**, the target the product
has always estimated. Admission, transfer to intensive care and escalation of corticosteroids
are decided for the next 24-72 hours (in an outpatient series 41% of admissions fell on days
0-3 and 38% on days 4-7): **72 hours**. The published dynamic model forecast severe ICANS 1-7
days ahead (Amidi, J Immunother Cancer 2022;10:e005459): **7 days**.

Reading, for a prediction on day L (the data of days 0..L) and the event day E (the first day
the patient meets the target: severe or steroid-refractory ICANS, :mod:`icans.steroids`):

* a horizon of ``days`` d is the event on days L+1 .. min(L + d, 28): 72 hours after day L are
  days L+1, L+2 and L+3 (a day's grade is the day's worst, so "within 72 hours" is "within the
  next three charted days");
* every horizon ends by day 28, the end of follow-up of the target (the ASTCT grading and the
  cohorts record days 0-28): from day 26 on, the 72-hour window is the days left to day 28, and
  on day 27 the three horizons are one;
* **competing deaths** as for day 28: a patient who dies of another cause before the event has
  no event in any horizon (the cumulative incidence with competing deaths: what will happen,
  which is what the decisions need; the data card says why censoring would overstate the
  risk). A patient is only scored while alive and event-free on day L.

Since each window contains the shorter ones, the event within 72 hours implies it within 7
days, which implies it by day 28: ``event(72 h) <= event(7 d) <= event(day 28)`` on every row,
and so for their probabilities. Outcomes are read from a cohort's ``event_day`` alone: an
imported cohort gets every horizon without new columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from icans.errors import InvalidInputError

LAST_DAY = 28
"""The last day of follow-up of the target (ASTCT grades are recorded on days 0-28)."""


@dataclass(frozen=True)
class Horizon:
    """A span after the prediction day: ``days`` days (None: to :data:`LAST_DAY`)."""

    name: str  # the key in responses, logs and metrics
    days: int | None
    label: str  # how a clinician reads it

    def end_day(self, landmark: np.ndarray | int) -> np.ndarray:
        """The last day of the window after prediction day ``landmark`` (per row)."""
        landmark = np.asarray(landmark)
        if self.days is None:
            return np.full(landmark.shape, LAST_DAY)
        return np.minimum(landmark + self.days, LAST_DAY)

    def window(self, landmark: np.ndarray | int) -> np.ndarray:
        """The window's length in days after prediction day ``landmark`` (per row): ``days``,
        or fewer where day 28 comes first; 28 - L for the day-28 horizon."""
        return self.end_day(landmark) - np.asarray(landmark)

    def event(self, event_day: np.ndarray, landmark: np.ndarray | int) -> np.ndarray:
        """Per row, whether the event falls in the window after ``landmark``: on days
        ``landmark + 1 .. end_day``. ``event_day`` NaN: no event by day 28 (or a competing
        death before it)."""
        event_day = np.asarray(event_day, dtype=float)
        with np.errstate(invalid="ignore"):  # NaN compares False: no event
            return (event_day > landmark) & (event_day <= self.end_day(landmark))


HORIZONS = (
    Horizon("72h", 3, "within the next 72 hours"),
    Horizon("7d", 7, "within the next 7 days"),
    Horizon("day28", None, "by day 28"),
)
"""Shortest first: each window contains the ones before it."""

HORIZON_NAMES = tuple(h.name for h in HORIZONS)
TARGET_HORIZON = HORIZONS[-1]
"""Day 28: the product's target before horizons, which every model keeps estimating."""


def horizon(name: str) -> Horizon:
    """The horizon called ``name``; an unknown name is refused, naming the known ones."""
    for h in HORIZONS:
        if h.name == name:
            return h
    raise InvalidInputError("horizon", name, "one of " + ", ".join(HORIZON_NAMES))


def check_horizons(names) -> tuple[str, ...]:
    """``names`` as horizons a model is fitted for: known (:func:`horizon`), each once, in
    :data:`HORIZONS` order, the target (day 28) among them; refused otherwise, naming the rule."""
    names = tuple(names)
    for name in names:
        horizon(name)
    ordered = tuple(name for name in HORIZON_NAMES if name in names)
    if ordered != names or TARGET_HORIZON.name not in names:
        raise InvalidInputError(
            "horizons",
            list(names),
            f"each at most once, shortest first ({', '.join(HORIZON_NAMES)}), "
            f"{TARGET_HORIZON.name} among them",
        )
    return names


def horizon_events(event_day: np.ndarray, landmark: np.ndarray | int) -> dict[str, np.ndarray]:
    """Every horizon's event per row, by name (shortest first)."""
    return {h.name: h.event(event_day, landmark) for h in HORIZONS}
