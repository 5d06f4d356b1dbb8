"""Draw the fields known before infusion (the data contract's baseline) and the hidden classes.

Labs are drawn as noisy readouts of the hidden inflammation class ``r`` and of tumour burden,
so a missing lab simply carries no information (no imputation is needed for the true risk).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from data.synthetic.parameters import (
    FAMILIES,
    MYELOID_OR_T_FAMILIES,
    CaseMix,
    GeneratorParameters,
)
from data.synthetic.process import LatentGrid, per_family
from icans.contract import LAB_FIELDS

LYMPHOMA = ("LBCL", "PMBCL", "MCL", "FL", "CLL")
_FAMILY_TARGET = {
    "CD19-CD28": "CD19",
    "CD19-4-1BB": "CD19",
    "CD19-CD22": "CD19-CD22",
    "BCMA": "BCMA",
    "CLL1": "CLL1",
    "CD123": "CD123",
    "CD7": "CD7",
}


@dataclass(frozen=True)
class Baseline:
    """Baseline table (contract names) plus the hidden values the process needs."""

    table: pd.DataFrame
    family: np.ndarray  # family code per patient
    u_index: np.ndarray
    r_index: np.ndarray


def lab_log_likelihood(
    lab: str,
    value: np.ndarray,
    r: np.ndarray,
    blasts: np.ndarray,
    child: np.ndarray,
    params: GeneratorParameters,
) -> np.ndarray:
    """log density of log(lab) under its truncated normal given ``r``; 0 where missing."""
    b = params.baseline
    mean = lab_log_mean(lab, r, blasts, child, params)
    sd = b.lab_log_sd[lab]
    low, high = (np.log(v) for v in b.lab_plausible_range[lab])
    x = np.log(value)
    mass = norm.cdf((high - mean) / sd) - norm.cdf((low - mean) / sd)
    ll = norm.logpdf(x, mean, sd) - np.log(mass)
    return np.where(np.isnan(x), 0.0, ll)


def lab_log_mean(
    lab: str, r: np.ndarray, blasts: np.ndarray, child: np.ndarray, params: GeneratorParameters
) -> np.ndarray:
    """Mean of log(lab) given inflammation ``r`` and marrow blasts (%)."""
    b = params.baseline
    mean = np.log(b.lab_median[lab]) + b.lab_r_loading[lab] * r
    mean = mean + b.lab_blasts_loading[lab] * np.asarray(blasts) / 100.0
    if lab == "creatinine_mg_per_dl":
        mean = mean + np.log(b.child_creatinine_factor) * np.asarray(child, dtype=float)
    return mean


def _categorical(
    rng: np.random.Generator, labels: list[str], probs: list[float], n: int
) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    return np.asarray(labels, dtype=object)[rng.choice(len(labels), size=n, p=p / p.sum())]


def sample_baseline(
    rng: np.random.Generator,
    n: int,
    first_id: int,
    case_mix: CaseMix,
    grid: LatentGrid,
    params: GeneratorParameters,
) -> Baseline:
    """Draw ``n`` patients of a case mix; ids run from ``first_id``."""
    b = params.baseline
    disease = _categorical(
        rng, list(case_mix.disease_share), list(case_mix.disease_share.values()), n
    )
    family = np.empty(n, dtype=object)
    for d, shares in case_mix.family_by_disease.items():
        rows = disease == d
        family[rows] = _categorical(rng, list(shares), list(shares.values()), int(rows.sum()))
    fam = np.array([FAMILIES.index(f) for f in family])

    car_target = np.array([_FAMILY_TARGET[f] for f in family], dtype=object)
    costim = np.where(np.isin(family, ["CD19-CD28"]), "CD28", "4-1BB").astype(object)
    myeloid = np.isin(family, MYELOID_OR_T_FAMILIES)
    costim[myeloid & (rng.random(n) < case_mix.myeloid_cd28_share)] = "CD28"

    # Age: a paediatric share per disease drawn uniformly over the paediatric range.
    paed = rng.random(n) < np.array([case_mix.paediatric_share.get(d, 0.0) for d in disease])
    mean_sd = np.array([b.adult_age_mean_sd[d] for d in disease], dtype=float)
    adult_age = np.clip(rng.normal(mean_sd[:, 0], mean_sd[:, 1]), *b.adult_age_range)
    age = np.where(paed, rng.uniform(*b.paediatric_age_range, size=n), adult_age)
    age = np.round(age, 1)
    child = age < 12

    median_weight = np.minimum(9.0 + 2.8 * age, b.adult_weight_median_kg)
    weight = np.round(median_weight * np.exp(rng.normal(0, b.weight_log_sd, n)), 1)

    dose = per_family(b.dose_median_cells_per_kg)[fam] * 10 ** (
        rng.normal(0, 1, n) * per_family(b.dose_log10_sd)[fam]
    )
    capped = family == "CD19-CD28"
    dose = np.where(capped, np.minimum(dose, b.dose_cap_total_cells / weight), dose)
    dose = np.round(dose, -3)

    involved = rng.random(n) < np.array([b.marrow_involvement_probability[d] for d in disease])
    ab = np.array([b.marrow_blasts_beta[d] for d in disease], dtype=float)
    blasts = np.where(involved, np.round(100 * rng.beta(ab[:, 0], ab[:, 1]), 1), 0.0)

    p_cns = np.array([b.cns_probability[d] for d in disease])
    odds = p_cns / (1 - p_cns) * case_mix.cns_odds_multiplier
    cns = rng.random(n) < odds / (1 + odds)

    prior_lines = 1 + rng.poisson(case_mix.prior_lines_mean, n)
    p_neuro = np.where(
        child, b.neuro_comorbidity_probability_child, b.neuro_comorbidity_probability_adult
    )
    neuro = rng.random(n) < p_neuro

    ld = _categorical(rng, list(b.lymphodepletion_share), list(b.lymphodepletion_share.values()), n)
    benda_ok = (family == "CD19-4-1BB") & np.isin(disease, LYMPHOMA)
    ld[(ld == "bendamustine") & ~benda_ok] = "flu_cy"

    u_index = rng.choice(len(grid.u_values), size=n, p=grid.u_prior)
    r_index = rng.choice(len(grid.r_values), size=n, p=grid.r_prior)
    r = grid.r_values[r_index]

    table = pd.DataFrame(
        {
            "patient_id": [f"P{i:07d}" for i in range(first_id, first_id + n)],
            "age_years": age,
            "weight_kg": weight,
            "disease": disease.astype(str),
            "car_target": car_target.astype(str),
            "costimulatory_domain": costim.astype(str),
            "product_family": family.astype(str),
            "dose_cells_per_kg": dose,
            "marrow_blasts_pct": blasts,
            "cns_involvement": cns,
            "prior_lines": prior_lines.astype(np.int64),
            "neuro_comorbidity": neuro,
            "lymphodepletion": ld.astype(str),
        }
    )
    for lab in LAB_FIELDS:
        # Truncated normal on the log scale, drawn by inverse CDF within the plausible range.
        mean, sd = lab_log_mean(lab, r, blasts, child, params), b.lab_log_sd[lab]
        low, high = (norm.cdf((np.log(v) - mean) / sd) for v in b.lab_plausible_range[lab])
        value = np.exp(mean + sd * norm.ppf(low + (high - low) * rng.random(n)))
        value[rng.random(n) < b.lab_missing_probability[lab]] = np.nan
        table[lab] = value
    return Baseline(table=table, family=fam, u_index=u_index, r_index=r_index)
