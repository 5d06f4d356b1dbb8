"""The outcomes file of ``icans monitor``: its format, every rule a row can break (all reported
at once, naming file, line, field, value and rule), and the join to the prediction log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from icans.errors import InvalidCohortError, InvalidInputError
from monitoring.by_horizon import horizon_results
from monitoring.outcomes import join_outcomes, join_summary, read_outcomes


def _log(ids: list[str], day: str = "2026-03-01") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": [f"{day}T10:{k:02d}:00+00:00" for k in range(len(ids))],
            "request_id": ids,
            "model_version": "1",
            "landmark_day": 3,
            "probability": np.linspace(0.1, 0.5, len(ids)),
        }
    )


def test_csv_and_parquet_read_alike_with_optional_time(tmp_path):
    csv = tmp_path / "o.csv"
    csv.write_text(
        "request_id,outcome,outcome_known_at,comment\n"
        "r1,1,2026-03-29T10:00:00+01:00,x\n"
        "r2,0,,\n"
        "r3,true,2026-03-30T00:00:00,\n"
    )
    frame = read_outcomes(csv)
    assert list(frame["request_id"]) == ["r1", "r2", "r3"]
    assert list(frame["outcome"]) == [1, 0, 1]
    known = frame["outcome_known_at"]
    assert known[0] == pd.Timestamp("2026-03-29T09:00:00Z")  # converted to UTC
    assert pd.isna(known[1])
    assert known[2] == pd.Timestamp("2026-03-30T00:00:00Z")  # no zone: UTC
    parquet = tmp_path / "o.parquet"
    pd.DataFrame({"request_id": ["r1", "r2"], "outcome": [1, 0]}).to_parquet(parquet)
    frame = read_outcomes(parquet)
    assert list(frame["outcome"]) == [1, 0] and frame["outcome_known_at"].isna().all()


def test_every_bad_row_is_reported_at_once_with_line_field_value_and_rule(tmp_path):
    path = tmp_path / "outcomes.csv"
    path.write_text(
        "request_id,outcome,outcome_known_at\n"
        "r1,1,2026-03-29\n"  # line 2: fine
        "r1,0,\n"  # line 3: duplicate id
        ",1,\n"  # line 4: no id
        "r4,2,\n"  # line 5: outcome 2
        "r5,,\n"  # line 6: outcome missing
        "r6,1,next week\n"  # line 7: bad time
    )
    with pytest.raises(InvalidCohortError) as info:
        read_outcomes(path)
    found = {(e.where, e.field, e.value) for e in info.value.errors}
    assert found == {
        ("outcomes.csv line 3", "request_id", "r1"),
        ("outcomes.csv line 4", "request_id", ""),
        ("outcomes.csv line 5", "outcome", "2"),
        ("outcomes.csv line 6", "outcome", ""),
        ("outcomes.csv line 7", "outcome_known_at", "next week"),
    }
    message = str(info.value)
    assert "5 invalid value(s)" in message
    assert "one outcome per prediction (also on outcomes.csv line 2)" in message
    assert "outcome='2' is invalid: expected 0 or 1" in message


@pytest.mark.parametrize(
    ("name", "content", "field", "rule"),
    [
        ("o.txt", "request_id,outcome\n", "outcomes", "a .csv or .parquet file"),
        ("o.csv", None, "outcomes", "an existing outcomes file"),
        ("o.csv", "id,label\nr1,1\n", "outcomes", "missing: request_id, outcome"),
    ],
)
def test_a_file_that_is_not_an_outcomes_file_is_named(tmp_path, name, content, field, rule):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(InvalidInputError) as info:
        read_outcomes(path)
    assert info.value.field == field and rule in info.value.expected
    assert str(path) in str(info.value)


def test_parquet_rows_are_numbered_and_typed_values_checked(tmp_path):
    path = tmp_path / "o.parquet"
    pd.DataFrame({"request_id": ["a", "b"], "outcome": [1.0, 0.5]}).to_parquet(path)
    with pytest.raises(InvalidCohortError) as info:
        read_outcomes(path)
    [error] = info.value.errors
    assert (error.where, error.field, error.value) == ("o.parquet row 2", "outcome", 0.5)


def test_join_counts_joined_awaiting_ambiguous_and_outside(tmp_path):
    # "batch": one batch call (one request id for two patients); r3: no outcome yet
    rows = _log(["r1", "r2", "batch", "batch", "r3"])
    path = tmp_path / "o.csv"
    path.write_text(
        "request_id,outcome,outcome_known_at\n"
        "r1,1,2026-03-29T10:00:00Z\nr2,0,2026-03-31T10:01:00Z\nbatch,1,\nold,0,\n"
    )
    joined, outside = join_outcomes(rows, read_outcomes(path))
    assert list(joined["outcome_status"]) == [
        "joined",
        "joined",
        "ambiguous",
        "ambiguous",
        "awaiting",
    ]
    np.testing.assert_array_equal(joined["outcome"].to_numpy()[:2], [1.0, 0.0])  # 0/1: exact
    assert joined["outcome"].iloc[2:].isna().all()
    summary = join_summary(joined, outside)
    assert (summary.joined, summary.awaiting, summary.ambiguous, summary.outside_window) == (
        2,
        1,
        2,
        1,
    )
    assert summary.median_days_to_outcome == pytest.approx(29.0)  # 28 and 30 days


def test_an_outcome_known_before_its_prediction_is_refused(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text("request_id,outcome,outcome_known_at\nr1,1,2026-02-01T00:00:00Z\n")
    with pytest.raises(InvalidCohortError) as info:
        join_outcomes(_log(["r1"]), read_outcomes(path))
    [error] = info.value.errors
    assert error.field == "outcome_known_at" and error.where == "request_id r1"
    assert "not before its prediction (2026-03-01T10:00:00+00:00)" in error.expected


# Six predictions made on 2026-03-01 (landmark days below) and an outcomes file of 2026-03-05
# (4 days later) with event days. A horizon's outcome is known once its window (3 days for
# 72 hours, 7 for 7 days, 28 - L for day 28; fewer near day 28) has passed by the outcome's
# date, or when the day-28 outcome is given (every window has passed):
#   r1  L 2, event day 4, 03-05: 72h passed (4 >= 3): event on day 4 in days 3-5 -> 1
#   r2  L 5, no event,    03-05: 72h -> 0
#   r3  L 1, event day 9, 03-05: 72h (days 2-4) -> 0; 7d would hold it, but is still open
#   r4  L 3, no event,    03-03: 2 days, nothing passed yet
#   r5  L 25, no event,   03-05: every window is 3 days from day 25 -> 0, 0, 0
#   r6  L 0, outcome 1, event day 20, 03-29: day 28 given: 72h (1-3) 0, 7d (1-7) 0, day28 1
HAND_LANDMARKS = [2, 5, 1, 3, 25, 0]
HAND_OUTCOMES = (
    "request_id,outcome,event_day,outcome_known_at\n"
    "r1,,4,2026-03-05T08:00:00Z\n"
    "r2,,,2026-03-05T08:00:00Z\n"
    "r3,,9,2026-03-05T08:00:00Z\n"
    "r4,,,2026-03-03T08:00:00Z\n"
    "r5,,,2026-03-05T08:00:00Z\n"
    "r6,1,20,2026-03-29T08:00:00Z\n"
)
NAN = np.nan


def _hand_joined(tmp_path):
    rows = _log(["r1", "r2", "r3", "r4", "r5", "r6"])
    rows["landmark_day"] = HAND_LANDMARKS
    rows["probability.72h"] = [0.30, 0.10, 0.20, 0.05, 0.40, 0.15]
    rows["probability.7d"] = [0.35, 0.15, 0.30, 0.10, 0.45, 0.20]
    rows["probability"] = [0.50, 0.30, 0.45, 0.20, 0.50, 0.60]
    path = tmp_path / "o.csv"
    path.write_text(HAND_OUTCOMES)
    return join_outcomes(rows, read_outcomes(path))[0]


def test_each_horizons_outcome_counts_once_its_window_has_passed(tmp_path):
    joined = _hand_joined(tmp_path)
    expected = {
        "outcome.72h": [1, 0, 0, NAN, 0, 0],
        "outcome.7d": [NAN, NAN, NAN, NAN, 0, 0],
        "outcome.day28": [NAN, NAN, NAN, NAN, 0, 1],
    }
    for column, values in expected.items():
        np.testing.assert_array_equal(joined[column].to_numpy(float), values, err_msg=column)
    np.testing.assert_array_equal(joined["outcome"], joined["outcome.day28"])
    assert (joined["outcome_status"] == "joined").all()


def test_realised_performance_per_horizon_by_hand(tmp_path):
    """72 hours: 5 outcomes known, 1 event (r1, risk 0.30) against 4 non-events (0.10, 0.20,
    0.40, 0.15): 3 of 4 pairs ordered right, AUROC 0.75; expected events 0.30 + 0.10 + 0.20 +
    0.40 + 0.15 = 1.15, O/E 1 / 1.15. 7 days: 2 known, no event (no AUROC). Day 28: 2 known,
    r6's event (0.60) above r5's non-event (0.50): AUROC 1; O/E 1 / 1.1. The reference's
    72-hour risks are the window's own: PSI 0; its day-28 risks differ: PSI above 0."""
    joined = _hand_joined(tmp_path)
    reference = pd.DataFrame(
        {
            "probability": [0.05, 0.1, 0.1, 0.2],
            "outcome": [0, 0, 1, 1],
            "probability.72h": [0.30, 0.10, 0.20, 0.05],
            "outcome.72h": [1, 0, 0, 0],
        }
    )
    results = {r.horizon: r for r in horizon_results(reference, joined, True)}
    assert list(results) == ["72h", "7d", "day28"]
    short, week, day28 = results["72h"], results["7d"], results["day28"]
    assert (short.predictions, short.known, short.awaiting) == (6, 5, 1)
    assert (short.realised.n, short.realised.events) == (5, 1)
    assert short.realised.auroc == pytest.approx(0.75, abs=1e-12)
    assert short.realised.observed_expected == pytest.approx(1 / 1.15, abs=1e-12)
    assert (week.known, week.awaiting, week.realised.events) == (2, 4, 0)
    assert np.isnan(week.realised.auroc)
    assert (day28.known, day28.realised.events) == (2, 1)
    assert day28.realised.auroc == pytest.approx(1.0, abs=1e-12)
    assert day28.realised.observed_expected == pytest.approx(1 / 1.1, abs=1e-12)
    # drift of each horizon's own risks against the reference's of that horizon
    assert short.reference_rows == 4 and short.reference_realised.events == 1
    assert week.reference_rows == 0 and week.reference_realised is None
    assert np.isnan(week.risk.psi)  # the reference has no 7-day risks
    assert day28.risk.psi > 0.25
    assert short.risk.mean_current == pytest.approx(1.2 / 6, abs=1e-12)
    # without an outcomes file nothing is known or awaiting
    assert horizon_results(reference, joined, False)[0].known is None


def test_a_log_of_day28_alone_and_an_event_before_the_prediction(tmp_path):
    rows = _log(["r1", "r2"])  # a day-28 model: no probability.<h> columns
    path = tmp_path / "o.csv"
    path.write_text("request_id,outcome,event_day\nr1,1,9\nr2,0,\n")
    joined, _ = join_outcomes(rows, read_outcomes(path))
    assert [r.horizon for r in horizon_results(pd.DataFrame(), joined, True)] == ["day28"]
    np.testing.assert_array_equal(joined["outcome.72h"], [0.0, 0.0])  # day 28 given
    path.write_text("request_id,event_day,outcome_known_at\nr1,3,2026-03-04\n")
    with pytest.raises(InvalidCohortError) as info:
        join_outcomes(rows, read_outcomes(path))  # landmark day 3: scored event-free then
    [error] = info.value.errors
    assert (error.field, error.value, error.where) == ("event_day", 3, "request_id r1")
    assert "after the prediction's landmark day 3" in error.expected


def test_event_days_are_checked_with_the_outcome(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text(
        "request_id,outcome,event_day\n"
        "r1,1,\n"  # line 2: an event without its day
        "r2,0,5\n"  # line 3: no event, yet a day
        "r3,,29\n"  # line 4: past day 28
        "r4,,2.5\n"  # line 5: not a day
        "r5,,\n"  # fine: nothing known yet
    )
    with pytest.raises(InvalidCohortError) as info:
        read_outcomes(path)
    found = {(e.where, e.field, e.value) for e in info.value.errors}
    assert found == {
        ("o.csv line 2", "event_day", ""),
        ("o.csv line 3", "event_day", "5"),
        ("o.csv line 4", "event_day", "29"),
        ("o.csv line 5", "event_day", "2.5"),
    }
    assert "the outcome is 1: an event" in str(info.value)
