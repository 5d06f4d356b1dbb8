"""Realism metrics of a generated cohort (``data.synthetic.summary``), by hand on small tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.synthetic.summary import easix_fc_ratio


def _patients(n: int = 90) -> pd.DataFrame:
    """``n`` patients whose CRP alone orders the EASIX-FC score (the other labs equal)."""
    return pd.DataFrame(
        {
            "ldh_u_per_l": 250.0,
            "creatinine_mg_per_dl": 0.9,
            "platelets_10e9_per_l": 150.0,
            "crp_mg_per_l": np.arange(1.0, n + 1),
            "ferritin_ng_per_ml": 800.0,
            "icans_max_grade": 0,
        },
        index=range(n),
    )


def test_the_easix_fc_gradient_is_the_top_third_over_the_bottom_third():
    """ICANS grade >= 2 in 6 of the top 30 and 2 of the bottom 30: 3.0; grade 1 does not count,
    and a patient without one of the five labs is left out."""
    df = _patients()
    df.loc[[60, 65, 70, 75, 80, 89], "icans_max_grade"] = [2, 3, 2, 4, 2, 2]
    df.loc[[3, 17], "icans_max_grade"] = 2
    df.loc[30:59:5, "icans_max_grade"] = 1
    assert easix_fc_ratio(df) == pytest.approx(3.0)
    unknown = df.iloc[[0]].assign(crp_mg_per_l=np.nan, icans_max_grade=2)
    assert easix_fc_ratio(pd.concat([df, unknown], ignore_index=True)) == pytest.approx(3.0)


def test_no_easix_fc_gradient_without_events_in_the_bottom_third_or_enough_patients():
    df = _patients()
    assert np.isnan(easix_fc_ratio(df.assign(icans_max_grade=np.where(df.index < 30, 0, 2))))
    small = _patients(60)  # thirds of 20: fewer than MIN_PER_THIRD
    small.loc[[0, 59], "icans_max_grade"] = 2
    assert np.isnan(easix_fc_ratio(small))
    assert np.isnan(easix_fc_ratio(df.drop(columns="ferritin_ng_per_ml")))  # a lab not read
