"""The daily routine a CAR-T ward charts, read up to the prediction day: temperature, the ICE or
CAPD score, and the daily labs (layout generation 3, :data:`icans.daily_routine.DAILY_ROUTINE`).

Why these: the published dynamic ICANS model forecast from the daily maximum temperature, CRP
and IL-6 (Amidi, J Immunother Cancer 2022;10:e005459); severe neurotoxicity follows earlier and
higher rises of IL-6 (Santomasso, Cancer Discov 2018;8:958), higher peak ferritin and CRP
(Strati, Blood Adv 2020;4:3943) and a consumptive coagulopathy, low fibrinogen and platelets
(Hay, Blood 2017;130:2295); the ICE score falls within grade 1 before grade 2-3 (ASTCT 2019, Lee
et al.); m-EASIX after infusion predicted ICANS (Pennisi, Blood Adv 2021;5:3397: day +1 and +3;
day +3 best in children, Blood Adv 2025;9:270).

**Missing is missing.** Which series a centre charts says something about the centre, not the
patient (IL-6 is measured at some centres only, icans-facts-3): a series never charted up to day
L gives NaN predictors, never an imputed value; the trees send NaN down the branch they learned
for it.
"""

from __future__ import annotations

import numpy as np

from features import definitions as d
from features.layout import col, series
from features.steps import FeatureStep, Stateless, as_columns, require_fitted
from icans.astct import FEVER_THRESHOLD_C
from icans.contract import LAB_FIELDS
from icans.daily_routine import DAILY_ROUTINE
from icans.errors import InvalidInputError

# The daily labs (layout series), each with the value below which it is taken at that value
# before the log: about the smallest value a laboratory reports (ASSUMPTION: usual reporting
# resolution), so a lab reported as 0 stays finite. Fibrinogen's contract range starts above it.
LOG_FLOOR: dict[str, float] = {
    "crp_mg_per_l": 0.1,
    "ferritin_ng_per_ml": 1.0,
    "il6_pg_per_ml": 1.0,
    "platelets_10e9_per_l": 1.0,
    "fibrinogen_mg_per_dl": 1.0,
    "lymphocytes_10e9_per_l": 0.01,
    "ldh_u_per_l": 1.0,
    "creatinine_mg_per_dl": 0.01,
}
# Labs that fall with severity (consumptive coagulopathy, Hay 2017): their extreme to date is
# the lowest value, and their fall is read against the patient's own baseline.
FALLING_LABS = ("platelets_10e9_per_l", "fibrinogen_mg_per_dl")
DAILY_LABS = tuple(f.layout for f in DAILY_ROUTINE if f.layout in LOG_FLOOR)


def lab_names(lab: str) -> tuple[str, ...]:
    """The predictors of one daily lab: ``log_crp_latest_mg_per_l``, ``log_crp_max_to_date_
    mg_per_l``, ``crp_log_slope_recent`` (and ``platelets_latest_vs_baseline`` for the labs
    that fall)."""
    short, unit = lab.split("_", 1)
    extreme = "min" if lab in FALLING_LABS else "max"
    names = (
        f"log_{short}_latest_{unit}",
        f"log_{short}_{extreme}_to_date_{unit}",
        f"{short}_log_slope_recent",
    )
    return (*names, f"{short}_latest_vs_baseline") if lab in FALLING_LABS else names


class DailyLabs(FeatureStep):
    """The daily labs up to day L (``labs``: layout series, each one of :data:`DAILY_LABS`),
    each lab's predictors in turn (:func:`lab_names`):

    * ``log_<lab>_latest_<unit>``: natural log of the latest value on days 0..L (carried
      forward from the day it was drawn);
    * ``log_<lab>_max_to_date_<unit>``, or ``_min_to_date_`` for platelets and fibrinogen: the
      log of the worst value so far (peak CRP, ferritin and IL-6: Strati 2020, Santomasso 2018;
      nadir platelets and fibrinogen: Hay 2017);
    * ``<lab>_log_slope_recent``: the change of the log value per day, least squares over the
      three latest values (:func:`features.definitions.recent_slope`); NaN with fewer than two;
    * platelets and fibrinogen only, ``<lab>_latest_vs_baseline``: the latest value as a
      fraction of the patient's own baseline, the fall of a consumptive coagulopathy (Hay
      2017). Platelets: the baseline lab before lymphodepletion (the ``patients`` field of the
      same name); fibrinogen, which has no baseline field: its first daily value.

    Logs because the labs are right-skewed and change by factors (a CRP that quadruples); the
    trees are unaffected, the additive part reads them on the scale the effects are published
    on (LDH OR per log10, Gauthier; EASIX per doubling, Korell 2022). Values are floored at
    :data:`LOG_FLOOR` before the log.

    All labs in one pass: their (rows x days) blocks are stacked into one block of rows x labs
    rows, so the definitions run once, not once per lab. A single-patient request pays numpy's
    cost per call, not per value: eight labs one at a time took ~0.9 ms of a ~3 ms request. Each
    definition reduces a row on its own, so a lab's numbers are those of the lab alone.
    """

    def __init__(self, labs: tuple[str, ...] = DAILY_LABS):
        self.labs = labs

    def _labs(self) -> tuple[str, ...]:
        return tuple(self.labs)

    def fit(self, X, y=None):
        for lab in self._labs():
            if lab not in DAILY_LABS:
                raise InvalidInputError("lab", lab, "one of " + ", ".join(DAILY_LABS))
        self.n_features_in_ = np.asarray(X).shape[1]
        self.names_ = tuple(name for lab in self._labs() for name in lab_names(lab))
        return self

    def transform(self, X):
        require_fitted(self, "names_")
        raw = np.asarray(X, dtype=float)
        labs = self._labs()
        n, k = len(raw), len(labs)
        blocks = np.stack([series(raw, lab) for lab in labs], axis=1)  # rows x labs x days
        flat = blocks.reshape(n * k, -1)  # row i's lab j at i * k + j
        floors = np.tile([LOG_FLOOR[lab] for lab in labs], n)[:, None]
        logs = d.log_floored(flat, floors)
        falling = np.tile([lab in FALLING_LABS for lab in labs], n)
        latest = d.latest_value(logs).reshape(n, k)
        extreme = np.where(falling, d.min_to_date(logs), d.max_to_date(logs)).reshape(n, k)
        slope = d.recent_slope(logs).reshape(n, k)
        out = []
        for j, lab in enumerate(labs):
            out += [latest[:, j], extreme[:, j], slope[:, j]]
            if lab in FALLING_LABS:
                block = blocks[:, j]
                baseline = col(raw, lab) if lab in LAB_FIELDS else d.first_value(block)
                out.append(d.ratio(d.latest_value(block), baseline))
        return as_columns(out)

    def get_feature_names_out(self, input_features=None):
        require_fitted(self, "names_")
        return np.asarray(self.names_, dtype=object)


class DailyLab(DailyLabs):
    """One daily lab (``lab``), as :class:`DailyLabs` computes it: the step that models fitted
    before the labs were one step hold, one per lab (``daily_crp`` ... in their pickles)."""

    def __init__(self, lab: str = "crp_mg_per_l"):
        self.lab = lab

    def _labs(self) -> tuple[str, ...]:
        return (self.lab,)


class FeverFeatures(Stateless):
    """Fever so far, from the day's maximum temperature (fever: >= 38.0 C, ASTCT 2019).

    * ``fever_days_to_date``: days on 0..L with fever (NaN if no temperature was charted);
    * ``days_since_fever_onset``: L minus the first day with fever (NaN: no fever yet);
    * ``temperature_max_to_date_c``: the highest temperature so far.

    Fever is masked by tocilizumab and corticosteroids: once given, CRS is graded without it
    (ASTCT 2019, consensus footnote), so a patient whose CRS was treated has fewer fever days
    than one whose CRS was not. The CRS grades carry the CRS state through the treatment
    (:class:`features.transformers.CrsFeatures`); these predictors carry no monotone constraint.
    """

    names = ("fever_days_to_date", "days_since_fever_onset", "temperature_max_to_date_c")

    def _compute(self, raw):
        block = series(raw, "temperature_max_c")
        return [
            d.count_to_date(block, FEVER_THRESHOLD_C),
            d.days_since_first(block, FEVER_THRESHOLD_C, col(raw, "day_since_infusion")),
            d.max_to_date(block),
        ]


class CognitionFeatures(Stateless):
    """The encephalopathy screens so far (ASTCT 2019, Lee et al.): ICE from 12 years, CAPD
    below 12 (the contract's age windows), each the day's worst.

    * ``ice_score_latest``, ``ice_score_min_to_date`` (0-10, lower is worse);
    * ``ice_score_fall_from_best``: the best ICE so far minus the latest: ICE falls within
      grade 1 (7-9) before grade 2-3, dysgraphia often first (icans-facts-3);
    * ``capd_score_latest``, ``capd_score_max_to_date`` (0-32, higher is worse).

    Kept apart, not one "cognitive impairment" scale: the two instruments measure different
    things (ICE: orientation, naming, commands, writing, attention; CAPD: delirium behaviour
    reported by a carer) and ASTCT maps them to grades differently (ICE 7-9 / 3-6 / 0-2; CAPD
    only below or from 9), so no published mapping puts them on one scale, and with few children
    a pooled scale would be fitted almost entirely on ICE. Each is NaN outside its age window.
    """

    names = (
        "ice_score_latest",
        "ice_score_min_to_date",
        "ice_score_fall_from_best",
        "capd_score_latest",
        "capd_score_max_to_date",
    )

    def _compute(self, raw):
        ice, capd = series(raw, "ice_score"), series(raw, "capd_score")
        return [
            d.latest_value(ice),
            d.min_to_date(ice),
            d.fall_from_best(ice),
            d.latest_value(capd),
            d.max_to_date(capd),
        ]


class DailyEndothelialScores(Stateless):
    """m-EASIX (LDH x CRP / platelets, Pennisi 2021) and EASIX (LDH x creatinine / platelets,
    Luft 2017; Korell 2022) on the latest day up to L on which all three of its labs were
    charted (:func:`features.definitions.latest_common_day`); NaN if never. The same
    definitions as the scores before lymphodepletion (:class:`features.transformers.LabScores`).
    """

    names = ("m_easix_latest", "easix_latest")

    def _compute(self, raw):
        ldh, crp, plt = d.latest_common_day(
            series(raw, "ldh_u_per_l"),
            series(raw, "crp_mg_per_l"),
            series(raw, "platelets_10e9_per_l"),
        )
        ldh2, creat, plt2 = d.latest_common_day(
            series(raw, "ldh_u_per_l"),
            series(raw, "creatinine_mg_per_dl"),
            series(raw, "platelets_10e9_per_l"),
        )
        return [d.m_easix(ldh, crp, plt), d.easix(ldh2, creat, plt2)]


def daily_steps() -> list[tuple[str, FeatureStep]]:
    """The daily routine's feature steps, named as in :class:`features.transformers.
    ClinicalFeatures` (the labs: one step, ``daily_labs``)."""
    return [
        ("fever", FeverFeatures()),
        ("cognition", CognitionFeatures()),
        ("daily_labs", DailyLabs()),
        ("daily_scores", DailyEndothelialScores()),
    ]
