"""The CAR-T product as a predictor: one indicator per product seen in training, none when the
product is not given, and nothing read by a feature step fitted before the product was a field.

Every frame here is built by hand; the expected indicators are written out, not derived.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from features import display
from features.checks import batch_warnings
from features.input_sets import kept
from features.landmarks import baseline_matrix
from features.layout import BASELINE_FIELDS, COLUMN_INDEX, RAW_COLUMNS
from features.learned import CategoryIndicators
from features.transformers import build_feature_pipeline
from icans.errors import UnknownCategoryWarning

# The contract's order of products (categories are coded by position): written out.
CODE = {"axi-cel": 0, "brexu-cel": 1, "tisa-cel": 2, "liso-cel": 3, "ide-cel": 4, "cilta-cel": 5}
CODE["investigational"] = 6


def rows(products: list[str | None]) -> np.ndarray:
    """Raw rows of CD19 (code 0) 4-1BB (code 1) LBCL (code 0) patients on day 0 with these
    products (None: not given)."""
    raw = np.full((len(products), len(RAW_COLUMNS)), np.nan)
    raw[:, COLUMN_INDEX["day_since_infusion"]] = 0
    raw[:, COLUMN_INDEX["car_target"]] = 0
    raw[:, COLUMN_INDEX["costimulatory_domain"]] = 1
    raw[:, COLUMN_INDEX["disease"]] = 0
    raw[:, COLUMN_INDEX["car_product"]] = [np.nan if p is None else CODE[p] for p in products]
    return raw


def product_block(step: CategoryIndicators, raw: np.ndarray) -> tuple[list[str], np.ndarray]:
    names = list(step.get_feature_names_out())
    columns = [j for j, n in enumerate(names) if n.startswith("car_product=")]
    return [names[j] for j in columns], step.transform(raw)[:, columns]


def test_one_indicator_per_product_seen_in_training_and_none_when_not_given():
    step = CategoryIndicators().fit(rows(["liso-cel", "tisa-cel", None, "tisa-cel"]))
    names, x = product_block(step, rows(["tisa-cel", "liso-cel", None, "tisa-cel"]))
    assert names == ["car_product=tisa-cel", "car_product=liso-cel"]  # the contract's order
    np.testing.assert_array_equal(x, [[1, 0], [0, 1], [0, 0], [1, 0]])


def test_a_product_not_seen_in_training_is_all_zero_and_warned():
    step = CategoryIndicators().fit(rows(["tisa-cel", "liso-cel"]))
    with pytest.warns(UnknownCategoryWarning, match="car_product='investigational'"):
        _, x = product_block(step, rows(["investigational"]))
    np.testing.assert_array_equal(x, [[0, 0]])


def test_a_cohort_without_products_gives_no_product_indicator_and_no_warning():
    step = CategoryIndicators().fit(rows([None, None]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownCategoryWarning)
        names, _ = product_block(step, rows(["axi-cel", None]))
    assert names == []
    assert step.unseen(rows(["axi-cel"])) == []
    assert list(step.get_feature_names_out()) == [
        "car_target=CD19",
        "costimulatory_domain=4-1BB",
        "disease_group=b_cell_lymphoma",
    ]


def test_a_step_fitted_before_the_product_was_a_field_does_not_read_it():
    """A step as pickled by a model logged before generation 5 has no ``car_product`` entry:
    it gives its own indicators whatever the product column holds, and no warning about it."""
    old = CategoryIndicators().fit(rows(["tisa-cel"]))
    del old.codes_["car_product"], old.categories_["car_product"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownCategoryWarning)
        given = old.transform(rows(["ide-cel", "investigational"]))
        not_given = old.transform(rows([None, None]))
    np.testing.assert_array_equal(given, [[1, 1, 1], [1, 1, 1]])
    np.testing.assert_array_equal(given, not_given)
    assert old.unseen(rows(["ide-cel"])) == []
    # the warnings of the request path: nothing about a product the model does not read (the
    # features as such a model computes them: the ones before, the product's indicator aside)
    pipeline = build_feature_pipeline().fit(rows(["tisa-cel", "tisa-cel"]))
    raw = rows(["ide-cel"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownCategoryWarning)
        features = pipeline.transform(raw)
    assert any("car_product" in w for w in batch_warnings(pipeline, raw, features, [[]])[0])
    categories = dict(pipeline.named_steps["features"].steps_)["categories"]
    del categories.codes_["car_product"], categories.categories_["car_product"]
    assert not any("car_product" in w for w in batch_warnings(pipeline, raw, features, [[]])[0])


def test_a_product_reads_in_plain_words():
    assert display.label("car_product=tisa-cel") == "CAR-T product tisa-cel"
    assert display.value_text("car_product=tisa-cel", 1.0) == "yes"


def test_the_product_is_known_before_infusion_and_not_among_the_owner_s_named_inputs():
    names = np.array(["car_target=CD19", "car_product=tisa-cel", "disease_group=myeloid"])
    np.testing.assert_array_equal(kept("categories", names, "baseline"), [True, True, True])
    np.testing.assert_array_equal(kept("categories", names, "named"), [True, False, True])


def test_a_patients_table_gives_the_product_code_or_nothing():
    """The product column of a patients table becomes its code in the contract's order; a
    table without the column (an older cohort) gives NaN for every patient."""
    patients = pd.DataFrame(
        {"age_years": [61.0, 30.0, 70.0], "car_product": ["cilta-cel", None, "axi-cel"]}
    )
    j = BASELINE_FIELDS.index("car_product")
    np.testing.assert_array_equal(baseline_matrix(patients)[:, j], [5, np.nan, 0])
    assert np.isnan(baseline_matrix(patients.drop(columns="car_product"))[:, j]).all()
