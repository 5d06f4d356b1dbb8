"""Which CAR-T products the service supports, and for whom: the licensed products' labels and
the combination rule the endpoint and the cohort reader apply (refused alike).

Part of the data contract (:mod:`icans.contract` re-exports every name): a patient's CAR target,
costimulatory domain, product, disease and age must fit together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The product infused: licensed products by their short INN names; anything else, academic and
# trial products included, is "investigational" (PRODUCT_LABELS says what each licensed one is).
CAR_PRODUCTS = (
    "axi-cel",
    "brexu-cel",
    "tisa-cel",
    "liso-cel",
    "ide-cel",
    "cilta-cel",
    "investigational",
)
INVESTIGATIONAL = "investigational"

# The products the service supports, by the diseases they are given for (CAR target -> diseases),
# and the diseases with no paediatric CAR-T practice: CD19 products in B-cell lymphomas, CLL and
# B-ALL; CD19-CD22 in B-ALL and LBCL; BCMA in myeloma; CLL1, CD123 and CD7 in AML; CD123 in
# BPDCN; CD7 in T-ALL (icans-facts sections 2.1-2.2: the pivotal trials and the myeloid and
# T-cell series). A patient outside these is outside what the model has learnt: refused, by the
# endpoint and by the cohort reader alike (combination_errors).
SUPPORTED_TARGETS: dict[str, tuple[str, ...]] = {
    "CD19": ("LBCL", "PMBCL", "MCL", "FL", "CLL", "B-ALL"),
    "CD19-CD22": ("B-ALL", "LBCL"),
    "BCMA": ("MM",),
    "CLL1": ("AML",),
    "CD123": ("AML", "BPDCN"),
    "CD7": ("T-ALL", "AML"),
}
ADULT_ONLY_DISEASES = ("MM", "CLL", "MCL", "FL")
ADULT_AGE_YEARS = 18


@dataclass(frozen=True)
class ProductLabel:
    """What a licensed product is and what it is given for, by its label: the CAR target, the
    costimulatory domain, and the diseases, each with the ages (inclusive) the label limits it
    to there. None: no limit beyond the disease's own (ADULT_ONLY_DISEASES). The labels in
    lymphoma and myeloma name adults too, but only the limits that tell one licensed product
    from another in a disease are refused: in B-ALL, tisa-cel up to 25 years and brexu-cel
    from 18; a child with LBCL given axi-cel is judged as any CD19 patient is."""

    car_target: str
    costimulatory_domain: str
    diseases: dict[str, tuple[float, float] | None]
    source: str

    def age_rule(self, disease: str) -> str:
        ages = self.diseases.get(disease)
        if ages is None:
            return ""
        low, high = ages
        return f"at least {low:g} years" if high == math.inf else f"up to {high:g} years"


# The licensed products (US prescribing information, icans-facts-2 section 1; the synthetic
# generator's product table draws on the same labels): a patient recorded with one of them must
# have its target and domain and one of its diseases, within its ages there. An
# "investigational" product may be any target, domain and disease (SUPPORTED_TARGETS still
# applies). Labels in LBCL cover DLBCL, high-grade B-cell lymphoma and transformed FL.
PRODUCT_LABELS: dict[str, ProductLabel] = {
    "axi-cel": ProductLabel(
        "CD19", "CD28", {"LBCL": None, "PMBCL": None, "FL": None}, "Yescarta label"
    ),
    "brexu-cel": ProductLabel(
        "CD19",
        "CD28",
        {"MCL": None, "B-ALL": (ADULT_AGE_YEARS, math.inf)},
        "Tecartus label",
    ),
    "tisa-cel": ProductLabel(
        "CD19",
        "4-1BB",
        {"B-ALL": (0, 25), "LBCL": None, "FL": None},
        "Kymriah label",
    ),
    "liso-cel": ProductLabel(
        "CD19",
        "4-1BB",
        {"LBCL": None, "PMBCL": None, "MCL": None, "FL": None, "CLL": None},
        "Breyanzi label",
    ),
    "ide-cel": ProductLabel("BCMA", "4-1BB", {"MM": None}, "Abecma label"),
    "cilta-cel": ProductLabel("BCMA", "4-1BB", {"MM": None}, "Carvykti label"),
}


def combination_errors(
    car_target: str,
    disease: str,
    age_years: float,
    costimulatory_domain: str | None = None,
    car_product: str | None = None,
) -> list[tuple]:
    """(field, value, rule) for each way a patient's product, disease and age fall outside
    :data:`SUPPORTED_TARGETS` and :data:`ADULT_ONLY_DISEASES`, and, for a licensed
    ``car_product``, outside its label (:data:`PRODUCT_LABELS`: its CAR target and
    costimulatory domain, its diseases and the ages there); empty when supported. A missing or
    "investigational" product is judged by the target alone."""
    out = []
    diseases = SUPPORTED_TARGETS.get(car_target, ())
    if disease not in diseases:
        out.append(
            (
                "car_target",
                car_target,
                f"a product supported for {disease}: "
                + (", ".join(t for t, d in SUPPORTED_TARGETS.items() if disease in d) or "none"),
            )
        )
    if disease in ADULT_ONLY_DISEASES and age_years < ADULT_AGE_YEARS:
        out.append(
            (
                "age_years",
                age_years,
                f"at least {ADULT_AGE_YEARS} for {disease} (no paediatric CAR-T indication)",
            )
        )
    return out + product_errors(car_product, car_target, costimulatory_domain, disease, age_years)


def product_errors(
    car_product: str | None,
    car_target: str,
    costimulatory_domain: str | None,
    disease: str,
    age_years: float,
) -> list[tuple]:
    """(field, value, rule) for a licensed product that contradicts the patient's CAR target
    or costimulatory domain, or is not licensed for the disease at the patient's age
    (:data:`PRODUCT_LABELS`); each rule names the products that would fit."""
    label = PRODUCT_LABELS.get(car_product or "")
    if label is None:  # missing, investigational, or not a product (refused by its own rule)
        return []
    out = []
    construct = (label.car_target, label.costimulatory_domain)
    if construct != (car_target, costimulatory_domain or label.costimulatory_domain):
        fitting = [
            p
            for p, other in PRODUCT_LABELS.items()
            if other.car_target == car_target
            and costimulatory_domain in (None, other.costimulatory_domain)
        ]
        given = f"car_target {car_target}" + (
            f" with costimulatory_domain {costimulatory_domain}" if costimulatory_domain else ""
        )
        out.append(
            (
                "car_product",
                car_product,
                f"a product of {given}: {_or([*fitting, INVESTIGATIONAL])} ({car_product} is "
                f"{label.car_target} with {label.costimulatory_domain}, {label.source})",
            )
        )
    if not _licensed(label, disease, age_years):
        fitting = [p for p, other in PRODUCT_LABELS.items() if _licensed(other, disease, age_years)]
        where = ", ".join(
            d + (f" ({label.age_rule(d)})" if label.age_rule(d) else "") for d in label.diseases
        )
        out.append(
            (
                "car_product",
                car_product,
                f"a product licensed for {disease} at {age_years:g} years: "
                f"{_or([*fitting, INVESTIGATIONAL])} ({car_product} is licensed for {where}, "
                f"{label.source})",
            )
        )
    return out


def _licensed(label: ProductLabel, disease: str, age_years: float) -> bool:
    if disease not in label.diseases:
        return False
    ages = label.diseases[disease]
    return ages is None or ages[0] <= age_years <= ages[1]


def _or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
