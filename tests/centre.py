"""A centre's cohort written from the import documentation alone, without the generator.

``write_centre(directory, n, seed)`` writes ``patients.csv``, ``daily.csv``,
``measurements.csv`` and ``outcomes.csv`` as ``docs/import-format.md`` describes them: text
booleans, unsorted rows, a few uncharted course days, optional columns left out (no
``marrow_involvement`` column, no tocilizumab, anakinra or intrathecal column), outcome columns
derived by the rules the documentation states (written out here again, not imported from the
product).

The world is deliberately unlike the generator's: other effect sizes, and non-additive effects
(CRS grade >= 2 matters only over 60; a high LDH matters only with a CD28 product). Nothing
here imports ``data.synthetic``, ``icans`` or ``cohort``.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from pathlib import Path

import pandas as pd

PRODUCTS = (  # (disease, car_target, costimulatory_domain, adult only, dose cells/kg)
    ("LBCL", "CD19", "CD28", True, 2.0e6),
    ("LBCL", "CD19", "4-1BB", True, 1.5e6),
    ("MM", "BCMA", "4-1BB", True, 5.0e6),
    ("B-ALL", "CD19", "4-1BB", False, 1.0e6),
)


def _patient(rng: random.Random, pid: str) -> tuple[dict, list[dict], list[dict], dict]:
    disease, target, costim, adult, dose = rng.choice(PRODUCTS)
    age = rng.uniform(19, 80) if adult else rng.uniform(3, 25)
    ldh = math.exp(rng.gauss(math.log(300), 0.6))
    patient = {
        "patient_id": pid,
        "age_years": round(age, 1),
        "weight_kg": round(rng.uniform(15, 40) if age < 12 else rng.uniform(50, 110), 1),
        "dose_cells_per_kg": round(dose * math.exp(rng.gauss(0, 0.2))),
        "marrow_blasts_pct": round(rng.uniform(0, 80), 1) if disease == "B-ALL" else "",
        "cns_involvement": "true" if rng.random() < 0.05 else "false",
        "prior_lines": rng.randint(1, 5),
        "neuro_comorbidity": "true" if rng.random() < 0.1 else "false",
        "ldh_u_per_l": round(ldh, 1),
        "crp_mg_per_l": round(math.exp(rng.gauss(math.log(20), 1.0)), 1),
        "ferritin_ng_per_ml": round(math.exp(rng.gauss(math.log(800), 0.8))),
        "platelets_10e9_per_l": round(math.exp(rng.gauss(math.log(150), 0.5))),
        "creatinine_mg_per_dl": round(rng.uniform(0.5, 1.5), 2),
        "disease": disease,
        "car_target": target,
        "costimulatory_domain": costim,
        "lymphodepletion": "flu_cy",
        "sex": rng.choice(["female", "male"]),
        # infusion date as YYYYMMDD, about one infusion every two days from January 2021
        "infusion_order": int(
            (dt.date(2021, 1, 1) + dt.timedelta(days=2 * int(pid[-4:]))).strftime("%Y%m%d")
        ),
    }
    # CRS: onset day 1-4, peak grade 1-3, lasts 3-7 days
    crs = [0] * 29
    if rng.random() < (0.9 if costim == "CD28" else 0.6):
        onset, peak = rng.randint(1, 4), rng.choices([1, 2, 3], [0.6, 0.3, 0.1])[0]
        for d in range(onset, min(29, onset + rng.randint(3, 7))):
            crs[d] = peak
    crs_max = max(crs)
    # ICANS, with non-additive effects
    logit = -2.2 + (1.0 if costim == "CD28" else 0.0) + (0.6 if target == "BCMA" else 0.0) * -1
    logit += 1.6 if (crs_max >= 2 and age > 60) else 0.0
    logit += 1.2 if (costim == "CD28" and ldh > 400) else 0.0
    icans = [0] * 29
    if rng.random() < 1 / (1 + math.exp(-logit)):
        onset = rng.randint(3, 10)
        peak = rng.choices([1, 2, 3, 4], [0.35, 0.35, 0.2, 0.1])[0]
        length = rng.randint(3, 10)
        for d in range(onset, min(29, onset + length)):
            icans[d] = peak if d < onset + length - 2 else max(1, peak - 2)
    # treatment: dexamethasone 20 mg from the first grade >= 2 day while ICANS lasts, 40 mg at
    # grade >= 3; tocilizumab for CRS >= 2 (not recorded: the column is left out)
    dex = [0.0] * 29
    started = False
    for d in range(29):
        started = started or icans[d] >= 2
        if started and icans[d] >= 1:
            dex[d] = 40.0 if icans[d] >= 3 else 20.0
    death_day = rng.randint(8, 27) if (rng.random() < 0.02 and max(icans) < 3) else None
    last = 28 if death_day is None else death_day - 1
    uncharted = {d for d in range(15, 29) if rng.random() < 0.1}  # not every day is charted
    daily = [
        {
            "patient_id": pid,
            "day": d,
            "crs_grade": crs[d],
            "icans_grade": icans[d],
            "dexamethasone_mg": dex[d],
        }
        for d in range(last + 1)
        if d not in uncharted
    ]
    peak_day, level = rng.uniform(7, 14), rng.gauss(math.log(20), 1.0)
    measurements = []
    for d in (0, 7, 14, 21):
        if d > last:
            continue
        cells = (
            0.0 if d == 0 else math.exp(level + 2.5 * (math.log(d / peak_day) + 1 - d / peak_day))
        )
        measurements.append(
            {
                "patient_id": pid,
                "day": d,
                "cd4_car_t_cells_per_ul": round(cells * 0.4, 3),
                "cd8_car_t_cells_per_ul": round(cells * 0.6, 3),
            }
        )
    outcome = _outcome(pid, icans[: last + 1], dex[: last + 1], death_day)
    return patient, daily, measurements, outcome


def _outcome(pid: str, icans: list[int], dex: list[float], death_day: int | None) -> dict:
    """The outcome columns by the documented rules, from the full course."""
    severe_day = next((d for d, g in enumerate(icans) if g >= 3), None)
    start = next(
        (d for d, (g, mg) in enumerate(zip(icans, dex, strict=True)) if g >= 1 and mg >= 20), None
    )
    # steroid-refractory: the grade 2 and 3 days after the start both at least the start grade
    # and at least 2 (refractory on the later day); no anakinra or intrathecal column is
    # written, so no escalation to second-line therapy
    refractory_day = None
    if start is not None and start + 3 < len(icans):
        threshold = max(icans[start], 2)
        if icans[start + 2] >= threshold and icans[start + 3] >= threshold:
            refractory_day = start + 3
    days = [d for d in (severe_day, refractory_day) if d is not None]
    onset = next((d for d, g in enumerate(icans) if g >= 1), None)
    return {
        "patient_id": pid,
        "severe_or_refractory_icans": "true" if days else "false",
        "event_day": min(days) if days else "",
        "icans_max_grade": max(icans),
        "icans_onset_day": "" if onset is None else onset,
        "severe_icans": "true" if severe_day is not None else "false",
        "steroid_refractory_icans": "true" if refractory_day is not None else "false",
        "death_day": "" if death_day is None else death_day,
        "death_cause": "" if death_day is None else "infection",
    }


def write_centre(directory: Path, n: int = 300, seed: int = 1, prefix: str = "C") -> Path:
    """Write a centre's cohort of ``n`` patients as CSV files in ``directory``."""
    rng = random.Random(seed)
    patients, daily, measurements, outcomes = [], [], [], []
    for i in range(n):
        p, d, m, o = _patient(rng, f"{prefix}{i:04d}")
        patients.append(p)
        daily += d
        measurements += m
        outcomes.append(o)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in (
        ("patients", patients),
        ("daily", daily),
        ("measurements", measurements),
        ("outcomes", outcomes),
    ):
        frame = pd.DataFrame(rows).sample(frac=1.0, random_state=seed)  # any row order
        frame.to_csv(directory / f"{name}.csv", index=False)
    return directory
