"""The synthetic cohort against the published numbers it is built on.

Each test names its anchor (the publication, as cited in ``data/synthetic/parameters.py``).
Cohorts have 20,000 patients, so a rate in a family of ~8,000 patients has a sampling SE of
~0.5 percentage points; the tests compare against the published ranges themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from data.synthetic.parameters import MYELOID_OR_T_FAMILIES, GeneratorParameters
from data.synthetic.summary import landmark_labels, realism_table, seed_phenotypes

# The 20,000-patient session cohorts (also reached through request.getfixturevalue, which
# conftest's marking by fixture name cannot see).
pytestmark = pytest.mark.slow

# Metrics the myeloid centre moves outside ranges published for commercial (grade-2) practice
# and case mix, each for a reason the data card gives ("Known departures from the literature").
MYELOID_CENTRE_DEPARTURES = {
    "duration_median": "steroids from grade 1 shorten ICANS",
    "steroids": "steroids from grade 1: more patients treated",
    "steroids_given_icans": "steroids from grade 1: more patients treated",
    "grade1_to_grade2": "steroids from grade 1 stop more ICANS at grade 1",
    "refractory_grade1_share": "early intrathecal escalation at grade 1, as in the seed series",
    "refractory_death": "its refractory cases are mostly grade 1-2 (escalated early)",
    "early_death": "myeloid and T-cell products: more deaths from infection (aplasia)",
    "death_share_icans": "myeloid and T-cell products: ICANS rare, infection deaths common",
    "crs_3plus": "its CD19 families are mostly B-ALL products (tisa-cel ALL, brexu-cel ALL)",
}


@pytest.mark.parametrize("cohort", ["real_world", "myeloid_centre"])
def test_realism_table_within_published_ranges(cohort, request):
    """Every published target of a group with enough patients for a stable rate (2,000 of the
    20,000) lies in its range, except the design limits the targets name (``departure``) and
    the departures the data card explains for the myeloid centre (steroids from grade 1, early
    escalation, its case mix)."""
    df = request.getfixturevalue(cohort).patients_outcomes
    table = realism_table(df)
    table = table[(table["patients"] >= 2000) & (table["departure"] == "")]
    if cohort == "myeloid_centre":
        table = table[~table["metric"].isin(list(MYELOID_CENTRE_DEPARTURES))]
    outside = table[~table["within"]]
    assert outside.empty, outside.drop(columns="source").to_string()
    assert len(table) >= (15 if cohort == "real_world" else 5)


def test_cd28_carries_two_to_five_times_the_4_1bb_risk(real_world):
    # Han 2024: axi-cel 26.4% vs tisa-cel 6.1%; Gauthier OR 0.14 for tisa-cel vs axi-cel.
    df = real_world.patients_outcomes
    cd19 = df[df["car_target"] == "CD19"].groupby("costimulatory_domain")["severe_icans"].mean()
    assert 2.0 <= cd19["CD28"] / cd19["4-1BB"] <= 5.0


@pytest.mark.parametrize("family", MYELOID_OR_T_FAMILIES)
def test_myeloid_and_t_cell_targets_rare_and_mostly_grade_1(myeloid_centre, family):
    # CLL1 phase I 0/10 CRES; CD7 phase II 5/55 ICANS, all grade 1.
    df = myeloid_centre.patients_outcomes
    fam = df[df["product_family"] == family]
    assert fam["severe_icans"].mean() <= 0.03
    icans = fam[fam["icans_max_grade"] >= 1]
    assert len(icans) / len(fam) < 0.2  # rare
    assert (icans["icans_max_grade"] == 1).mean() > 0.5  # mostly grade 1


def test_the_patients_of_the_source_papers_exist(myeloid_centre, real_world):
    """Grade 1-2 steroid-refractory ICANS (Meng 2025) at a centre starting steroids at grade 1,
    and severe ICANS starting late without CRS (Katsin 2024)."""
    meng = seed_phenotypes(myeloid_centre.patients_outcomes)
    assert meng["grade 1-2 steroid-refractory (Meng 2025)"] >= 50
    df = real_world.patients_outcomes
    late = (df["icans_max_grade"] >= 3) & (df["icans_onset_day"] >= 12) & (df["crs_max_grade"] == 0)
    assert late.sum() >= 5


def test_products_stay_inside_their_labels(real_world, myeloid_centre):
    """Doses within each product's label (total cells for flat doses, per kg with caps), no
    CD28 product for a child, no tisa-cel after 25, no myeloma or CLL in children."""
    for cohort in (real_world, myeloid_centre):
        df = cohort.tables["patients"]
        products = GeneratorParameters().baseline.products
        for name, frame in df.groupby("product"):
            prod = products[name]
            total = frame["dose_cells_per_kg"] * frame["weight_kg"]
            per_kg = frame["dose_cells_per_kg"]
            if prod.rule == "flat":
                assert total.between(prod.low * 0.98, prod.high * 1.02).all(), name
            elif prod.rule == "per_kg":
                assert (per_kg <= prod.high + 1e3).all() and (total <= prod.cap_total * 1.01).all()
            assert frame["age_years"].between(prod.min_age, prod.max_age).all(), name
            assert frame["disease"].isin(prod.diseases).all(), name
        children = df[df["age_years"] < 18]
        assert not (
            children["costimulatory_domain"].eq("CD28") & children["car_target"].eq("CD19")
        ).any()
        assert not children["disease"].isin(["MM", "CLL", "MCL", "FL"]).any()


def test_marrow_disease_measured_as_each_disease_is(real_world):
    df = real_world.tables["patients"]
    leukaemia = df["disease"].isin(["B-ALL", "AML", "T-ALL", "BPDCN"])
    assert df.loc[leukaemia, "marrow_blasts_pct"].notna().all()
    assert df.loc[~leukaemia, "marrow_blasts_pct"].isna().all()
    assert df.loc[leukaemia, "marrow_involvement"].isna().all()


def test_labs_differ_by_disease(real_world):
    """Myeloma has the highest creatinine, the leukaemias the lowest platelets (directions in
    the data card)."""
    df = real_world.tables["patients"]
    med = df.groupby("disease")[["creatinine_mg_per_dl", "platelets_10e9_per_l"]].median()
    adults = df[df["age_years"] >= 18].groupby("disease")["creatinine_mg_per_dl"].median()
    assert adults.idxmax() == "MM"
    assert med.loc["B-ALL", "platelets_10e9_per_l"] < med.loc["LBCL", "platelets_10e9_per_l"]


def test_competing_deaths_are_non_events(real_world):
    df = real_world.patients_outcomes
    other = df["death_cause"].notna() & (df["death_cause"] != "icans")
    assert 0.005 <= other.mean() <= 0.04
    dead_first = other & df["severe_or_refractory_icans"]
    assert (df.loc[dead_first, "event_day"] < df.loc[dead_first, "death_day"]).all()
    assert set(df.loc[other, "death_cause"]) <= {"infection", "crs", "progression"}


def test_severe_icans_mostly_preceded_by_crs(real_world):
    # Gust 2017: CRS preceded all 28 grade >= 3 neurotoxicity cases.
    sev = real_world.patients_outcomes.query("severe_icans")
    preceded = sev["crs_onset_day"].notna() & (sev["crs_onset_day"] <= sev["icans_onset_day"])
    assert preceded.mean() >= 0.85


def _landmark_frame(cohort, landmark: int) -> pd.DataFrame:
    """Event-free patients at ``landmark`` with data observed up to it and the later label."""
    t = cohort.tables
    rows = landmark_labels(t["true_risk"], t["outcomes"]).query("landmark_day == @landmark")
    daily = t["daily"].query("day <= @landmark")
    crs = daily.groupby("patient_id")["crs_grade"].max().rename("crs_max_to_date")
    m = t["measurements"].query("day <= @landmark and day > 0")
    cd4 = m.groupby("patient_id")["cd4_car_t_cells_per_ul"].max().rename("cd4_peak_to_date")
    frame = rows.merge(t["patients"], on="patient_id").join(crs, on="patient_id")
    return frame.join(cd4, on="patient_id")


def _positive_adjusted_effects(frame: pd.DataFrame, design: dict[str, pd.Series]) -> dict:
    """Multivariable logistic regression (no penalty) of the later event on ``design``."""
    x = pd.DataFrame(design)
    model = LogisticRegression(C=1e6, max_iter=5000).fit(x, frame["event_after_landmark"])
    return dict(zip(x.columns, model.coef_[0], strict=True))


def test_direction_of_every_named_effect(real_world):
    """Every named effect raises the risk (CD19 products, 20,000 patients).

    Named effects (issue and fact sheet): CRS grade, marrow disease, CD4+ expansion, LDH,
    neurologic comorbidity, CD28 over 4-1BB. Baseline factors are judged by their total
    adjusted effect at day 0; CRS grade and CD4+ expansion at day 7, adjusted for the baseline
    factors. Dose is not among them: CD19 doses are fixed by label (axi-cel) or have no
    dose-expansion relation (tisa-cel, ELIANA), so CD19 patients carry no dose signal.
    """
    x = _landmark_frame(real_world, 0)
    x = x[(x["car_target"] == "CD19") & x["ldh_u_per_l"].notna()]
    baseline = {
        "marrow_burden": lambda f: (
            f["marrow_blasts_pct"].fillna(0) / 25
            + f["marrow_involvement"].astype("Float64").fillna(0).astype(float)
        ),
        "log_ldh": lambda f: np.log(f["ldh_u_per_l"]),
        "neuro_comorbidity": lambda f: f["neuro_comorbidity"].astype(float),
        "cd28": lambda f: (f["costimulatory_domain"] == "CD28").astype(float),
    }
    day0 = _positive_adjusted_effects(x, {k: fn(x) for k, fn in baseline.items()})
    assert all(v > 0 for v in day0.values()), day0

    x = _landmark_frame(real_world, 7)
    x = x[(x["car_target"] == "CD19") & x["cd4_peak_to_date"].notna() & x["ldh_u_per_l"].notna()]
    design = {k: fn(x) for k, fn in baseline.items()}
    design |= {
        "crs_max_to_date": x["crs_max_to_date"],
        "log_cd4_peak": np.log(x["cd4_peak_to_date"]),
    }
    day7 = _positive_adjusted_effects(x, design)
    assert day7["crs_max_to_date"] > 0 and day7["log_cd4_peak"] > 0, day7


def test_baseline_effects_raise_day_0_risk(real_world):
    """Unadjusted: higher blasts, LDH and neuro comorbidity give a higher event rate."""
    x = _landmark_frame(real_world, 0)
    for column, frame in (
        ("marrow_blasts_pct", x[x["disease"] == "B-ALL"]),
        ("ldh_u_per_l", x),
    ):
        low, high = frame[column].quantile([1 / 3, 2 / 3])
        assert (
            frame.loc[frame[column] >= high, "event_after_landmark"].mean()
            > frame.loc[frame[column] <= low, "event_after_landmark"].mean()
        ), column
    rate = x.groupby("neuro_comorbidity")["event_after_landmark"].mean()
    assert rate[True] > rate[False]


def _auroc(cohort, day: int) -> float:
    m = landmark_labels(cohort.tables["true_risk"], cohort.tables["outcomes"])
    m = m[m["landmark_day"] == day]
    return roc_auc_score(m["event_after_landmark"], m["true_risk"])


def test_true_risk_discrimination_realistic_before_infusion_and_higher_later(real_world):
    # Pre-infusion scores (EASIX family) AUROC ~0.70-0.80 (Pennisi 2021; Korell 2022); dynamic
    # post-infusion models 0.80-0.93 (Amidi 2022). Above 0.90 at day 0 would be unrealistic.
    day0 = _auroc(real_world, 0)
    assert 0.70 <= day0 <= 0.85
    for day in (5, 7):
        assert _auroc(real_world, day) > day0 + 0.03


def test_m_easix_alone_discriminates_modestly(real_world):
    # m-EASIX (Pennisi 2021): LDH (U/L) x CRP (mg/dL) / platelets; AUROC ~0.7-0.8 for CRS.
    x = _landmark_frame(real_world, 0).dropna(
        subset=["ldh_u_per_l", "crp_mg_per_l", "platelets_10e9_per_l"]
    )
    score = x["ldh_u_per_l"] * x["crp_mg_per_l"] / 10 / x["platelets_10e9_per_l"]
    assert 0.6 <= roc_auc_score(x["event_after_landmark"], score) <= 0.8


@pytest.mark.parametrize("day", [0, 3, 7])
def test_true_risk_is_calibrated_per_decile(real_world, day):
    """Observed event rate per decile of true risk within 4 binomial SEs of the mean risk."""
    m = landmark_labels(real_world.tables["true_risk"], real_world.tables["outcomes"])
    m = m[m["landmark_day"] == day]
    decile = pd.qcut(m["true_risk"].rank(method="first"), 10, labels=False)
    g = m.groupby(decile).agg(
        p=("true_risk", "mean"), y=("event_after_landmark", "mean"), n=("true_risk", "size")
    )
    se = np.sqrt(np.maximum(g["p"] * (1 - g["p"]), 1e-4) / g["n"])
    assert (np.abs(g["y"] - g["p"]) <= 4 * se + 1e-3).all(), g


def test_no_age_piles_up_at_the_range_bounds(real_world):
    """Adult ages are a normal truncated to 18-85 years (baseline.py), not clipped: clipping put
    120 of 20,000 patients at exactly 18.0 and 225 at exactly 85.0 (v2 audit). A bound holds no
    more patients than a typical one-decimal age near it."""
    age = real_world.tables["patients"]["age_years"]
    for bound, side in ((18.0, 1), (85.0, -1)):
        near = age[(age - bound) * side > 0][((age - bound) * side).abs() <= 2.0]
        typical = near.value_counts().mean()
        assert (age == bound).sum() <= 3 * typical + 3, (bound, (age == bound).sum(), typical)
