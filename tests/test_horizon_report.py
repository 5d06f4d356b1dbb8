"""The reviewers' report on a model of every horizon (``reports.horizon_review``,
``reports.horizon_sections``): each horizon the model estimates, and the lead time of alerts on
a threshold, checked against figures counted here from the held-out rows and the cohort's own
outcome table (not from the report's code path).

One small model fitted for every horizon on the 400-patient session cohort (``support.SMALL``
with all three horizons and 20 bootstrap samples: seconds); the sections are built on their own
(the whole report, SHAP included, is tested on the champion in ``tests/test_report.py``).
"""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from support import SMALL

from cohort.reader import read_cohort
from cohort.store import read_table
from evaluation.lead_time import lead_time, lead_time_by_landmark
from features.landmarks import build_landmark_dataset
from icans.errors import InvalidInputError
from icans.horizons import HORIZON_NAMES
from reports.horizon_review import event_days, events_of, review_horizons
from reports.horizon_sections import horizons_section, landmark_rows, lead_time_section

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def fitted(small_cohort):
    from training.fit import fit_and_evaluate

    ds = build_landmark_dataset(read_cohort(small_cohort).tables)
    config = SMALL.model_copy(update={"horizons": HORIZON_NAMES, "bootstrap_samples": 20})
    return fit_and_evaluate(ds, config)


@pytest.fixture(scope="module")
def outcomes(small_cohort) -> pd.DataFrame:
    """The cohort's outcome table, read here without the report's reader."""
    return read_table(small_cohort, "outcomes", ["patient_id", "event_day"])


@pytest.fixture(scope="module")
def metadata(small_cohort):
    return read_cohort(small_cohort).metadata


@pytest.fixture(scope="module")
def review(fitted, metadata):
    events, missing = event_days(metadata)
    assert events is not None, missing
    return review_horizons(fitted.model, fitted.evaluation, fitted.horizons, events)


def _held_out(fitted, outcomes, k: int):
    """Patient, landmark day, the model's risk of horizon ``k`` and the event day of each
    held-out row, from the rows and the outcome table."""
    test = fitted.test
    risk = fitted.model.predict_horizons(test.raw)[:, k]
    day_of = dict(zip(outcomes["patient_id"], outcomes["event_day"].astype(float), strict=True))
    event = np.array([day_of[p] for p in test.patient_id])
    return test.patient_id, test.landmark_day, risk, event


def _rows(page: str, cls: str) -> list[list[str]]:
    table = re.search(rf'<table class="{cls}">(.*?)</table>', page, flags=re.S)
    assert table, cls
    body = table.group(1)[table.group(1).index("<tbody>") :]
    return [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", body)]


def test_the_per_horizon_section_lists_exactly_the_models_horizons(fitted, review):
    page = horizons_section(review)
    assert fitted.model.horizons_ == HORIZON_NAMES
    names = [r[0] for r in _rows(page, "horizons")]
    assert names == [
        "within the next 72 hours (72h)",
        "within the next 7 days (7d)",
        "by day 28 (day28)",
    ]
    for row, name in zip(_rows(page, "horizons"), HORIZON_NAMES, strict=True):
        labels = fitted.test.horizon_labels[name] if name != "day28" else fitted.test.label
        assert row[2] == f"{int(labels.sum()):,}"  # each horizon's own events
        assert row[4] != "-"  # the horizon's true risk AUROC beside it (synthetic cohort)
    for name in HORIZON_NAMES:
        days = [r[0] for r in _rows(page, f"horizon-{name}")]
        assert days == [str(d) for d in sorted(set(fitted.test.landmark_day))]
    # one calibration figure, a panel per horizon
    assert re.findall(r'<img alt="([^"]+)"', page) == ["Calibration by decile per horizon"]


def test_the_lead_time_table_is_lead_time_by_landmark_of_the_held_out_rows(
    fitted, review, outcomes, metadata
):
    """Default: the 72-hour risk at 0.10; the table equals lead_time_by_landmark on the held-out
    rows' 72-hour risk and event days, and the patients' figures lead_time's."""
    assert (review.horizon, review.threshold) == ("72h", 0.10)
    patient, day, risk, event = _held_out(fitted, outcomes, 0)
    expected = lead_time_by_landmark(day, risk, event, 0.10, "72h")
    page = lead_time_section(review, metadata.synthetic)
    assert _rows(page, "lead-time-by-landmark") == landmark_rows(expected)
    assert len(expected) == len(set(fitted.test.landmark_day))
    overall = lead_time(patient, day, risk, event, 0.10)
    facts = dict(_rows(page, "lead-time"))  # type: ignore[arg-type]
    assert facts["patients with the event by day 28"] == f"{overall['event_patients']:,}"
    assert facts["patients alerted at least once"] == f"{overall['alerted_patients']:,}"
    assert facts["alerted before their event day"].startswith(
        f"{overall['alerted_before_event']:,} ("
    )
    assert "the default: 72h when the model estimates it" in page
    assert "SYNTHETIC" in page and "Decision support only" in page
    # the plot: a PNG embedded in the page
    data = re.search(
        r'<img alt="Lead time across thresholds, 72h" src="data:image/png;base64,([^"]+)"', page
    )
    assert data and base64.b64decode(data.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    # the curve holds the chosen threshold, and its row is the overall figures
    at = review.curve[review.curve["threshold"] == 0.10].iloc[0]
    assert at["alerted_patients"] == overall["alerted_patients"]


def test_a_chosen_horizon_and_threshold_and_the_json_record(fitted, outcomes):
    review = review_horizons(
        fitted.model,
        fitted.evaluation,
        fitted.horizons,
        events_of(outcomes),
        horizon_name="7d",
        threshold=0.3,
    )
    assert (review.horizon, review.threshold) == ("7d", 0.3)
    assert not review.horizon_default and not review.threshold_default
    _, day, risk, event = _held_out(fitted, outcomes, 1)
    expected = lead_time_by_landmark(day, risk, event, 0.3, "7d")
    record = json.loads(json.dumps(review.record()))  # plain JSON (NaN written as null)
    assert list(record["horizons"]) == list(HORIZON_NAMES)
    assert record["lead_time"]["horizon"] == "7d" and record["lead_time"]["threshold"] == 0.3
    got = pd.DataFrame(record["lead_time"]["by_landmark"])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    overall = record["horizons"]["72h"]["by_subset"][0]
    assert overall["subset"] == "overall"
    assert overall["auroc"] == pytest.approx(fitted.horizons["72h"].value("model", "auroc"))


@pytest.mark.parametrize(
    ("options", "field", "rule"),
    [
        ({"threshold": 0.0}, "threshold", "0 < threshold < 1"),
        ({"threshold": 1.0}, "threshold", "0 < threshold < 1"),
        ({"threshold": float("nan")}, "threshold", "0 < threshold < 1"),
        ({"threshold": -0.2}, "threshold", "0 < threshold < 1"),
        ({"horizon_name": "12h"}, "horizon", "one of 72h, 7d, day28"),
    ],
)
def test_bad_choices_are_refused_naming_the_option_value_and_rule(
    fitted, outcomes, options, field, rule
):
    with pytest.raises(InvalidInputError) as err:
        review_horizons(
            fitted.model, fitted.evaluation, fitted.horizons, events_of(outcomes), **options
        )
    assert err.value.field == field and rule in err.value.expected
    assert str(next(iter(options.values()))) in str(err.value)


def test_another_cohorts_outcomes_give_no_lead_time(fitted, outcomes):
    """Event days that do not give the rows' own labels (here: shifted a day) are refused: the
    section says why instead of counting from the wrong outcomes."""
    shifted = events_of(outcomes) - 1
    review = review_horizons(fitted.model, fitted.evaluation, fitted.horizons, shifted)
    assert not review.lead and "day-28 labels" in review.missing
    page = lead_time_section(review, True)
    assert "No lead time in this report" in page and "<img" not in page
    missing = review_horizons(fitted.model, fitted.evaluation, fitted.horizons, shifted[:5])
    assert "no patient in the cohort" in missing.missing


def test_without_the_shorter_horizons_evaluations_day28_is_shown_and_alerted_on(fitted, outcomes):
    """A report given day 28's evaluation alone (as built before the horizons were passed to
    it): the shorter horizons are named as not evaluated, the lead time falls back to day 28."""
    review = review_horizons(fitted.model, fitted.evaluation, None, events_of(outcomes))
    assert list(review.evaluations) == ["day28"] and review.horizon == "day28"
    assert review.lead  # counted on day 28
    page = horizons_section(review)
    assert "Not evaluated in this report: within the next 72 hours (72h), within" in page
    assert [r[0] for r in _rows(page, "horizons")] == ["by day 28 (day28)"]
