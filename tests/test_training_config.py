"""The training configuration and the risk model share their defaults: written once, in the
estimator's signature (``training.config``), so changing one changes both."""

from __future__ import annotations

import inspect

import pytest
from sklearn.base import clone

from icans.errors import InvalidInputError
from model.baselines import LogisticBaseline, MEasixBaseline
from model.boosting import SearchSpace
from model.risk_model import RiskModel
from training.config import TrainConfig, load_train_config
from training.fit import risk_model

# TrainConfig key -> RiskModel parameter: every setting the two share, listed by hand.
SHARED = {
    "cv_folds": "cv_folds",
    "missing_series_fraction": "missing_series_fraction",
    "recalibrate_if_slope_outside": "recalibrate_if_slope_outside",
    "recalibrate_if_abs_intercept_above": "recalibrate_if_abs_intercept_above",
    "uncertainty_refits": "uncertainty_refits",
    "linear_offset": "linear_offset",
    "day_degree": "day_degree",
    "day_smoothing": "day_smoothing",
    "icans_state_shifts": "icans_state_shifts",
    "subsample": "subsample",
    "colsample_bytree": "colsample_bytree",
    "seed": "random_state",
    "n_threads": "n_jobs",
    "n_tasks": "n_tasks",
    "horizons": "horizons",
}


def default(estimator: type, parameter: str):
    return inspect.signature(estimator).parameters[parameter].default


@pytest.mark.parametrize(("key", "parameter"), SHARED.items())
def test_a_shared_setting_defaults_to_the_estimators_default(key, parameter):
    assert getattr(TrainConfig(), key) == default(RiskModel, parameter)


def test_the_configuration_sets_every_parameter_but_the_tree_settings():
    params = TrainConfig().model_params()
    assert set(params) == set(SHARED.values()) | {"search"}
    # the trees' settings are always chosen by the search when training, and the trained model
    # uses every input (the input sets are compared beside it: input_sets)
    assert set(inspect.signature(RiskModel).parameters) - set(params) == {
        "hyperparameters",
        "inputs",
    }
    # the estimator's search=None means the default search space, which the config spells out
    assert default(RiskModel, "search") is None and TrainConfig().search == SearchSpace()


def test_the_configured_estimator_carries_the_values_and_clones():
    config = TrainConfig(
        cv_folds=4, seed=11, n_threads=1, day_degree=0, search=SearchSpace(max_depth=(2,))
    )
    model = risk_model(config)
    params = model.get_params()
    assert {p: params[p] for p in SHARED.values()} == {
        p: getattr(config, k) for k, p in SHARED.items()
    }
    assert params["search"] == config.search and params["hyperparameters"] is None
    assert clone(model).get_params() == params


def test_the_toml_train_table_keeps_its_keys(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text(
        "[train]\nseed = 3\nn_threads = 1\ncv_folds = 4\nsubsample = 0.5\n"
        "logistic_c_grid = [0.1, 1.0]\n"
    )
    config = load_train_config(path)
    assert config.logistic_c_grid == (0.1, 1.0)
    params = config.model_params()
    assert (params["random_state"], params["n_jobs"], params["cv_folds"]) == (3, 1, 4)
    assert params["subsample"] == 0.5
    assert params["colsample_bytree"] == default(RiskModel, "colsample_bytree")


def test_the_baselines_share_the_models_defaults():
    """They learn from the same training copies, folds and seed as the risk model."""
    for baseline in (LogisticBaseline, MEasixBaseline):
        for parameter in ("missing_series_fraction", "random_state"):
            assert default(baseline, parameter) == default(RiskModel, parameter)
    assert default(LogisticBaseline, "cv_folds") == default(RiskModel, "cv_folds")
    assert TrainConfig().logistic_c_grid == default(LogisticBaseline, "c_grid")


@pytest.mark.parametrize(
    ("horizons", "why"),
    [
        ('["7d", "72h", "day28"]', "shortest first"),
        ('["72h", "7d"]', "day28 among them"),
        ('["72h", "1y", "day28"]', "one of 72h, 7d, day28"),
    ],
)
def test_horizons_out_of_order_or_unknown_are_refused_naming_the_field(tmp_path, horizons, why):
    path = tmp_path / "train.toml"
    path.write_text(f"[train]\nhorizons = {horizons}\n")
    with pytest.raises(InvalidInputError) as err:
        load_train_config(path)
    assert err.value.field == "train.horizons" and why in err.value.expected


def test_a_configuration_of_day28_alone_fits_the_target_alone(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text('[train]\nhorizons = ["day28"]\n')
    assert load_train_config(path).model_params()["horizons"] == ("day28",)
