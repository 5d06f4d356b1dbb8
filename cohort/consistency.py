"""Checks across a cohort's tables: every row belongs to a patient, and the outcome columns say
what the daily course shows.

The table schemas (:mod:`cohort.schema`) check each value alone; a real cohort can still be
wrong as a whole: course rows for a patient nobody listed, a patient without an outcome row,
``severe_icans`` false beside a grade-3 day, an ``event_day`` after the day the course already
meets the target, course rows after the patient's death. Each such contradiction becomes an
:class:`~icans.errors.InvalidInputError` naming the table, the patient and row, the field, the
value and the rule, and all are reported together.

The rules are the contract's own definitions, the ones the generator derives its outcome
columns by (:mod:`data.synthetic.outcomes`), so every generated cohort passes them:

* ``severe_icans``: the worst ICANS grade by day 28 is >= 3 (ASTCT 2019; grade 5 is death from
  ICANS);
* ``steroid_refractory_icans``: :func:`icans.steroids.refractory_day` on the grades, the
  corticosteroid doses and, where the cohort has them (optional columns), the anakinra and
  intrathecal doses: ICANS grade >= 2 (and not below the start grade) 48 and 72 h after
  corticosteroids started, or second-line therapy on a day after the start;
* ``severe_or_refractory_icans``: either; ``event_day``: the first day either is met;
* ``icans_onset_day``: the first day with grade >= 1;
* nothing is observed after ``death_day``, and an event can only precede a death.

And the daily charted scores against the patient and the day (:mod:`icans.charting`, the
rules the endpoint applies to a request): an ICE score only from 12 years and a CAPD score only
below (the contract's ``age_window``, ASTCT 2019), and a day's ICANS grade at least the grade
its ICE or CAPD score gives on its own (the ICANS grade is the worst of its domains).

The checks read values as validated or straight from the files (an unreadable value counts
as not recorded), so a cohort's value errors and its contradictions are reported together.

Course days may be missing (not every day of a real course is charted), so a rule is broken
only by what was observed: a grade 3 that was recorded, a grade 1 recorded on the stated event
day, persistence read on both recorded readings of a start whose day before was recorded (an
uncharted earlier day could otherwise be the true start), second-line therapy recorded on a day
after an observed start (after the true start too, which is never later). A cohort without the
anakinra and intrathecal columns cannot show an escalation, so a stated event on a day the
course cannot explain is then an error only if the cohort calls the ICANS not refractory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
import pandas as pd

from icans.charting import (
    AGE_WINDOWED,
    GRADE_BOUNDING,
    age_window_rule,
    domain_grade,
    grade_floor_rule,
    in_age_window,
)
from icans.contract import FIELDS, HORIZON_DAYS
from icans.errors import InvalidInputError
from icans.steroids import (
    MIN_REFRACTORY_GRADE,
    PERSISTENCE_DAYS,
    escalation_day,
    first_day,
    persistence_day,
    persistence_threshold,
    steroid_start_day,
)

N_DAYS = HORIZON_DAYS + 1


def _where(table: str, frame: pd.DataFrame, pos: int) -> str:
    return f"{table}: patient {frame['patient_id'].iloc[pos]} (row {frame.index[pos]})"


def _course(daily: pd.DataFrame, column: str, patients: pd.Index) -> np.ndarray | None:
    """Patients x days matrix of one daily column (NaN where not recorded); None if absent."""
    if column not in daily.columns:
        return None
    out = np.full((len(patients), N_DAYS), np.nan)
    rows = patients.get_indexer(cast(pd.Series, daily["patient_id"]))
    day = numeric(cast(pd.Series, daily["day"]))
    value = numeric(cast(pd.Series, daily[column]))
    ok = (rows >= 0) & (day >= 0) & (day < N_DAYS) & (day % 1 == 0)
    out[rows[ok], day[ok].astype(int)] = value[ok]
    return out


_WORDS = {"true": 1.0, "false": 0.0}


def numeric(values: pd.Series) -> np.ndarray:
    """Numbers of a column as floats, whether validated or as read from a file: booleans and
    the words true/false become 1/0, anything unreadable NaN (the table schema reports it)."""
    if values.dtype == object:
        values = values.map(lambda v: _WORDS.get(v.strip().lower(), v) if isinstance(v, str) else v)
    return cast(pd.Series, pd.to_numeric(values, errors="coerce")).to_numpy(dtype=float)


def referential_errors(tables: dict[str, pd.DataFrame]) -> list[InvalidInputError]:
    """Rows of a patient the patients table does not list; patients without an outcome row."""
    known = set(tables["patients"]["patient_id"].astype(str))
    with_outcome = set(tables["outcomes"]["patient_id"].astype(str))
    checks = [
        (name, known, "a patient listed in the patients table")
        for name in ("daily", "measurements", "outcomes")
    ] + [("patients", with_outcome, "a patient with a row in the outcomes table")]
    out = []
    for name, allowed, rule in checks:
        ids = cast(pd.Series, tables[name]["patient_id"])
        for pos in np.flatnonzero(~ids.astype(str).isin(allowed).to_numpy()):
            where = f"{name}: row {tables[name].index[pos]}"
            out.append(InvalidInputError("patient_id", ids.iloc[pos], rule, where=where))
    return out


def outcome_errors(tables: dict[str, pd.DataFrame]) -> list[InvalidInputError]:
    """The outcome columns against each other and against the observed course."""
    outcomes, daily = tables["outcomes"], tables["daily"]
    ids = pd.Index(outcomes["patient_id"].astype(str))
    daily = daily.assign(patient_id=daily["patient_id"].astype(str))
    grade = _course(daily, "icans_grade", ids)
    mg = _course(daily, "dexamethasone_mg", ids)
    second_line = {c: _course(daily, c, ids) for c in SECOND_LINE_COLUMNS}
    assert grade is not None  # cohort_errors runs these checks only with an icans_grade column
    observed_max = np.nanmax(np.where(np.isnan(grade), -1, grade), axis=1)
    first_severe = first_day(grade >= 3)
    first_any = first_day(grade >= 1)
    steroids = _Refractory(grade, mg, second_line) if mg is not None else None
    refractory = np.full(len(ids), np.nan) if steroids is None else steroids.day
    expected_event = np.fmin(first_severe, refractory)
    last_day = _last_recorded([daily, tables["measurements"]], ids)

    def column(name: str) -> np.ndarray | None:
        if name not in outcomes.columns:
            return None
        return numeric(cast(pd.Series, outcomes[name]))

    target, event_day = column("severe_or_refractory_icans"), column("event_day")
    severe, refr = column("severe_icans"), column("steroid_refractory_icans")
    max_grade, onset = column("icans_max_grade"), column("icans_onset_day")
    death = column("death_day")
    cause = outcomes["death_cause"] if "death_cause" in outcomes.columns else None

    out: list[InvalidInputError] = []

    def broken(
        mask: np.ndarray,
        field: str,
        values: np.ndarray | None,
        rule: str | Callable[[int], str],
    ) -> None:
        for i in np.flatnonzero(mask).tolist():
            value = None if values is None else _plain(values[i], FIELDS[field].kind)
            text = rule(i) if callable(rule) else rule
            out.append(InvalidInputError(field, value, text, where=_where("outcomes", outcomes, i)))

    def day_text(x: float) -> str:
        return f"day {int(x)}"

    if max_grade is not None:
        broken(
            max_grade < observed_max,
            "icans_max_grade",
            max_grade,
            lambda i: f"at least the worst grade in the course ({int(observed_max[i])})",
        )
    if severe is not None:
        broken(
            (severe == 0) & (observed_max >= 3),
            "severe_icans",
            severe,
            lambda i: (
                f"true: the course shows ICANS grade {int(observed_max[i])} "
                f"(first on {day_text(first_severe[i])}); severe is a worst grade >= 3"
            ),
        )
        if max_grade is not None:
            broken(
                ~np.isnan(severe) & ~np.isnan(max_grade) & ((severe == 1) != (max_grade >= 3)),
                "severe_icans",
                severe,
                lambda i: (
                    f"{'true' if max_grade[i] >= 3 else 'false'}, as icans_max_grade is "
                    f"{int(max_grade[i])} (severe is a worst grade >= 3)"
                ),
            )
    if refr is not None and steroids is not None:
        broken(
            (refr == 0) & ~np.isnan(refractory),
            "steroid_refractory_icans",
            refr,
            lambda i: "true: " + steroids.reason(i),
        )
    if target is not None:
        broken(
            (target == 0) & ~np.isnan(expected_event),
            "severe_or_refractory_icans",
            target,
            lambda i: f"true: the course meets the target on {day_text(expected_event[i])}",
        )
        for name, part in (("severe_icans", severe), ("steroid_refractory_icans", refr)):
            if part is not None:
                broken(
                    (target == 0) & (part == 1),
                    "severe_or_refractory_icans",
                    target,
                    f"true when {name} is true (the target is severe or refractory ICANS)",
                )
        if severe is not None and refr is not None:
            broken(
                (target == 1) & (severe == 0) & (refr == 0),
                "severe_or_refractory_icans",
                target,
                "false when severe_icans and steroid_refractory_icans are both false",
            )
    if event_day is not None and target is not None:
        broken(
            (target == 0) & ~np.isnan(event_day),
            "event_day",
            event_day,
            "empty when severe_or_refractory_icans is false",
        )
        broken(
            (target == 1) & np.isnan(event_day),
            "event_day",
            event_day,
            "the first day the target was met, when severe_or_refractory_icans is true",
        )
        broken(
            event_day > expected_event,
            "event_day",
            event_day,
            lambda i: (
                f"at most {day_text(expected_event[i])}: the course already meets the "
                "target that day (its first grade >= 3 or the day it became steroid-refractory)"
            ),
        )
        on_day = _on_day(grade, event_day)
        # a day below grade 3 can still be a refractory day the course does not show: ruled
        # out only when the cohort says the ICANS was not refractory, or the recorded course
        # decides that day (and it was not one)
        ruled_out = (
            np.zeros(len(ids), dtype=bool) if steroids is None else steroids.decided(event_day)
        )
        if refr is not None:
            ruled_out |= refr == 0
        broken(
            (event_day < np.nan_to_num(expected_event, nan=np.inf)) & (on_day < 3) & ruled_out,
            "event_day",
            event_day,
            lambda i: (
                f"a day the target was met; the course records ICANS grade "
                f"{int(on_day[i])} that day and no steroid-refractory ICANS"
            ),
        )
    if onset is not None:
        broken(
            onset > first_any,
            "icans_onset_day",
            onset,
            lambda i: f"at most {day_text(first_any[i])}, the first day with ICANS grade >= 1",
        )
        broken(
            np.isnan(onset) & ~np.isnan(first_any),
            "icans_onset_day",
            onset,
            lambda i: f"{day_text(first_any[i])}, the first day with ICANS grade >= 1",
        )
        broken(
            _on_day(grade, onset) == 0,
            "icans_onset_day",
            onset,
            "a day with ICANS grade >= 1; the course records grade 0 that day",
        )
    if death is not None:
        broken(
            last_day > death,
            "death_day",
            death,
            lambda i: (
                f"not before the last day with a course row or a measurement "
                f"({day_text(last_day[i])}): nothing is observed after a death"
            ),
        )
        if event_day is not None:
            broken(
                event_day > death,
                "event_day",
                event_day,
                lambda i: f"at most the death day ({day_text(death[i])})",
            )
        if cause is not None:
            has_cause = cause.notna().to_numpy()
            broken(
                np.isnan(death) & has_cause,
                "death_cause",
                cause.to_numpy(),
                "empty when death_day is empty",
            )
            broken(
                ~np.isnan(death) & ~has_cause,
                "death_cause",
                cause.to_numpy(),
                "a cause when death_day is given",
            )
    return out


def charting_errors(tables: dict[str, pd.DataFrame]) -> list[InvalidInputError]:
    """Daily scores that do not fit the patient's age, and ICANS grades below their day's
    score's domain grade (:mod:`icans.charting`); a row is judged only on values that are
    readable and valid by their own rules."""
    daily, patients = tables["daily"], tables["patients"]
    out: list[InvalidInputError] = []
    if "age_years" in patients.columns:
        age_by_id = pd.Series(
            numeric(cast(pd.Series, patients["age_years"])),
            index=patients["patient_id"].astype(str).to_numpy(),
        )
        age_by_id = cast(pd.Series, age_by_id[~age_by_id.index.duplicated()])
        age = age_by_id.reindex(daily["patient_id"].astype(str).to_numpy()).to_numpy(dtype=float)
        for spec in AGE_WINDOWED:
            if spec.table_column not in daily.columns:
                continue
            value = numeric(cast(pd.Series, daily[spec.table_column]))
            for pos in np.flatnonzero(~np.isnan(value) & ~in_age_window(spec, age)).tolist():
                out.append(
                    InvalidInputError(
                        spec.table_column,
                        _plain(value[pos], "integer"),
                        age_window_rule(spec, age[pos]),
                        where=_where("daily", daily, pos),
                    )
                )
    grade = numeric(cast(pd.Series, daily["icans_grade"]))
    for spec in GRADE_BOUNDING:
        if spec.table_column not in daily.columns:
            continue
        score = numeric(cast(pd.Series, daily[spec.table_column]))
        floor = domain_grade(spec, score)
        for pos in np.flatnonzero(grade < floor).tolist():  # False where either is NaN
            out.append(
                InvalidInputError(
                    "icans_grade",
                    _plain(grade[pos], "integer"),
                    grade_floor_rule(spec, score[pos], floor[pos]),
                    where=_where("daily", daily, pos),
                )
            )
    return out


# Daily columns of second-line therapy for ICANS (optional): the contract's anakinra and
# intrathecal series, whose use after the steroid start is refractory ICANS (icans.steroids).
SECOND_LINE_COLUMNS = tuple(
    FIELDS[name].column for name in ("anakinra_doses_by_day", "intrathecal_doses_by_day")
)


class _Refractory:
    """:func:`icans.steroids.refractory_day` on a cohort's recorded course, and what the
    record decides.

    Persistence is judged only where the start it reads from is known to be the start: on day
    0, or with the day before it recorded (grade and dose); a start on an uncharted day would
    make a later day look like the start and misjudge the readings. Escalation needs no such
    care: the observed start is never earlier than the true one, so a second-line dose after
    it is after the true start too. ``second_line`` maps each daily column to its matrix, None
    where the cohort lacks the column."""

    def __init__(
        self, grade: np.ndarray, mg: np.ndarray, second_line: dict[str, np.ndarray | None]
    ) -> None:
        self.grade, self.mg = grade, mg
        self.start = steroid_start_day(grade, mg)
        before = _on_day(grade, self.start - 1) + _on_day(mg, self.start - 1)  # NaN if missing
        self.known = (self.start == 0) | ~np.isnan(before)
        self.persisted = np.where(self.known, persistence_day(grade, mg), np.nan)
        self.second_line = {c: m for c, m in second_line.items() if m is not None}
        given = list(self.second_line.values())
        if given:
            stacked = np.stack(given)
            # a day's second-line doses: their sum where any was recorded, NaN where none was
            self.doses = np.where(np.isnan(stacked).all(axis=0), np.nan, np.nansum(stacked, axis=0))
            self.escalated = escalation_day(grade, mg, self.doses)
        else:
            self.doses = np.full_like(grade, np.nan)
            self.escalated = np.full(len(grade), np.nan)
        self.day = np.fmin(self.persisted, self.escalated)

    def reason(self, i: int) -> str:
        """Why row ``i`` is steroid-refractory, in words (the row has a refractory day)."""
        start = int(self.start[i])
        started = f"corticosteroids for ICANS started on day {start} (icans.steroids)"
        if np.isnan(self.escalated[i]) or self.persisted[i] <= self.escalated[i]:
            threshold = float(persistence_threshold(self.grade[i, start]))
            readings = " and ".join(f"day {start + k}" for k in PERSISTENCE_DAYS)
            return (
                f"ICANS grade >= {threshold:g} (the start grade, and at least "
                f"{MIN_REFRACTORY_GRADE}) persisted 48 and 72 h after {started}, on {readings}: "
                "refractory on day "
                f"{int(self.persisted[i])}"
            )
        day = int(self.escalated[i])
        given = [c for c, m in self.second_line.items() if m[i, day] > 0]
        return (
            f"{' and '.join(given)} > 0 on day {day}, after {started}: escalation to "
            f"second-line therapy, refractory on day {day}"
        )

    def decided(self, day: np.ndarray) -> np.ndarray:
        """Where the recorded course decides whether ``day`` (one per row) could be a refractory
        day: a known start, and neither an undecided persistence reading (start + 3 with a
        reading missing) nor an unrecorded second-line dose after the start fall on it."""
        unread = np.zeros(len(day), dtype=bool)
        for k in PERSISTENCE_DAYS:
            unread |= np.isnan(_on_day(self.grade, self.start + k))
        undecided_persistence = (day == self.start + PERSISTENCE_DAYS[-1]) & unread
        undecided_escalation = (day > self.start) & np.isnan(_on_day(self.doses, day))
        return self.known & ~undecided_persistence & ~undecided_escalation


def _on_day(matrix: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Each row's value on its own day (NaN where the day is missing or not recorded)."""
    ok = ~np.isnan(day) & (day >= 0) & (day < matrix.shape[1])
    at = np.where(ok, day, 0).astype(int)
    return np.where(ok, matrix[np.arange(len(matrix)), at], np.nan)


def _last_recorded(frames: list[pd.DataFrame], ids: pd.Index) -> np.ndarray:
    """Each patient's last day with a course row or a measurement (NaN if none)."""
    both = pd.concat(
        [pd.DataFrame({"patient_id": f["patient_id"].astype(str), "day": f["day"]}) for f in frames]
    )
    day = numeric(cast(pd.Series, both["day"]))
    last = cast(pd.Series, pd.Series(day, index=both.index).groupby(both["patient_id"]).max())
    return last.reindex(ids).to_numpy(dtype=float)


def _plain(value, kind: str):
    """A cell as the file would show it: empty as None, booleans as true/false, whole numbers
    without a fraction."""
    if isinstance(value, float) and np.isnan(value):
        return None
    if kind == "boolean":
        return bool(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Columns the checks across tables cannot do without (the table schemas report them missing).
_NEEDED = {
    "patients": ("patient_id",),
    "daily": ("patient_id", "day", "icans_grade"),
    "measurements": ("patient_id", "day"),
    "outcomes": ("patient_id",),
}


def cohort_errors(tables: dict[str, pd.DataFrame]) -> list[InvalidInputError]:
    """Every cross-table problem, referential first; none while a table lacks a column the
    checks need (its schema reports that column missing)."""
    if any(c not in tables[t].columns for t, needed in _NEEDED.items() for c in needed):
        return []
    errors = referential_errors(tables)
    return errors + outcome_errors(tables) + charting_errors(tables)
