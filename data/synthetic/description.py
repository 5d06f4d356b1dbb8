"""The generator's description of itself, written into every cohort it makes.

Reports and training runs read a cohort through :mod:`cohort.reader` and never import the
generator; what they may say about a generated cohort (which effects the generator builds in,
its main assumptions, where its data card is) travels in the cohort's manifest, under
``generator``. Effects are declared on the contract's input fields, in the contract's vocabulary:
``sign`` +1 means more of the input (or, for ``field=value``, that category rather than the
others) raises the generator's risk of the target, -1 lowers it, 0 means the generator gives it
no effect at all. Each is read from the parameters (not restated), so it follows any change to
them.
"""

from __future__ import annotations

import numpy as np

from data.synthetic.parameters import GeneratorParameters
from icans.contract import LAB_FIELDS

GENERATOR_VERSION = "1"
DATA_CARD = "data/synthetic/README.md"

ASSUMPTIONS = (
    "Patients are drawn from a finite hidden-Markov process, so the generator knows each "
    "patient's true risk exactly.",
    "Two hidden classes per patient: CAR-T expansion propensity and inflammation.",
    "Pre-infusion labs (LDH, CRP, ferritin, platelets) are noisy readouts of inflammation and "
    "tumour burden; creatinine carries no signal; labs are missing completely at random.",
    "CD4+ CAR-T expansion follows a gamma-variate curve whose peak grows with dose (power "
    "0.35), marrow blasts and the expansion class; the size of its effect on ICANS is an "
    "ASSUMPTION.",
    "CRS does not cause ICANS directly: both share the hidden inflammation class.",
    "ICANS is a daily Markov chain on a latent severity; its log-odds drive adds the product "
    "family, marrow blasts, neurologic comorbidity, CNS involvement, Cy/Flu, age, expansion "
    "and inflammation.",
    "The ASTCT grade is derived from the drawn findings (ICE/CAPD, consciousness, seizure, "
    "motor, cerebral oedema), never drawn directly.",
    "Dexamethasone starts at the first grade >= 2; steroid-refractory is an operational "
    "definition (not lower 72 h later). Tocilizumab and non-ICANS deaths are not modelled.",
)


def _effect(field: str, value: float, basis: str) -> dict:
    return {"input": field, "sign": int(np.sign(value)), "basis": basis}


def declared_effects(p: GeneratorParameters) -> list[dict]:
    """The direction of every effect the generator builds into the target, per input field."""
    ic, ex, crs, base = p.icans, p.expansion, p.crs, p.baseline
    infl = ic.inflammation_effect
    out = [
        _effect(
            "marrow_blasts_pct",
            ic.marrow_blasts_per_25pct + ex.blasts_effect_per_100pct * ic.expansion_effect,
            f"icans.marrow_blasts_per_25pct = {ic.marrow_blasts_per_25pct}; "
            f"expansion.blasts_effect_per_100pct = {ex.blasts_effect_per_100pct}",
        ),
        _effect(
            "dose_cells_per_kg",
            ex.dose_exponent * ic.expansion_effect,
            f"expansion.dose_exponent = {ex.dose_exponent} x icans.expansion_effect = "
            f"{ic.expansion_effect}",
        ),
    ]
    for field in ("cd4_car_t_cells_per_ul", "cd8_car_t_cells_per_ul"):
        out.append(
            _effect(
                field,
                ic.expansion_effect,
                f"icans.expansion_effect = {ic.expansion_effect} (expansion above the "
                "product's typical peak)",
            )
        )
    out.append(
        _effect(
            "crs_grade_by_day",
            crs.r_effect * infl,
            f"shared inflammation class: crs.r_effect = {crs.r_effect}, "
            f"icans.inflammation_effect = {infl} (no direct CRS -> ICANS path)",
        )
    )
    for lab in LAB_FIELDS:
        out.append(
            _effect(
                lab,
                base.lab_r_loading[lab] * infl + base.lab_blasts_loading[lab],
                f"lab readout: baseline.lab_r_loading = {base.lab_r_loading[lab]}, "
                f"lab_blasts_loading = {base.lab_blasts_loading[lab]}",
            )
        )
    cd28, bb = ic.drive_intercept["CD19-CD28"], ic.drive_intercept["CD19-4-1BB"]
    out += [
        _effect(
            "neuro_comorbidity",
            ic.neuro_comorbidity,
            f"icans.neuro_comorbidity = {ic.neuro_comorbidity}",
        ),
        _effect(
            "cns_involvement", ic.cns_involvement, f"icans.cns_involvement = {ic.cns_involvement}"
        ),
        _effect("lymphodepletion=flu_cy", ic.flu_cy, f"icans.flu_cy = {ic.flu_cy}"),
        _effect("age_years", ic.age_per_10y, f"icans.age_per_10y = {ic.age_per_10y}"),
        _effect(
            "costimulatory_domain=CD28",
            cd28 - bb,
            f"icans.drive_intercept CD19-CD28 {cd28} vs CD19-4-1BB {bb}",
        ),
        _effect(
            "costimulatory_domain=4-1BB",
            bb - cd28,
            f"icans.drive_intercept CD19-4-1BB {bb} vs CD19-CD28 {cd28}",
        ),
        _effect(
            "icans_grade_by_day",
            1,
            "structural: the event needs the latent ICANS level to progress; ICANS already "
            "present means it has started (icans.progress_offset)",
        ),
    ]
    return out


def describe_generator(p: GeneratorParameters, case_mix: str, seed: int) -> dict:
    """The ``generator`` entry of a generated cohort's manifest."""
    return {
        "version": GENERATOR_VERSION,
        "parameters_fingerprint": p.fingerprint(),
        "case_mix": case_mix,
        "seed": seed,
        "effects": declared_effects(p),
        "assumptions": list(ASSUMPTIONS),
        "data_card": DATA_CARD,
    }
