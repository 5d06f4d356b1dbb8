"""The prediction log for monitoring (``serving.prediction_log``): what a line holds, daily
files, retention, reading back."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np

from runtime.assessor import Assessment, HorizonRisk
from serving.prediction_log import PredictionLog, log_file, read_prediction_log


def _assessment(p: float, crp: float | None) -> Assessment:
    contributions = [
        {"feature": "crp_mg_per_l", "label": "CRP", "value": crp, "value_text": "x",
         "shap_log_odds": 0.2},
        {"feature": "car_target=CD19", "label": "CAR target CD19", "value": 1.0,
         "value_text": "yes", "shap_log_odds": -0.1},
    ]  # fmt: skip
    return Assessment(
        probability=p,
        interval=(p / 2, p * 1.5),
        log_odds=0.0,
        base_log_odds=-1.0,
        contributions=contributions,
        drivers=["CRP 80 mg/L: raises the risk"],
        warnings=["ferritin not given: treated as missing"],
        missing_inputs=["ferritin_ng_per_ml"],
        landmark_day=3,
    )


def test_a_line_holds_the_feature_row_and_no_identifier_or_text(tmp_path):
    log = PredictionLog(tmp_path, retention_days=30)
    now = datetime(2026, 3, 7, 10, 30, tzinfo=UTC)
    log.record("req-1", "icans-risk", "4", "json", _assessment(0.12, 80.0), now=now)

    lines = log_file(tmp_path, now.date()).read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry == {
        "time": "2026-03-07T10:30:00+00:00",
        "request_id": "req-1",
        "model_name": "icans-risk",
        "model_version": "4",
        "channel": "json",
        "landmark_day": 3,
        "probability": 0.12,
        "interval": [0.06, 0.18],
        "horizons": {"day28": {"probability": 0.12, "interval": [0.06, 0.18]}},
        "predictors": {"crp_mg_per_l": 80.0, "car_target=CD19": 1.0},
    }
    # the drivers, warnings and missing-input texts are not in it
    assert "raises" not in lines[0] and "not given" not in lines[0]


def test_files_rotate_daily_old_ones_are_pruned_and_read_back(tmp_path):
    log = PredictionLog(tmp_path, retention_days=10)
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    for k in range(3):  # three days, two predictions each
        for h in (0, 1):
            when = start + timedelta(days=k, hours=h)
            log.record(
                f"r{k}{h}", "icans-risk", "4", "fhir", _assessment(0.1 * (k + 1), None), now=when
            )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "predictions-2026-03-01.jsonl",
        "predictions-2026-03-02.jsonl",
        "predictions-2026-03-03.jsonl",
    ]
    # a crash mid-write leaves a cut line: it is skipped when read
    with log_file(tmp_path, date(2026, 3, 3)).open("a") as f:
        f.write('{"time": "2026-03-03T')
    frame = read_prediction_log(tmp_path, date(2026, 3, 2), date(2026, 3, 3))
    assert list(frame["request_id"]) == ["r10", "r11", "r20", "r21"]
    assert frame["predictor.crp_mg_per_l"].isna().all()  # missing: NaN, never 0
    assert (frame["predictor.car_target=CD19"] == 1.0).all()
    assert list(frame["interval_low"].round(3)) == [0.1, 0.1, 0.15, 0.15]

    # on March 13 the first prediction of the hour deletes the days more than 10 days old
    log.record(
        "late", "icans-risk", "4", "json", _assessment(0.2, 5.0), now=start + timedelta(days=12)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "predictions-2026-03-03.jsonl",
        "predictions-2026-03-13.jsonl",
    ]


def _risk(name: str, p: float, interval) -> HorizonRisk:
    return HorizonRisk(name, name, 28, p, interval, 0.0, 0.0, [], [], [])


def test_every_horizon_is_logged_and_read_back_by_name_old_lines_as_day28(tmp_path):
    """A model of three horizons (one without refits: no interval), then a line written before
    horizons were logged (no "horizons" key): it reads back as day 28 alone."""
    log = PredictionLog(tmp_path, retention_days=30)
    now = datetime(2026, 3, 7, 10, 30, tzinfo=UTC)
    a = _assessment(0.5, 80.0)
    a.horizons = [
        _risk("72h", 0.125, (0.0625, 0.25)),
        _risk("7d", 0.25, (0.125, 0.375)),
        _risk("day28", 0.5, (0.25, 0.75)),
    ]
    log.record("req-1", "icans-risk", "5", "json", a, now=now)
    b = _assessment(0.25, None)
    b.interval = None
    b.horizons = [_risk("72h", 0.0625, None), _risk("day28", 0.25, None)]
    log.record("req-2", "icans-risk", "5", "json", b, now=now)
    old = json.dumps(
        {"time": now.isoformat(), "request_id": "req-0", "model_name": "icans-risk",
         "model_version": "4", "channel": "json", "landmark_day": 1, "probability": 0.375,
         "interval": [0.25, 0.5], "predictors": {"crp_mg_per_l": 3.0}}
    )  # fmt: skip
    with log_file(tmp_path, now.date()).open("a") as f:
        f.write(old + "\n")

    first = json.loads(log_file(tmp_path, now.date()).read_text().splitlines()[0])
    assert first["horizons"] == {
        "72h": {"probability": 0.125, "interval": [0.0625, 0.25]},
        "7d": {"probability": 0.25, "interval": [0.125, 0.375]},
        "day28": {"probability": 0.5, "interval": [0.25, 0.75]},
    }
    assert first["probability"] == 0.5  # the top level stays day 28

    frame = read_prediction_log(tmp_path, now.date(), now.date())
    assert list(frame["request_id"]) == ["req-1", "req-2", "req-0"]
    # binary fractions: exact through JSON and back
    expected = {
        "probability.72h": [0.125, 0.0625, np.nan],
        "interval_low.72h": [0.0625, np.nan, np.nan],
        "interval_high.72h": [0.25, np.nan, np.nan],
        "probability.7d": [0.25, np.nan, np.nan],
        "interval_high.7d": [0.375, np.nan, np.nan],
        "probability.day28": [0.5, 0.25, 0.375],
        "interval_low.day28": [0.25, np.nan, 0.25],
        "interval_high.day28": [0.75, np.nan, 0.5],
    }
    for column, values in expected.items():
        np.testing.assert_array_equal(frame[column].to_numpy(float), values, err_msg=column)
    np.testing.assert_array_equal(frame["probability"], frame["probability.day28"])
