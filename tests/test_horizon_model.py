"""The risk model of every horizon (``model.risk_model``, horizons): one model on each landmark
row's windows, whose risks never contradict each other.

Coherence is checked exactly (no tolerance): the window is a predictor both parts hold monotone
increasing, so ``risk(72 h) <= risk(7 d) <= risk(day 28)`` holds in floating point for every row,
every bootstrap refit and both bounds of the interval, not only on average. On 20,000 random
patients by default; ``ICANS_COHERENCE_ROWS=100000`` for the issue's figure.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.special import expit

from cohort.reader import read_cohort
from features.landmarks import SPARSE_LANDMARKS, build_landmark_dataset
from features.layout import COLUMN_INDEX
from icans.contract import PREDICTION_DAY
from icans.errors import InvalidInputError
from icans.horizons import HORIZON_NAMES
from model import boosting
from model.boosting import HORIZON_FEATURE
from model.risk_model import RiskModel

TREES = {"max_depth": 2, "learning_rate": 0.2, "min_child_weight": 2, "n_estimators": 30}


def _labels(ds) -> np.ndarray:
    return np.column_stack([ds.horizon_labels[h] for h in HORIZON_NAMES])


@pytest.fixture(scope="module")
def dataset(small_cohort):
    return build_landmark_dataset(read_cohort(small_cohort).tables, SPARSE_LANDMARKS)


@pytest.fixture(scope="module")
def model(dataset):
    """Fitted for every horizon, with four bootstrap refits (four more fits to check)."""
    return RiskModel(hyperparameters=TREES, uncertainty_refits=4, cv_folds=2).fit(
        dataset.raw, _labels(dataset), dataset.patient_id
    )


def _random_patients(ds, n: int, seed: int) -> np.ndarray:
    """``n`` raw rows, each column drawn from another row of the cohort: patients that exist
    nowhere (a high CRS grade with no fever, CAR-T counts from another product, any day), the
    values each in its range; the landmark day drawn over every day 0-27."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(ds.raw), size=(n, ds.raw.shape[1]))
    rows = ds.raw[pick, np.arange(ds.raw.shape[1])]
    rows[:, COLUMN_INDEX[PREDICTION_DAY.name]] = rng.integers(0, 28, size=n)
    return rows


def test_the_horizons_never_contradict_each_other(model, dataset):
    raw = np.vstack(
        [
            dataset.raw,
            _random_patients(dataset, int(os.environ.get("ICANS_COHERENCE_ROWS", "20000")), 3),
        ]
    )
    risk = model.predict_horizons(raw)
    assert risk.shape == (len(raw), 3)
    violations = int((np.diff(risk, axis=1) < 0).any(axis=1).sum())
    print(f"{len(raw):,} rows scored, {violations} with risks out of order")
    assert violations == 0  # exactly: no row, not a rounding
    x = model.transform(raw)[:, :-1]
    per_horizon = [model.with_window(x, raw, h) for h in HORIZON_NAMES]
    for linear, booster in model.refits_:  # every refit on its own
        margins = np.column_stack([boosting.margin(booster, linear, xh) for xh in per_horizon])
        assert (np.diff(margins, axis=1) >= 0).all()
    bounds = np.stack([model.interval(xh) for xh in per_horizon], axis=1)
    assert (np.diff(bounds, axis=1) >= 0).all()  # each bound, horizon after horizon
    # and the rows are not all at one value: the windows do separate them
    assert (np.diff(risk, axis=1) > 0).mean() > 0.5


def test_the_day28_answer_is_the_models_target(model, dataset):
    # the same rows through xgboost twice: 1e-12, not bit for bit (threads, other processors)
    np.testing.assert_allclose(
        model.predict_horizons(dataset.raw)[:, -1],
        model.predict_proba(dataset.raw)[:, 1],
        rtol=0,
        atol=1e-12,
    )


def test_the_window_is_the_days_left_of_each_horizon(model, dataset):
    raw = dataset.raw[:50].copy()
    days = np.array([0, 5, 20, 21, 24, 25, 26, 27] * 7)[:50]
    raw[:, COLUMN_INDEX[PREDICTION_DAY.name]] = days
    assert model.feature_names_[-1] == HORIZON_FEATURE
    expected = {  # by hand: the horizon's days, or the days left to day 28
        "72h": [3, 3, 3, 3, 3, 3, 2, 1],
        "7d": [7, 7, 7, 7, 4, 3, 2, 1],
        "day28": [28, 23, 8, 7, 4, 3, 2, 1],
    }
    for name, windows in expected.items():
        got = model.transform(raw, name)[:, -1]
        np.testing.assert_array_equal(got, (windows * 7)[:50])


def test_each_landmark_row_is_fitted_once_per_distinct_window(dataset):
    """On day 21 the 7-day and day-28 windows are one (7 days); from day 25 all three are."""
    fitted = RiskModel(hyperparameters=TREES, uncertainty_refits=0, cv_folds=2)
    fitted.horizons_ = HORIZON_NAMES
    landmark = np.array([0.0, 21.0, 25.0, 27.0])
    raw = np.full((4, dataset.raw.shape[1]), np.nan)
    raw[:, COLUMN_INDEX[PREDICTION_DAY.name]] = landmark
    labels = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 0]])
    x, y, groups = fitted._stacked(np.zeros((4, 1)), raw, labels, np.arange(4))
    rows = sorted(zip(groups.tolist(), x[:, -1].tolist(), y.tolist(), strict=True))
    assert rows == [
        (0, 3.0, 0),
        (0, 7.0, 0),
        (0, 28.0, 1),
        (1, 3.0, 0),
        (1, 7.0, 1),
        (2, 3.0, 1),
        (3, 1.0, 0),
    ]


def test_one_label_per_row_fits_the_day28_model_alone(dataset):
    m = RiskModel(hyperparameters=TREES, uncertainty_refits=0, cv_folds=2).fit(
        dataset.raw, dataset.label, dataset.patient_id
    )
    assert m.horizons_ == ("day28",) and HORIZON_FEATURE not in m.feature_names_
    np.testing.assert_allclose(  # through xgboost twice: 1e-12, as above
        m.predict_horizons(dataset.raw)[:, 0],
        m.predict_proba(dataset.raw)[:, 1],
        rtol=0,
        atol=1e-12,
    )
    with pytest.raises(InvalidInputError) as err:
        m.transform(dataset.raw[:1], "72h")
    assert err.value.field == "horizon" and err.value.value == "72h"


@pytest.mark.parametrize(
    ("horizons", "labels", "field"),
    [
        (HORIZON_NAMES, lambda y: y[:, :2], "label"),  # a column missing
        (HORIZON_NAMES, lambda y: np.column_stack([y[:, 2], y[:, 1], y[:, 0]]), "label[%d]"),
        (("7d", "72h", "day28"), lambda y: y, "horizons"),  # not shortest first
        (("72h", "7d"), lambda y: y[:, :2], "horizons"),  # no day 28
        (("72h", "1y", "day28"), lambda y: y, "horizon"),  # unknown
    ],
)
def test_labels_and_horizons_that_do_not_fit_are_refused(dataset, horizons, labels, field):
    y = labels(_labels(dataset).astype(int))
    with pytest.raises(InvalidInputError) as err:
        RiskModel(hyperparameters=TREES, uncertainty_refits=0, horizons=horizons).fit(
            dataset.raw, y, dataset.patient_id
        )
    if "%d" in field:  # the first row whose labels are not nested
        nested = (np.diff(y, axis=1) >= 0).all(axis=1)
        field = field % int(np.flatnonzero(~nested)[0])
    assert err.value.field == field


def test_the_short_horizons_rank_their_own_events(model, dataset):
    """Not a quality bar (400 patients): the 72-hour risk orders the 72-hour events better than
    chance on the training rows, and its events are rarer than day 28's."""
    from sklearn.metrics import roc_auc_score

    risk = model.predict_horizons(dataset.raw)
    y = _labels(dataset)
    assert y[:, 0].sum() < y[:, 2].sum()
    assert roc_auc_score(y[:, 0], risk[:, 0]) > 0.7
    assert np.mean(risk[:, 0]) < np.mean(risk[:, 2])
    assert expit(model.log_odds(model.transform(dataset.raw[:3], "72h"))).shape == (3,)


def test_a_training_run_judges_every_horizon_on_its_own_events(small_cohort, dataset):
    """``training.fit.fit_and_evaluate`` with every horizon: each shorter horizon's evaluation
    is on its own events (counted here from the held-out rows' event days) and beside its own
    true risk."""
    from support import SMALL

    from training.fit import fit_and_evaluate

    result = fit_and_evaluate(dataset, SMALL.model_copy(update={"horizons": HORIZON_NAMES}))
    assert result.model.horizons_ == HORIZON_NAMES
    assert set(result.horizons) == {"72h", "7d"}
    test = result.test
    for name, ev in result.horizons.items():
        overall = ev.metrics.query("subset == 'overall' and predictor == 'model'")
        assert int(overall["n_events"].iloc[0]) == int(test.horizon_labels[name].sum())
        assert np.isfinite(ev.value("model", "auroc"))
        assert np.isfinite(ev.value("model", "auroc_gap_to_true_risk"))
    # the day-28 evaluation is the target's, as before horizons
    assert result.evaluation.meta["n_events"] == int(test.label.sum())
    # each horizon gated on its own evaluation (SMALL's open gates: all pass)
    assert result.gate.horizons == {"72h": True, "7d": True, "day28": True}
    assert result.gate.checks["72h.calibration_slope"]

    # the table per day group: one row recomputed here with sklearn from the held-out rows
    from sklearn.metrics import roc_auc_score

    table = result.by_day_group
    assert list(dict.fromkeys(table["horizon"])) == list(HORIZON_NAMES)
    risk = result.model.predict_horizons(test.raw)
    rows = (test.landmark_day >= 3) & (test.landmark_day <= 7)
    y = test.horizon_labels["72h"][rows]
    row = table.query("horizon == '72h' and days == '3-7'").iloc[0]
    assert (row.n_rows, row.n_events) == (rows.sum(), y.sum())
    # the table's AUROC (weighted trapezoid) and sklearn's: the same sums in another order
    assert row.auroc == pytest.approx(roc_auc_score(y, risk[rows, 0]), abs=1e-12)
    truth = test.horizon_true_risk["72h"][rows]
    assert row.true_risk_auroc == pytest.approx(roc_auc_score(y, truth), abs=1e-12)
    assert row.auroc_gap == pytest.approx(row.true_risk_auroc - row.auroc, abs=1e-15)
    assert row.day28_risk_auroc == pytest.approx(roc_auc_score(y, risk[rows, 2]), abs=1e-12)
    overall = table.query("horizon == 'day28' and days == 'all'").iloc[0]
    assert overall.auroc == pytest.approx(result.evaluation.value("model", "auroc"), abs=1e-12)


def test_the_service_answers_a_model_of_several_horizons_with_its_day28_risk(
    model, dataset, small_cohort
):
    """The request path (runtime.assessor) on a model with the window predictor: the day-28
    probability of predict_proba, its contributions adding up, the window labelled and given to
    the prediction day among the inputs."""
    from api.patient import PatientObservation
    from features.landmarks import patient_record
    from runtime.assessor import Assessor

    tables = read_cohort(small_cohort).tables
    i = int(np.flatnonzero(dataset.landmark_day == 3)[0])
    patient = PatientObservation.model_validate(
        patient_record(tables, str(dataset.patient_id[i]), 3)
    )
    a = Assessor(model).assess([patient])[0]
    expected = model.predict_proba(dataset.raw[i : i + 1])[0, 1]
    assert a.probability == pytest.approx(expected, abs=1e-6)  # compiled vs xgboost, float32
    total = a.base_log_odds + sum(c["shap_log_odds"] for c in a.contributions)
    assert total == pytest.approx(a.log_odds, abs=1e-6)
    window = next(c for c in a.contributions if c["feature"] == HORIZON_FEATURE)
    assert window["value"] == 25.0 and "horizon" in window["label"]
    by_input = sum(c["shap_log_odds"] for c in a.input_contributions)
    assert by_input == pytest.approx(total - a.base_log_odds, abs=1e-9)


def test_the_assessment_shows_every_horizon_as_its_explanation_ranks_it(
    model, dataset, small_cohort
):
    """The Assessor builds each horizon's lists itself (texts once per patient, not once per
    horizon): the same dicts, in the same order, as :meth:`Explanation.ranked` and
    :meth:`Explanation.by_input` of that horizon's row, and the same drivers; a patient alone
    gets what it gets in a batch."""
    from api.patient import PatientObservation
    from features.landmarks import patient_record
    from features.packing import to_raw
    from model.explain import driver_lines
    from runtime.assessor import Assessor

    tables = read_cohort(small_cohort).tables
    rows = np.random.default_rng(5).choice(len(dataset.raw), size=40, replace=False)
    patients = [
        PatientObservation.model_validate(
            patient_record(tables, str(dataset.patient_id[i]), int(dataset.landmark_day[i]))
        )
        for i in rows
    ]
    assessor = Assessor(model)
    assessed = assessor.assess(patients)
    _, _, _, explanation = assessor.assess_rows(np.vstack([to_raw(p) for p in patients]))
    n = len(patients)
    for i, (patient, a) in enumerate(zip(patients, assessed, strict=True)):
        assert [h.horizon for h in a.horizons] == list(HORIZON_NAMES)
        for k, h in enumerate(a.horizons):
            ranked = explanation.ranked(k * n + i)
            assert h.contributions == ranked
            assert h.input_contributions == explanation.by_input(k * n + i, patient)
            assert h.drivers == driver_lines(ranked)
        assert a.contributions == a.horizons[-1].contributions
    for patient, a in zip(patients[:5], assessed, strict=False):
        assert assessor.assess([patient])[0].horizons == a.horizons
