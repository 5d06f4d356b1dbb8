"""The outcomes file of ``icans monitor``: its format, every rule a row can break (all reported
at once, naming file, line, field, value and rule), and the join to the prediction log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from icans.errors import InvalidCohortError, InvalidInputError
from monitoring.outcomes import join_outcomes, join_summary, read_outcomes


def _log(ids: list[str], day: str = "2026-03-01") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": [f"{day}T10:{k:02d}:00+00:00" for k in range(len(ids))],
            "request_id": ids,
            "model_version": "1",
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
