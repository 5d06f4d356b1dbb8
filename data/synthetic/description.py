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

GENERATOR_VERSION = "2"
DATA_CARD = "data/synthetic/README.md"

ASSUMPTIONS = (
    "Patients are drawn from a finite hidden-Markov process, so the generator knows each "
    "patient's true risk exactly.",
    "Four hidden classes per patient: CAR-T expansion magnitude, inflammation, expansion timing "
    "(early, on time, late) and composition (typical or CD4-dominant).",
    "Products are dosed by their labels (per kg with caps, flat, weight bands) and given only "
    "inside their diseases and ages; marrow disease is blasts in the leukaemias and "
    "involvement otherwise; CNS involvement follows population rates by disease.",
    "Pre-infusion labs (LDH, CRP, ferritin, platelets, creatinine) are noisy readouts of "
    "inflammation, tumour burden and the disease; labs are missing completely at random.",
    "CD4+ CAR-T expansion follows a gamma-variate curve peaking on the patient's own day; its "
    "effect on ICANS follows the evidence per product (strong for CD28 products, weak for "
    "tisa-cel) and a CD4-dominant expansion doubles the odds (ASSUMPTION, bounded).",
    "CRS does not cause ICANS directly: both share the hidden inflammation class.",
    "ICANS is a daily Markov chain on a latent severity; the ASTCT grade is derived from drawn "
    "findings (ICE/CAPD, consciousness, seizure, motor, cerebral oedema), never drawn directly.",
    "Treatment follows the centre's rules from the observed grades, with a probability where "
    "practice varies: tocilizumab by CRS grade (fever masked afterwards), corticosteroids from "
    "the centre's start grade (1 or 2), a 3-day high-dose course at grade >= 3 or when "
    "refractory, then a taper; anakinra or intrathecal therapy as the second line; optional "
    "prophylaxis.",
    "Steroid-refractory: grade >= 2 persisting 48 and 72 h after the corticosteroid start, or "
    "second-line therapy after it (icans.steroids).",
    "Deaths from other causes (infection, CRS, progression) at a daily hazard per product "
    "family, four times higher during and after high-dose steroids; a death before the event "
    "is a non-event (cumulative incidence with competing deaths).",
    "Horizons (icans.horizons): from prediction day L, the event on days L+1..L+3 (72 hours), "
    "L+1..L+7 (7 days) and L+1..28 (day 28), every window ending by day 28 and read from "
    "event_day alone; a competing death is a non-event in every horizon.",
)


def _effect(field: str, value: float, basis: str) -> dict:
    return {"input": field, "sign": int(np.sign(value)), "basis": basis}


def declared_effects(p: GeneratorParameters) -> list[dict]:
    """The direction of every effect the generator builds into the target, per input field."""
    ic, ex, crs, base, tr = p.icans, p.expansion, p.crs, p.baseline, p.treatment
    infl = ic.inflammation_effect
    strongest = max(ic.expansion_effect.values())
    burden = ic.marrow_burden_per_25pct + ex.burden_effect * strongest
    out = [
        _effect(
            "marrow_blasts_pct",
            burden,
            f"icans.marrow_burden_per_25pct = {ic.marrow_burden_per_25pct}; "
            f"expansion.burden_effect = {ex.burden_effect}",
        ),
        _effect(
            "marrow_involvement",
            burden,
            f"an involved marrow carries the burden of {base.involvement_burden:.0%} blasts",
        ),
        _effect(
            "dose_cells_per_kg",
            max(ex.dose_exponent.values()) * strongest,
            f"expansion.dose_exponent {ex.dose_exponent} x icans.expansion_effect "
            f"{ic.expansion_effect} (none for CD19-4-1BB: ELIANA)",
        ),
        _effect(
            "cd4_car_t_cells_per_ul",
            strongest + ic.cd4_dominance_effect,
            f"icans.expansion_effect = {ic.expansion_effect} (expansion above the product's "
            f"typical peak); icans.cd4_dominance_effect = {ic.cd4_dominance_effect}",
        ),
        _effect(
            "cd8_car_t_cells_per_ul",
            strongest,
            f"icans.expansion_effect = {ic.expansion_effect}; for given CD4+ counts, more "
            "CD8+ cells mean a less CD4-dominant expansion (lower risk)",
        ),
        _effect(
            "crs_grade_by_day",
            crs.r_effect * infl,
            f"shared inflammation class: crs.r_effect = {crs.r_effect}, "
            f"icans.inflammation_effect = {infl} (no direct CRS -> ICANS path)",
        ),
    ]
    for lab in LAB_FIELDS:
        out.append(
            _effect(
                lab,
                base.lab_r_loading[lab] * infl + base.lab_burden_loading[lab],
                f"lab readout: baseline.lab_r_loading = {base.lab_r_loading[lab]}, "
                f"lab_burden_loading = {base.lab_burden_loading[lab]}",
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
            "cns_involvement",
            max(ic.cns_involvement.values()),
            f"icans.cns_involvement by disease group = {ic.cns_involvement}",
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
        _effect(
            "dexamethasone_mg_by_day",
            min(tr.prophylaxis_drive_effect, ic.steroid_progress_effect),
            f"protective: prophylaxis (treatment.prophylaxis_drive_effect = "
            f"{tr.prophylaxis_drive_effect}) and treatment (icans.steroid_progress_effect = "
            f"{ic.steroid_progress_effect}); a treated patient already has ICANS, so in data "
            "the association is positive",
        ),
        _effect(
            "tocilizumab_doses_by_day",
            0,
            "none on ICANS (it marks CRS, whose link to ICANS is the shared inflammation)",
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
