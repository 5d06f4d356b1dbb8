"""Draw the fields known before infusion (the data contract's baseline) and the hidden classes.

Products are chosen within their labels (diseases, ages) and dosed by their label's rule
(per kg with a cap, flat, or by weight band); marrow disease is measured the way each disease is
(blasts in the leukaemias, involvement otherwise); CNS involvement follows population rates by
disease unless a case mix enriches it by design. Labs are drawn as noisy readouts of the hidden
inflammation class ``r``, tumour burden and the disease, so a missing lab simply carries no
information (no imputation is needed for the true risk).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr
from scipy.stats import norm

from data.synthetic.kinetics import LatentGrid, tumour_burden
from data.synthetic.parameters import (
    FAMILIES,
    MYELOID_OR_T_FAMILIES,
    PRODUCT_NAMES,
    CaseMix,
    GeneratorParameters,
    Product,
)
from data.synthetic.process import DISEASE_GROUP_NAMES, disease_group_codes
from data.synthetic.treatment import steroid_start_grades
from icans.contract import LAB_FIELDS, LEUKAEMIAS

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
    """Baseline table (contract names plus generator-only columns) and the hidden values."""

    table: pd.DataFrame
    product: np.ndarray  # product code per patient (position in parameters.PRODUCT_NAMES)
    latent_class: np.ndarray  # joint hidden class index (see LatentGrid)
    prophylaxis: np.ndarray  # bool: prophylactic dexamethasone on days 0-2
    burden: np.ndarray  # marrow tumour burden on the blast scale (0-1)
    disease_group: np.ndarray  # position in process.DISEASE_GROUP_NAMES
    steroid_start_grade: np.ndarray  # ICANS grade at which steroids start (treatment rule)


def lab_log_likelihood(
    lab: str, value: np.ndarray, mean: np.ndarray, params: GeneratorParameters
) -> np.ndarray:
    """log density of log(lab) under its truncated normal around ``mean`` (:func:`lab_log_mean`
    of the patient's inflammation, burden and disease); 0 where missing."""
    b = params.baseline
    sd = b.lab_log_sd[lab]
    low, high = (np.log(v) for v in b.lab_plausible_range[lab])
    x = np.log(value)
    mass = ndtr((high - mean) / sd) - ndtr((low - mean) / sd)
    ll = -0.5 * ((x - mean) / sd) ** 2 - np.log(sd * np.sqrt(2 * np.pi)) - np.log(mass)
    return np.where(np.isnan(x), 0.0, ll)


def lab_log_mean(
    lab: str,
    r: np.ndarray,
    burden: np.ndarray,
    child: np.ndarray,
    group: np.ndarray,
    params: GeneratorParameters,
) -> np.ndarray:
    """Mean of log(lab) given inflammation ``r``, tumour burden and the disease group."""
    b = params.baseline
    shifts = b.lab_disease_log_shift[lab]
    group_shift = np.array([shifts.get(g, 0.0) for g in DISEASE_GROUP_NAMES])[np.asarray(group)]
    mean = np.log(b.lab_median[lab]) + group_shift + b.lab_r_loading[lab] * r
    mean = mean + b.lab_burden_loading[lab] * np.asarray(burden)
    if lab == "creatinine_mg_per_dl":
        mean = mean + np.log(b.child_creatinine_factor) * np.asarray(child, dtype=float)
    return mean


def _categorical(
    rng: np.random.Generator, labels: list[str], probs: list[float], n: int
) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    return np.asarray(labels, dtype=object)[rng.choice(len(labels), size=n, p=p / p.sum())]


def _allowed(product: Product, disease: np.ndarray, age: np.ndarray) -> np.ndarray:
    return np.isin(disease, product.diseases) & (age >= product.min_age) & (age <= product.max_age)


def _choose_products(
    rng: np.random.Generator,
    disease: np.ndarray,
    age: np.ndarray,
    case_mix: CaseMix,
    params: GeneratorParameters,
) -> tuple[np.ndarray, np.ndarray]:
    """Family then product of each patient, inside the products' labels.

    The case mix's family shares apply among the families with a product licensed (or trialled)
    for the patient's disease and age; e.g. a child with B-ALL never receives a CD28 product
    (brexu-cel is for adults), an adult over 25 never tisa-cel.
    """
    products = params.baseline.products
    n = len(disease)
    shares = np.zeros((n, len(FAMILIES)))
    for d, by_family in case_mix.family_by_disease.items():
        for f, share in by_family.items():
            shares[disease == d, FAMILIES.index(f)] = share
    feasible = np.zeros_like(shares, dtype=bool)
    for prod in products.values():
        feasible[:, FAMILIES.index(prod.family)] |= _allowed(prod, disease, age)
    weights = shares * feasible
    fallback = weights.sum(axis=1) == 0  # the mix's families are all outside the labels
    weights[fallback] = feasible[fallback]
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    fam = np.minimum((rng.random(n)[:, None] > cum).sum(axis=1), len(FAMILIES) - 1)
    names = list(products)
    pw = np.zeros((n, len(names)))
    for j, name in enumerate(names):
        prod = products[name]
        ok = _allowed(prod, disease, age) & (fam == FAMILIES.index(prod.family))
        pw[ok, j] = prod.weight
    cum = np.cumsum(pw / pw.sum(axis=1, keepdims=True), axis=1)
    pick = np.minimum((rng.random(n)[:, None] > cum).sum(axis=1), len(names) - 1)
    return fam, np.asarray(names, dtype=object)[pick]


def _dose(
    rng: np.random.Generator, product: np.ndarray, weight: np.ndarray, params: GeneratorParameters
) -> np.ndarray:
    """CAR+ cells per kg by each product's label rule."""
    dose = np.empty(len(product))
    z = rng.normal(size=len(product))
    for name, prod in params.baseline.products.items():
        rows = product == name
        if not rows.any():
            continue
        w, zz = weight[rows], z[rows]
        per_kg = np.clip(prod.median * 10 ** (prod.log10_sd * zz), prod.low, prod.high)
        if prod.rule == "flat":
            value = per_kg / w
        elif prod.rule == "weight_band":
            flat = np.clip(
                prod.flat_median * 10 ** (prod.log10_sd * zz), prod.flat_low, prod.flat_high
            )
            value = np.where(w <= prod.band_kg, per_kg, flat / w)
        else:
            value = np.minimum(per_kg, prod.cap_total / w)
        dose[rows] = value
    return np.round(dose, -3)


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
    ).astype(str)

    # Age: a paediatric share per disease drawn uniformly over the paediatric range.
    paed = rng.random(n) < np.array([case_mix.paediatric_share.get(d, 0.0) for d in disease])
    mean_sd = np.array([b.adult_age_mean_sd[d] for d in disease], dtype=float)
    # A normal truncated to the adult range, drawn by inverse CDF: clipping would pile patients
    # up at exactly the bounds.
    low, high = (norm.cdf((v - mean_sd[:, 0]) / mean_sd[:, 1]) for v in b.adult_age_range)
    adult_age = mean_sd[:, 0] + mean_sd[:, 1] * norm.ppf(low + (high - low) * rng.random(n))
    age = np.round(np.where(paed, rng.uniform(*b.paediatric_age_range, size=n), adult_age), 1)
    child = age < 12
    median_weight = np.minimum(9.0 + 2.8 * age, b.adult_weight_median_kg)
    weight = np.round(median_weight * np.exp(rng.normal(0, b.weight_log_sd, n)), 1)

    fam, product = _choose_products(rng, disease, age, case_mix, params)
    family = np.asarray(FAMILIES, dtype=object)[fam]
    car_target = np.array([_FAMILY_TARGET[f] for f in family], dtype=object)
    costim = np.where(family == "CD19-CD28", "CD28", "4-1BB").astype(object)
    myeloid = np.isin(family, MYELOID_OR_T_FAMILIES)
    costim[myeloid & (rng.random(n) < case_mix.myeloid_cd28_share)] = "CD28"
    dose = _dose(rng, product, weight, params)

    leukaemia = np.isin(disease, LEUKAEMIAS)
    ab = np.array([b.marrow_blasts_beta.get(d, (1.0, 1.0)) for d in disease], dtype=float)
    blasts = np.where(leukaemia, np.round(100 * rng.beta(ab[:, 0], ab[:, 1]), 1), np.nan)
    p_inv = np.array([b.marrow_involvement_probability.get(d, 0.0) for d in disease])
    involved = (rng.random(n) < p_inv).astype(float)
    involved[leukaemia | (rng.random(n) < b.marrow_involvement_missing)] = np.nan
    burden = tumour_burden(blasts, involved, params)

    p_cns = case_mix.cns_probability or b.cns_probability
    cns = rng.random(n) < np.array([p_cns[d] for d in disease])

    prior_lines = 1 + rng.poisson(case_mix.prior_lines_mean, n)
    p_neuro = np.where(
        child, b.neuro_comorbidity_probability_child, b.neuro_comorbidity_probability_adult
    )
    neuro = rng.random(n) < p_neuro

    ld = _categorical(rng, list(b.lymphodepletion_share), list(b.lymphodepletion_share.values()), n)
    benda_ok = (family == "CD19-4-1BB") & np.isin(disease, LYMPHOMA)
    ld[(ld == "bendamustine") & ~benda_ok] = "flu_cy"
    prophylaxis = rng.random(n) < np.array([case_mix.prophylaxis_share[f] for f in family])

    latent = grid.draw(rng, n)
    r = grid.class_r()[latent]
    group = disease_group_codes(disease)

    table = pd.DataFrame(
        {
            "patient_id": [f"P{i:07d}" for i in range(first_id, first_id + n)],
            "age_years": age,
            "weight_kg": weight,
            "disease": disease,
            "car_target": car_target.astype(str),
            "costimulatory_domain": costim.astype(str),
            "product_family": family.astype(str),
            "product": product.astype(str),
            "car_product": np.array(
                [params.baseline.products[name].car_product for name in product], dtype=object
            ),
            "dose_cells_per_kg": dose,
            "marrow_blasts_pct": blasts,
            "marrow_involvement": pd.array(
                np.where(np.isnan(involved), False, involved == 1), dtype="boolean"
            ),
            "cns_involvement": cns,
            "prior_lines": prior_lines.astype(np.int64),
            "neuro_comorbidity": neuro,
            "lymphodepletion": ld.astype(str),
        }
    )
    table.loc[np.isnan(involved), "marrow_involvement"] = pd.NA
    # Record fields, no causal effect: a child stream, so every other draw is as before.
    record_rng = rng.spawn(1)[0]
    table["sex"] = np.where(record_rng.random(n) < b.female_share, "female", "male")
    table["infusion_order"] = np.arange(first_id, first_id + n, dtype=np.int64)
    for lab in LAB_FIELDS:
        # Truncated normal on the log scale, drawn by inverse CDF within the plausible range.
        mean = lab_log_mean(lab, r, burden, child, group, params)
        sd = b.lab_log_sd[lab]
        low, high = (norm.cdf((np.log(v) - mean) / sd) for v in b.lab_plausible_range[lab])
        value = np.exp(mean + sd * norm.ppf(low + (high - low) * rng.random(n)))
        value[rng.random(n) < b.lab_missing_probability[lab]] = np.nan
        table[lab] = value
    return Baseline(
        table=table,
        product=np.array([PRODUCT_NAMES.index(name) for name in product], dtype=np.int64),
        latent_class=latent,
        prophylaxis=prophylaxis,
        burden=burden,
        disease_group=group,
        steroid_start_grade=steroid_start_grades(prophylaxis, case_mix.steroid_start_grade),
    )
