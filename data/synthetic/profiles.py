"""The two kinds of patient the product exists for, encoded from the source papers.

* **Katsin-like** (Katsin 2024, case report): a 39-year-old man with PMBCL involving the marrow,
  a CD19 CAR with 4-1BB signalling at a very low dose (1.29e6 cells in total, 85% CD4+), CRP
  340 mg/L, no CRS and no ICANS through day 10, CD4-dominant expansion (CD4:CD8 89) peaking at
  77.7 cells/uL on day 14, when grade 3 ICANS began (grade 4 within hours).
* **Meng-like** (Meng 2025, 13-patient series): AML with a CLL1 CAR at 2e6/kg, marrow blasts 33%,
  CNS involvement, 7 prior lines, grade 1-2 CRS, ICANS from day 11 (the median onset), grade 1
  and treated at once (the series' centre treats early).

Everything the papers do not give is **guessed** and listed in ``guessed``. The profiles are
written in the contract's vocabulary (:meth:`Profile.request` gives the ``/v1/risk`` body on a
day) and as the generator's observations (:func:`profile_true_risk`), so the model's risk and
the true risk are computed from the same facts. Used by ``benchmarks/seed_profiles.py`` and the
tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data.synthetic.baseline import Baseline
from data.synthetic.kinetics import latent_grid, tumour_burden
from data.synthetic.parameters import CASE_MIXES, PRODUCT_NAMES, PRODUCTS, GeneratorParameters
from data.synthetic.process import CRS_PRE, CRS_RESOLVED, disease_group_codes, is_child
from data.synthetic.routine import LABS, Charting
from data.synthetic.simulate import Course
from data.synthetic.treatment import NONE, next_steroid_state, steroid_mg, steroid_start_grades
from data.synthetic.true_risk import ForwardFilter
from icans.contract import FIELDS

# Findings that give each ICANS grade in an adult: ICE score, everything else normal.
_ICE_FOR_GRADE = {0: 10, 1: 8, 2: 5}


@dataclass(frozen=True)
class Profile:
    name: str
    source: str
    family: str
    case_mix: str
    baseline: dict
    crs_grade: dict[int, int]
    icans_grade: dict[int, int]
    cd4: dict[int, float]
    cd8: dict[int, float]
    guessed: tuple[str, ...] = field(default_factory=tuple)
    # the daily routine charted: a ``daily`` column of the contract -> {day: value}
    daily: dict[str, dict[int, float]] = field(default_factory=dict)

    @property
    def product(self) -> str:
        """The product a patient of this family and disease receives (the first licensed or
        trialled one for the disease): the generator's dynamics are per product."""
        disease = self.baseline["disease"]
        return next(
            name
            for name, p in PRODUCTS.items()
            if p.family == self.family and disease in p.diseases
        )

    @property
    def start_grade(self) -> int:
        """The ICANS grade at which the profile's centre starts steroids (no prophylaxis)."""
        return int(steroid_start_grades(False, CASE_MIXES[self.case_mix].steroid_start_grade))

    def steroid_doses(self, params: GeneratorParameters) -> dict[int, float]:
        """Corticosteroid mg by day, by the centre's steroid rule on the profile's grades."""
        start = self.start_grade
        state, out = np.array(NONE), {}
        for day in sorted(self.icans_grade):
            grade = np.array(self.icans_grade[day])
            if day > 0:
                state = next_steroid_state(state, grade, start)
            out[day] = float(steroid_mg(state, grade, day, np.array(False), params))
        return out

    def request(self, day: int, params: GeneratorParameters | None = None) -> dict:
        """The ``/v1/risk`` body on ``day``: the baseline and the course up to that day."""
        params = params or GeneratorParameters()

        def upto(series: dict, key: str) -> list[dict]:
            return [{"day": d, key: v} for d, v in sorted(series.items()) if d <= day]

        return {
            **self.baseline,
            "day_since_infusion": day,
            "crs_grade_by_day": upto(self.crs_grade, "grade"),
            "icans_grade_by_day": upto(self.icans_grade, "grade"),
            "cd4_car_t_cells_per_ul": upto(self.cd4, "value"),
            "cd8_car_t_cells_per_ul": upto(self.cd8, "value"),
            "dexamethasone_mg_by_day": upto(self.steroid_doses(params), "mg"),
            "tocilizumab_doses_by_day": [{"day": d, "doses": 0} for d in range(day + 1)],
            **{
                f"{column}_by_day": upto(values, FIELDS[f"{column}_by_day"].value_key)
                for column, values in self.daily.items()
            },
        }


_DAYS = range(14)

KATSIN = Profile(
    name="Katsin-like",
    source="Katsin M et al., Front Immunol 2024;15:1380451",
    family="CD19-4-1BB",
    case_mix="real-world",
    baseline={
        "age_years": 39.0,
        "weight_kg": 75.0,
        "dose_cells_per_kg": round(1.29e6 / 75.0, -2),
        "marrow_blasts_pct": None,
        "marrow_involvement": True,
        "cns_involvement": False,
        "prior_lines": 3,
        "neuro_comorbidity": False,
        "ldh_u_per_l": 600.0,
        "crp_mg_per_l": 340.0,
        "ferritin_ng_per_ml": 1200.0,
        "platelets_10e9_per_l": 150.0,
        "creatinine_mg_per_dl": 0.9,
        "disease": "PMBCL",
        "car_target": "CD19",
        "costimulatory_domain": "4-1BB",
        "lymphodepletion": "flu_cy",
        "car_product": "investigational",
    },
    crs_grade={d: 0 for d in _DAYS},
    icans_grade={d: 0 for d in _DAYS},
    cd4={3: 1.0, 7: 8.0, 10: 30.0},
    cd8={3: 0.05, 7: 0.15, 10: 0.4},
    guessed=(
        "weight 75 kg (dose per kg from the 1.29e6 total)",
        "an academic (investigational) product, given the generator's dynamics of liso-cel, "
        "the CD19/4-1BB product licensed for PMBCL",
        "LDH 600 U/L, ferritin 1,200 ng/mL, platelets 150, creatinine 0.9",
        "3 prior lines (three regimens named)",
        "CD4+/CD8+ counts on days 3, 7 and 10 (only the day-14 peak of 77.7/uL, CD4:CD8 89 "
        "and the AUC are published); decitabine + Cy/Flu coded as flu_cy",
        "daily CRP 200 on day 0 falling to 6 mg/L by day 7 and 5-8 to day 13 (the paper: "
        "'inflammatory markers returned to normal values' by day 7, no CRS), afebrile, ICE "
        "10 through day 13 (no ICANS before day 14)",
    ),
    daily={
        "temperature_max_c": {d: 36.8 for d in _DAYS},
        "crp_mg_per_l": {0: 200.0, 1: 160.0, 3: 90.0, 5: 30.0, 7: 6.0, 10: 5.0, 12: 8.0},
        "ice_score": {d: 10 for d in _DAYS},
    },
)

MENG = Profile(
    name="Meng-like",
    source="Meng J et al., Front Immunol 2025, doi:10.3389/fimmu.2025.1716317",
    family="CLL1",
    case_mix="seed-series",
    baseline={
        "age_years": 39.0,
        "weight_kg": 60.0,
        "dose_cells_per_kg": 2.0e6,
        "marrow_blasts_pct": 33.2,
        "marrow_involvement": None,
        "cns_involvement": True,
        "prior_lines": 7,
        "neuro_comorbidity": False,
        "ldh_u_per_l": 400.0,
        "crp_mg_per_l": 20.0,
        "ferritin_ng_per_ml": 2000.0,
        "platelets_10e9_per_l": 40.0,
        "creatinine_mg_per_dl": 0.7,
        "disease": "AML",
        "car_target": "CLL1",
        "costimulatory_domain": "4-1BB",
        "lymphodepletion": "flu_cy",
        "car_product": "investigational",
    },
    crs_grade={d: (1 if 2 <= d <= 5 else 0) for d in _DAYS},
    icans_grade={d: (1 if d >= 11 else 0) for d in _DAYS},
    cd4={3: 2.0, 7: 8.0, 10: 12.0},
    cd8={3: 3.0, 7: 12.0, 10: 16.0},
    guessed=(
        "costimulatory domain 4-1BB, weight 60 kg",
        "LDH 400 U/L, CRP 20 mg/L, ferritin 2,000 ng/mL, platelets 40, creatinine 0.7",
        "CRS grade 1 on days 2-5; ICANS grade 1 from day 11 (the series' median onset)",
        "CD4+/CD8+ counts on days 3, 7 and 10",
        "fever 38.5 °C on the CRS days 2-5 (CRS grade 1 is fever, ASTCT 2019); daily CRP "
        "peaking at 90 mg/L on day 4; ICE 10, then 8 from day 11 (grade 1)",
    ),
    daily={
        "temperature_max_c": {d: (38.5 if 2 <= d <= 5 else 36.9) for d in _DAYS},
        "crp_mg_per_l": {0: 15.0, 2: 40.0, 3: 70.0, 4: 90.0, 5: 80.0, 7: 30.0, 10: 15.0, 12: 25.0},
        "ice_score": {d: (8 if d >= 11 else 10) for d in _DAYS},
    },
)

PROFILES = (KATSIN, MENG)


def _course(profile: Profile, params: GeneratorParameters) -> Course:
    horizon = params.horizon_days
    width = horizon + 1

    def daily(series: dict, fill: float) -> np.ndarray:
        out = np.full((1, width), fill)
        for d, v in series.items():
            out[0, d] = v
        return out

    icans = daily(profile.icans_grade, 0).astype(np.int64)
    crs_grade = daily(profile.crs_grade, 0).astype(np.int64)
    crs_state = np.where(crs_grade > 0, crs_grade, CRS_PRE)
    started = np.maximum.accumulate(crs_grade > 0, axis=1)
    crs_state = np.where(started & (crs_grade == 0), CRS_RESOLVED, crs_state)
    start = profile.start_grade
    steroids = np.zeros((1, width), dtype=np.int64)
    for d in range(1, width):
        steroids[0, d] = next_steroid_state(steroids[0, d - 1], icans[0, d], start)
    zeros = np.zeros((1, width), dtype=np.int64)
    sampling = params.expansion.sampling_days

    def sampled(series: dict) -> np.ndarray:
        return np.array([[series.get(d, 0.0 if d == 0 else np.nan) for d in sampling]])

    return Course(
        crs_state=crs_state,
        crs_grade=crs_grade,
        temperature_max_c=daily(profile.daily.get("temperature_max_c", {}), np.nan),
        hypotension=zeros,
        hypoxia=zeros,
        tocilizumab=zeros,
        anakinra=zeros,
        intrathecal=zeros,
        icans_level=zeros,
        cognition=np.where(
            np.isnan(ice := daily(profile.daily.get("ice_score", {}), np.nan)),
            np.vectorize(_ICE_FOR_GRADE.get)(np.minimum(icans, 2)),
            ice,
        ).astype(np.int64),
        consciousness=zeros,
        seizure=zeros,
        motor=zeros,
        edema=zeros,
        icans_grade=icans,
        steroid_state=steroids,
        steroid_mg=daily(profile.steroid_doses(params), 0.0),
        death_day=np.array([-1]),
        death_cause=np.array([-1]),
        cd4_latent=zeros.astype(float),
        cd8_latent=zeros.astype(float),
        cd4_measured=sampled(profile.cd4),
        cd8_measured=sampled(profile.cd8),
        sampling_days=tuple(sampling),
        drive=np.zeros(1),
        child=is_child(np.array([profile.baseline["age_years"]])),
        timing=np.zeros(1, dtype=np.int64),
        charting=Charting(np.array([False]), np.array([False]), np.array([True])),
        labs={lab: daily(profile.daily.get(lab, {}), np.nan) for lab in LABS},
    )


def _baseline(profile: Profile, params: GeneratorParameters) -> Baseline:
    b = profile.baseline
    table = pd.DataFrame([{k: (np.nan if v is None else v) for k, v in b.items()}])
    table["patient_id"] = profile.name
    blasts = np.array([np.nan if b["marrow_blasts_pct"] is None else b["marrow_blasts_pct"]])
    involved = np.array([np.nan if b["marrow_involvement"] is None else b["marrow_involvement"]])
    return Baseline(
        table=table,
        product=np.array([PRODUCT_NAMES.index(profile.product)]),
        latent_class=np.zeros(1, dtype=np.int64),
        prophylaxis=np.array([False]),
        burden=tumour_burden(blasts, involved.astype(float), params),
        disease_group=disease_group_codes(np.array([b["disease"]])),
        steroid_start_grade=np.array([profile.start_grade]),
    )


def profile_true_risk(
    profile: Profile, days: tuple[int, ...], params: GeneratorParameters | None = None
) -> dict[int, float]:
    """The exact true risk of the profile on each landmark day, under its centre's rules."""
    params = params or GeneratorParameters()
    grid = latent_grid(params)
    filt = ForwardFilter(_baseline(profile, params), _course(profile, params), grid, params)
    out = {}
    for day in sorted(days):
        while filt.day < day:
            filt.step()
        out[day] = float(filt.risk()[0])
    return out
