"""The v3 realism metrics and target groups (``data.synthetic.summary``, ``targets``), on small
hand-built tables whose values are worked out by hand in each test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from data.synthetic.effect_sizes import logistic_slope, odds_ratio
from data.synthetic.summary import (
    MIN_PATIENTS,
    group_mask,
    metric_values,
    realism_table,
    routine_summaries,
)
from data.synthetic.targets import TARGETS

CAUSES = ["icans", "infection", "crs", "progression", "other"]


def _cohort(n: int, **columns) -> pd.DataFrame:
    """``n`` merged patient rows: an adult axi-cel LBCL patient without prophylaxis, ICANS,
    CRS, treatment or death, unless ``columns`` say otherwise."""
    empty_day = pd.array([pd.NA] * n, dtype="Int64")
    df = pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "product": "axi-cel",
            "product_family": "CD19-CD28",
            "car_target": "CD19",
            "disease": "LBCL",
            "prophylactic_dexamethasone": False,
            "dose_cells_per_kg": 2e6,
            "weight_kg": 75.0,
            "ldh_u_per_l": 250.0,
            "icans_max_grade": 0,
            "icans_onset_day": empty_day,
            "severe_icans": False,
            "steroid_refractory_icans": False,
            "icans_resolution_day": empty_day.copy(),
            "dexamethasone_start_day": empty_day.copy(),
            "event_day": empty_day.copy(),
            "died_of_icans": False,
            "death_day": empty_day.copy(),
            "death_cause": pd.Categorical([None] * n, categories=CAUSES),
            "crs_max_grade": 0,
            "crs_onset_day": empty_day.copy(),
            "tocilizumab_doses": 0,
        }
    )
    for name, values in columns.items():
        if name == "death_cause":
            values = pd.Categorical(values, categories=CAUSES)
        elif name.endswith("_day"):
            values = pd.array(values, dtype="Int64")
        df[name] = values
    if "icans_max_grade" in columns and "severe_icans" not in columns:
        df["severe_icans"] = df["icans_max_grade"] >= 3
    return df


def test_refractory_shares_by_worst_grade():
    """10 patients, worst grades 0 0 1 1 2 2 3 3 4 5. Refractory: one grade 1, one grade 2 and
    the grade 3 and the grade 5 (2 of the 4 with grade >= 3: 0.5; 1 of 2 grade 2: 0.5); 4 of
    10 refractory (0.4), 1 of them grade 1 (0.25). Of the 4 refractory, the grade 5 died of
    ICANS and the grade 2 of progression: treatment-related deaths 1 of 4."""
    df = _cohort(
        10,
        icans_max_grade=[0, 0, 1, 1, 2, 2, 3, 3, 4, 5],
        steroid_refractory_icans=[False, False, True, False, True, False, True, False, False, True],
        died_of_icans=[False] * 9 + [True],
        death_cause=[None, None, None, None, "progression", None, None, None, None, "icans"],
        death_day=[None, None, None, None, 20, None, None, None, None, 12],
    )
    v = metric_values(df)
    assert v["refractory_given_3plus"] == pytest.approx(0.5)
    assert v["refractory_given_grade2"] == pytest.approx(0.5)
    assert v["refractory"] == pytest.approx(0.4)
    assert v["refractory_grade1_share"] == pytest.approx(0.25)
    assert v["refractory_death"] == pytest.approx(0.25)


def test_no_refractory_patient_leaves_the_conditional_shares_undefined():
    v = metric_values(_cohort(5, icans_max_grade=[0, 1, 2, 3, 4]))
    assert v["refractory"] == 0.0 and v["refractory_given_3plus"] == 0.0
    assert np.isnan(v["refractory_grade1_share"]) and np.isnan(v["refractory_death"])


def test_tocilizumab_and_steroids_among_crs_and_icans_patients():
    """CRS worst grades 0 1 1 1 1 2 2 3 4 (8 with CRS): tocilizumab for one grade 1, both
    grade 2 and the grade 4 (4 of 8: 0.5; grade 1: 1/4; grade 2: 2/2; grade >= 3: 1/2).
    ICANS worst grades 0 0 1 1 2 2 2 3 0: steroids for ICANS in one grade 1, two grade 2 and
    the grade 3 (4 of 6 with ICANS; 3 of 4 with grade >= 2)."""
    df = _cohort(
        9,
        crs_max_grade=[0, 1, 1, 1, 1, 2, 2, 3, 4],
        tocilizumab_doses=[0, 2, 0, 0, 0, 1, 1, 0, 3],
        icans_max_grade=[0, 0, 1, 1, 2, 2, 2, 3, 0],
        dexamethasone_start_day=[None, None, 5, None, 6, 7, None, 4, None],
    )
    v = metric_values(df)
    assert v["toci_given_crs"] == pytest.approx(0.5)
    assert v["toci_given_crs1"] == pytest.approx(0.25)
    assert v["toci_given_crs2"] == pytest.approx(1.0)
    assert v["toci_given_crs3plus"] == pytest.approx(0.5)
    assert v["steroids_given_icans"] == pytest.approx(4 / 6)
    assert v["steroids_given_icans_2plus"] == pytest.approx(0.75)
    assert "steroids_given_crs3plus" not in v  # needs the daily doses (routine_summaries)
    with_doses = df.assign(treatment_steroid_any=[False] * 7 + [True, False])
    assert metric_values(with_doses)["steroids_given_crs3plus"] == pytest.approx(0.5)


def test_severity_ratios_count_patients_by_worst_grade():
    """Worst grades: three 1, four 2, five 3, two 4 and one 5 -> 3/4 and (2+1)/5."""
    grades = [0] * 5 + [1] * 3 + [2] * 4 + [3] * 5 + [4] * 2 + [5]
    v = metric_values(_cohort(len(grades), icans_max_grade=grades))
    assert v["grade1_to_grade2"] == pytest.approx(0.75)
    assert v["grade45_to_grade3"] == pytest.approx(0.6)
    assert np.isnan(metric_values(_cohort(3, icans_max_grade=[0, 1, 1]))["grade1_to_grade2"])


def test_crs_icans_coupling_is_the_odds_ratio_of_the_hand_2x2_table():
    """CRS grade >= 3: 6 patients, 3 with severe ICANS; CRS < 3: 14, 2 with severe ICANS.
    OR = (3/3)/(2/12) = 6.0; P(severe | CRS >= 3) = 0.5. Of the 5 severe, one had no CRS
    (0.2). Of the 6 with both CRS and ICANS onset days, the one whose ICANS began on day 2,
    before its CRS on day 4, is the exception (5/6 on or after the CRS onset)."""
    crs = [3, 3, 3, 4, 4, 4] + [0] + [1] * 13
    grade = [3, 3, 4, 0, 0, 0] + [3] + [3] + [0] * 12
    icans_onset = [5, 6, 5, None, None, None, 9, 7] + [None] * 12
    crs_onset = [2, 2, 3, 1, 1, 1, None, 4] + [3] * 12
    df = _cohort(20, crs_max_grade=crs, icans_max_grade=grade)
    df["icans_onset_day"] = pd.array(icans_onset, dtype="Int64")
    df["crs_onset_day"] = pd.array(crs_onset, dtype="Int64")
    df.loc[[18, 19], ["icans_max_grade", "severe_icans"]] = [1, False]
    df.loc[[18, 19], "icans_onset_day"] = [2, 6]
    df.loc[[18, 19], "crs_onset_day"] = [4, 3]
    v = metric_values(df)
    assert v["severe_icans_or_crs34"] == pytest.approx(6.0)
    assert v["p_severe_icans_given_crs34"] == pytest.approx(0.5)
    assert v["severe_icans_without_crs"] == pytest.approx(1 / 5)
    assert v["icans_after_crs_onset"] == pytest.approx(5 / 6)


def test_odds_ratio_of_a_2x2_table_and_an_empty_cell():
    """a=4 exposed events, b=6 exposed non-events, c=2, d=18: OR = 4*18/(6*2) = 6.0."""
    event = pd.Series([True] * 4 + [False] * 6 + [True] * 2 + [False] * 18)
    exposed = pd.Series([True] * 10 + [False] * 20)
    assert odds_ratio(event, exposed) == pytest.approx(6.0)
    among = pd.Series([True] * 10 + [True, False] + [True] * 18)  # drops one unexposed event
    assert odds_ratio(event, exposed, among) == pytest.approx(4 * 18 / (6 * 1))
    assert np.isnan(odds_ratio(event, pd.Series([True] * 30)))  # no unexposed patients


def test_tisa_cel_vs_axi_cel_icans_odds_ratio_uses_only_the_two_products():
    """tisa-cel NHL: 2 of 10 with ICANS; axi-cel: 6 of 10; liso-cel patients (all with ICANS)
    do not count. OR = (2/8)/(6/4) = 1/6."""
    products = ["tisa-cel NHL"] * 10 + ["axi-cel"] * 10 + ["liso-cel"] * 5
    grade = [1, 2] + [0] * 8 + [1, 1, 2, 3, 1, 2] + [0] * 4 + [1] * 5
    df = _cohort(25, product=products, icans_max_grade=grade)
    assert metric_values(df)["or_tisa_vs_axi_icans"] == pytest.approx(1 / 6)


def test_logistic_odds_ratios_per_10_fold_ldh_and_per_doubling_of_dose():
    """With two levels one log unit apart the univariable logistic slope is the log of the
    2x2 odds ratio: LDH 1,000 vs 100 U/L with severe ICANS in 6/10 vs 2/10 gives
    (6/4)/(2/8) = 6; tisa-cel NHL 2e8 vs 1e8 cells (per kg x weight) with CRS in 8/10 vs
    4/10 gives (8/2)/(4/6) = 6. A missing LDH is left out."""
    severe = [True] * 6 + [False] * 4 + [True] * 2 + [False] * 8
    df = _cohort(21, icans_max_grade=[3 if s else 0 for s in severe] + [3])
    df["ldh_u_per_l"] = [1000.0] * 10 + [100.0] * 10 + [np.nan]
    assert metric_values(df)["ldh_or_per_log10"] == pytest.approx(6.0, rel=1e-8)

    crs = [1] * 8 + [0] * 2 + [1] * 4 + [0] * 6
    dose = pd.Series([2e8] * 10 + [1e8] * 10) / 80.0
    df = _cohort(20, product="tisa-cel NHL", crs_max_grade=crs, weight_kg=80.0)
    df["dose_cells_per_kg"] = dose
    assert metric_values(df)["dose_crs_or_per_doubling"] == pytest.approx(6.0, rel=1e-8)


def test_logistic_slope_agrees_with_sklearn_and_refuses_separation():
    """A continuous predictor: the Newton fit against sklearn's unpenalised fit (lbfgs to
    its own tolerance, so 1e-4)."""
    rng = np.random.default_rng(3)
    x = rng.normal(2.5, 0.3, 400)
    y = rng.random(400) < 1 / (1 + np.exp(-(-6 + 2 * x)))
    reference = LogisticRegression(C=1e12, tol=1e-10, max_iter=10_000).fit(x[:, None], y)
    assert logistic_slope(x, y) == pytest.approx(reference.coef_[0][0], rel=1e-4)
    assert np.isnan(logistic_slope(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 1])))
    assert np.isnan(logistic_slope(np.ones(4), np.array([0, 1, 0, 1])))


def test_deaths_by_day_28_by_cause():
    """20 patients, 5 deaths: 2 infection, 1 ICANS, 1 CRS, 1 progression."""
    causes = ["infection", "infection", "icans", "crs", "progression"] + [None] * 15
    df = _cohort(20, death_cause=causes, died_of_icans=[False, False, True] + [False] * 17)
    v = metric_values(df)
    assert v["early_death"] == pytest.approx(0.25)
    assert v["death_share_infection"] == pytest.approx(0.4)
    assert v["death_share_icans"] == pytest.approx(0.2)
    assert v["death_share_crs"] == pytest.approx(0.2)
    assert v["nrm"] == pytest.approx(0.2)  # the other 4 of 20


def _daily(rows: dict[str, list]) -> pd.DataFrame:
    """Daily rows (patient, day, CRS grade, seizure, oedema, steroid mg); the routine labs are
    not under test and are constant."""
    df = pd.DataFrame(rows)
    df["temperature_max_c"] = 37.0
    df["crp_mg_per_l"] = 5.0
    df["ferritin_ng_per_ml"] = 300.0
    for name, values in (
        ("seizure", ["none", "rapidly_resolving", "life_threatening"]),
        ("cerebral_edema", ["none", "focal", "diffuse_or_raised_icp"]),
    ):
        df[name] = pd.Categorical(df[name], categories=values)
    return df


def test_crs_resolution_seizure_oedema_and_treatment_steroids_from_the_daily_course():
    """P1: CRS days 2-4, back at 0 on day 5 (duration 3), CRS again on day 7 (ignored: the first
    day back at 0 counts). P2: CRS from day 1 to the end of the chart (no resolution). P3: no
    CRS, a seizure on day 6 and focal oedema only. P4: diffuse oedema on day 3, steroids 40 mg
    (treatment) on day 3; P1's 10 mg prophylaxis is not treatment."""
    days = list(range(9))
    daily = _daily(
        {
            "patient_id": ["P1"] * 9 + ["P2"] * 4 + ["P3"] * 9 + ["P4"] * 5,
            "day": [*days, 0, 1, 2, 3, *days, 0, 1, 2, 3, 4],
            "crs_grade": [0, 0, 1, 2, 1, 0, 0, 1, 0] + [0, 1, 1, 2] + [0] * 9 + [0, 0, 2, 1, 0],
            "seizure": ["none"] * 13 + ["none"] * 6 + ["rapidly_resolving"] + ["none"] * 7,
            "cerebral_edema": ["none"] * 13
            + ["none", "focal"]
            + ["none"] * 7
            + ["none", "none", "none", "diffuse_or_raised_icp", "none"],
            "dexamethasone_mg": [10.0, 10.0, 10.0] + [0.0] * 19 + [0, 0, 0, 40, 20],
        }
    )
    s = routine_summaries(daily).set_index("patient_id")
    assert s["first_crs_day"].tolist()[:2] == [2, 1] and np.isnan(s.loc["P3", "first_crs_day"])
    assert s.loc["P1", "crs_resolution_day"] == 5 and s.loc["P4", "crs_resolution_day"] == 4
    assert np.isnan(s.loc["P2", "crs_resolution_day"]) and np.isnan(
        s.loc["P3", "crs_resolution_day"]
    )
    assert s["seizure_any"].tolist() == [False, False, True, False]
    assert s["diffuse_edema_any"].tolist() == [False, False, False, True]
    assert s["treatment_steroid_any"].tolist() == [False, False, False, True]

    df = _cohort(
        4,
        patient_id=["P1", "P2", "P3", "P4"],
        crs_max_grade=[2, 2, 0, 2],
        crs_onset_day=[2, 1, None, 2],
        icans_max_grade=[0, 0, 3, 5],
        died_of_icans=[False, False, False, True],
        death_cause=[None, None, None, "icans"],
    ).merge(s.reset_index(), on="patient_id")
    assert len(df) == 4
    v = metric_values(df)
    assert v["crs_duration_median"] == pytest.approx(2.5)  # P1 3 d, P4 2 d; P2 unresolved
    assert v["crs_onset_median"] == pytest.approx(2.0)
    assert v["seizure"] == pytest.approx(0.25)
    assert v["diffuse_edema"] == pytest.approx(0.25) and v["fatal_edema"] == pytest.approx(0.25)


def test_routine_summaries_without_the_course_columns_give_no_course_metrics():
    daily = _daily(
        {
            "patient_id": ["P1", "P1"],
            "day": [0, 1],
            "crs_grade": [0, 1],
            "seizure": ["none", "none"],
            "cerebral_edema": ["none", "none"],
        }
    ).drop(columns=["seizure", "cerebral_edema"])
    s = routine_summaries(daily)
    assert {"seizure_any", "diffuse_edema_any", "treatment_steroid_any"}.isdisjoint(s.columns)


def test_groups_select_products_families_cd19_lymphoma_and_prophylaxis():
    df = _cohort(
        6,
        product=["axi-cel", "axi-cel", "tisa-cel NHL", "tisa-cel ALL", "ide-cel", "axi-cel"],
        product_family=["CD19-CD28"] * 2 + ["CD19-4-1BB"] * 2 + ["BCMA", "CD19-CD28"],
        car_target=["CD19"] * 4 + ["BCMA", "CD19"],
        disease=["LBCL", "PMBCL", "FL", "B-ALL", "MM", "LBCL"],
        prophylactic_dexamethasone=[True, False, False, False, False, False],
    )

    def rows(group: str) -> list[int]:
        return df.index[group_mask(df, group)].tolist()

    assert rows("all") == [0, 1, 2, 3, 4, 5]
    assert rows("axi-cel") == [0, 1, 5]
    assert rows("axi-cel, no prophylaxis") == [1, 5]
    assert rows("axi-cel, prophylaxis") == [0]
    assert rows("tisa-cel NHL") == [2] and rows("tisa-cel ALL") == [3]
    assert rows("CD19-4-1BB") == [2, 3] and rows("BCMA") == [4]
    assert rows("CD19") == [0, 1, 2, 3, 5]
    assert rows("CD19 lymphoma") == [0, 1, 2, 5]
    with pytest.raises(ValueError, match="'axicel'"):
        group_mask(df, "axicel")


def test_realism_table_compares_products_with_enough_patients_only():
    """MIN_PATIENTS axi-cel patients without prophylaxis, 30% with grade 3 ICANS and 60% with
    ICANS; one patient short of MIN_PATIENTS with tisa-cel NHL: axi-cel's product rows appear
    with the hand values, tisa-cel NHL's do not."""
    n_axi, n_tisa = MIN_PATIENTS, MIN_PATIENTS - 1
    axi_grade = [3] * (n_axi * 3 // 10) + [1] * (n_axi * 3 // 10) + [0] * (n_axi * 4 // 10)
    df = _cohort(
        n_axi + n_tisa,
        product=["axi-cel"] * n_axi + ["tisa-cel NHL"] * n_tisa,
        product_family=["CD19-CD28"] * n_axi + ["CD19-4-1BB"] * n_tisa,
        icans_max_grade=axi_grade + [0] * n_tisa,
    )
    table = realism_table(df).set_index(["metric", "group"])
    assert table.loc[("icans_3plus", "axi-cel, no prophylaxis"), "value"] == pytest.approx(0.3)
    assert table.loc[("icans_any", "axi-cel"), "value"] == pytest.approx(0.6)
    assert table.loc[("icans_any", "axi-cel"), "patients"] == MIN_PATIENTS
    assert bool(table.loc[("icans_any", "axi-cel"), "within"])  # 0.50-0.70
    groups = set(table.index.get_level_values("group"))
    assert "tisa-cel NHL" not in groups and "CD19-4-1BB" not in groups
    assert "axi-cel, prophylaxis" not in groups  # no such patient
    assert {"all", "CD19", "CD19-CD28", "axi-cel"} <= groups


def test_every_target_names_a_metric_and_a_group_that_exist():
    """Every target's metric is computed from a merged frame with all the columns, and every
    target's group resolves (a typo would drop the target from the table silently)."""
    days = {"day": list(range(3)), "crs_grade": [0, 1, 0]}
    daily = _daily(
        {
            "patient_id": ["P000"] * 3,
            **days,
            "seizure": ["none"] * 3,
            "cerebral_edema": ["none"] * 3,
            "dexamethasone_mg": [0.0] * 3,
            "icans_grade": [0] * 3,
        }
    )
    df = _cohort(3).merge(routine_summaries(daily), on="patient_id", how="left")
    df["creatinine_mg_per_dl"] = 1.0  # the EASIX-FC labs
    df["platelets_10e9_per_l"] = 150.0
    df["crp_mg_per_l"] = 5.0
    df["ferritin_ng_per_ml"] = 300.0
    values = metric_values(df)
    for t in TARGETS:
        assert t.metric in values, t
        group_mask(df, t.group)
        assert t.low <= t.high, t


def test_grade_1_before_the_first_grade_2_from_the_daily_grades():
    """P1: grade 1 on day 4, grade 2 on day 5 (a grade 1 first). P2: grade 2 on day 3 with no
    grade 1 before it (grade 1 only on day 6, after). P3: grade 1 only, never grade 2 (not in
    the denominator). P4: grade 3 on day 2 after grade 1 on day 1. Share: 2 of 3."""
    daily = _daily(
        {
            "patient_id": ["P1"] * 3 + ["P2"] * 3 + ["P3"] * 2 + ["P4"] * 2,
            "day": [4, 5, 6, 3, 5, 6, 2, 3, 1, 2],
            "crs_grade": [0] * 10,
            "seizure": ["none"] * 10,
            "cerebral_edema": ["none"] * 10,
            "dexamethasone_mg": [0.0] * 10,
            "icans_grade": [1, 2, 1, 2, 2, 1, 1, 1, 1, 3],
        }
    )
    s = routine_summaries(daily).set_index("patient_id")
    assert s["first_icans_2plus_day"].tolist()[:2] == [5, 3]
    assert np.isnan(s.loc["P3", "first_icans_2plus_day"])
    df = _cohort(4, patient_id=["P1", "P2", "P3", "P4"]).merge(s.reset_index(), on="patient_id")
    assert metric_values(df)["grade1_before_grade2"] == pytest.approx(2 / 3)
