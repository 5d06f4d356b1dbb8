"""What each input set reaches (issue 26): a training run fits the model again on less than every
input, scores it on the same held-out rows beside the exact true risk given the same
observations, logs the figures and reports them.

One small training run (600 patients, :data:`support.FAST_RUN`, two input sets) serves the
module; the expected rows, names and AUROCs are written out or computed here independently."""

from __future__ import annotations

import re

import mlflow
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score
from support import FAST_RUN

from cohort.reader import read_cohort
from data.synthetic.cohort import CohortSpec, generate_cohort
from icans.config import load_settings
from icans.errors import InvalidInputError
from registry.store import use_tracking
from reports.registry_io import logged_report
from training.config import TrainConfig, load_train_config
from training.train import train

pytestmark = [
    pytest.mark.champion,  # trains on its own (conftest: the champion tier)
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:shap.*"),
]

SETS = ("routine", "baseline")
# Written out: the report's rows, all days first, then each landmark day of the default
# configuration (0, 1, 3, 5, 7, 10, 14), each with the model itself and the two sets.
DAYS = ["all days", "0", "1", "3", "5", "7", "10", "14"]
EXPECTED_ROWS = [(day, s) for day in DAYS for s in ("all", "routine", "baseline")]
# Fragments of the predictors read from the CD4+/CD8+ CAR-T counts or from IL-6, by hand.
CAR_T_OR_IL6 = ("cd4", "cd8", "il6", "il_6", "expansion")
# ... and from the course after infusion, which the baseline set leaves out.
AFTER_INFUSION = ("crs", "icans", "steroid", "tocilizumab", "fever", "ice_score", "capd", "_latest")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("input-sets")
    cohort = root / "cohort"
    generate_cohort(cohort, CohortSpec(n_patients=600, seed=21))
    settings = load_settings(
        tracking_uri=f"sqlite:///{root}/mlflow.db", artifacts_dir=root / "artifacts"
    )
    config = FAST_RUN.model_copy(update={"input_sets": SETS})
    return cohort, settings, train(cohort, config, settings)


def _section_rows(html: str) -> list[list[str]]:
    start = html.index(">What each input set reaches</h2>")
    table = html[html.index("<tbody>", start) : html.index("</table>", start)]
    return [
        re.findall(r"<td>(.*?)</td>", row, flags=re.S)
        for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
    ]


def test_the_report_has_one_row_per_landmark_and_input_set(run):
    _, settings, result = run
    use_tracking(settings)
    html = logged_report(result.run_id)
    assert html is not None
    rows = _section_rows(html)
    assert [(r[0], r[1]) for r in rows] == EXPECTED_ROWS
    # baseline: no exact true risk, and the report says why; all and routine: a number
    for r in rows:
        if r[1] == "baseline":
            assert r[6] == "not computed"
        elif r[5] != "-":  # a landmark day with events among the held-out rows
            assert re.fullmatch(r"0\.\d{3}|1\.000", r[6]), r
    assert "conditions on the daily ICANS course" in html
    assert "what the CAR-T counts (CD4+/CD8+ flow cytometry) and IL-6 add" in html
    assert "SYNTHETIC patients" in html


def test_the_figures_are_logged_as_metrics(run):
    _, settings, result = run
    use_tracking(settings)
    metrics = mlflow.get_run(result.run_id).data.metrics
    for key in (
        "input_set.all.model.overall.auroc",
        "input_set.all.true_risk.overall.auroc",
        "input_set.routine.model.L_7.auroc",
        "input_set.routine.true_risk.L_7.auroc",
        "input_set.baseline.model.overall.auroc",
    ):
        assert key in metrics, key
    assert "input_set.baseline.true_risk.overall.auroc" not in metrics
    assert "time.input_sets_s" in metrics


def test_the_routine_model_reads_no_car_t_count_nor_il6(run):
    _, _, result = run
    models = result.input_sets.models
    assert set(models) == set(SETS)
    routine = [n.lower() for n in models["routine"].feature_names_]
    assert routine and not [n for n in routine if any(f in n for f in CAR_T_OR_IL6)]
    # the check can fail: the model with every input reads them
    everything = [n.lower() for n in result.model.feature_names_]
    assert any("cd4" in n for n in everything) and any("il6" in n for n in everything)
    baseline = [n.lower() for n in models["baseline"].feature_names_]
    assert not [n for n in baseline if any(f in n for f in CAR_T_OR_IL6 + AFTER_INFUSION)]
    # no ICANS grade, so no ICANS state for the additive part to shift on
    assert models["baseline"].hyperparameters_["icans_state_shifts"] is False
    assert models["routine"].hyperparameters_["icans_state_shifts"] is True
    assert all(m.inputs == s and m.refits_ == [] for s, m in models.items())


def test_the_true_risk_aurocs_are_those_of_the_cohorts_columns_on_the_held_out_rows(run):
    cohort, _, result = run
    truth = read_cohort(cohort).tables["true_risk"]
    test = result.test
    rows = pd.DataFrame({"patient_id": test.patient_id, "landmark_day": test.landmark_day})
    merged = rows.merge(truth, on=["patient_id", "landmark_day"], how="left", validate="1:1")
    assert len(merged) == len(test)
    assert np.isfinite(merged["true_risk_routine"].to_numpy(float)).all()
    table = result.input_sets.table.set_index(["input_set", "subset"])
    y = test.label.astype(int)
    for subset, mask in [("overall", np.ones(len(y), bool))] + [
        (f"L={d}", test.landmark_day == d) for d in (0, 1, 3, 5, 7, 10, 14)
    ]:
        if y[mask].min() == y[mask].max():
            continue  # no event (or no non-event) that day: no AUROC
        for inputs, column in (("routine", "true_risk_routine"), ("all", "true_risk")):
            expected = roc_auc_score(y[mask], merged[column].to_numpy()[mask])
            # rank statistics of the same values: only the summation order differs
            assert table.loc[(inputs, subset), "true_risk_auroc"] == pytest.approx(
                expected, abs=1e-12
            )
        assert np.isnan(table.loc[("baseline", subset), "true_risk_auroc"])
    # the model's own row is the held-out evaluation's AUROC of the model
    model_auroc = result.evaluation.value("model", "auroc")
    assert table.loc[("all", "overall"), "model_auroc"] == pytest.approx(model_auroc, abs=1e-12)


def test_an_unknown_input_set_is_refused_naming_the_field_value_and_sets(tmp_path):
    with pytest.raises(ValidationError) as err:
        TrainConfig(input_sets=("routine", "no_flow"))
    text = str(err.value)
    assert "input_sets" in text and "'no_flow'" in text
    assert "one of routine, baseline, named" in text
    path = tmp_path / "train.toml"
    path.write_text('[train]\ninput_sets = ["all"]\n')  # the model itself: not a comparison
    with pytest.raises(InvalidInputError) as err:
        load_train_config(path)
    assert err.value.field == "train.input_sets" and "'all'" in str(err.value)


def test_a_real_cohorts_table_compares_the_models_only():
    """No true-risk table (real patients): the true-risk cells are '-', never 'not computed'."""
    from reports.performance import input_sets_section

    table = pd.DataFrame(
        {
            "input_set": ["all", "routine", "all", "routine"],
            "subset": ["overall", "overall", "L=3", "L=3"],
            "n_rows": [900, 900, 400, 400],
            "n_events": [60, 60, 25, 25],
            "model_auroc": [0.81, 0.78, 0.80, 0.76],
            "true_risk_auroc": [np.nan] * 4,
        }
    )
    html = input_sets_section(table, synthetic=False)
    rows = _section_rows("<h2>What each input set reaches</h2>" + html)
    assert rows == [
        ["all days", "all", "every input", "900", "60", "0.810", "-"],
        ["all days", "routine", "no CAR-T counts, no IL-6", "900", "60", "0.780", "-"],
        ["3", "all", "every input", "400", "25", "0.800", "-"],
        ["3", "routine", "no CAR-T counts, no IL-6", "400", "25", "0.760", "-"],
    ]
    assert "not computed" not in html and "SYNTHETIC" not in html
    assert "no true risk (real patients)" in html
