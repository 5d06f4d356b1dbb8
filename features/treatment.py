"""Treatment so far: corticosteroids and tocilizumab, read up to the prediction day.

Treatment is recorded, not assumed to act in one direction. Corticosteroids are given to treat
ICANS (so a dose marks ICANS that needed treatment) and as prophylaxis or early treatment,
which lowered severe neurotoxicity in ZUMA-1 (grade >= 3 neurologic events 13% with
dexamethasone 10 mg on days 0-2 in cohort 6, Oluwole, Br J Haematol 2021;194:690; 17% with
earlier steroids in cohort 4, Topp, Br J Haematol 2021;195:388; 28% in cohorts 1-2).
Tocilizumab marks CRS that needed treatment, and prophylactic tocilizumab raised severe
neurotoxicity (ZUMA-1 cohort 3: 41%; Santomasso, Gust and Perna, Blood 2023, How I treat,
Table 1). None of these predictors therefore carries a monotone constraint.

Steroid treatment of ICANS is dated by the one definition of :mod:`icans.steroids` (a day with
ICANS grade >= 1 and at least 20 mg dexamethasone-equivalent); steroid-refractoriness is judged
on the grades 48 and 72 h after that start, so the days since it tell the model where the
patient stands in that window. Second-line therapy (anakinra, intrathecal therapy) after the
start is refractory ICANS itself, the outcome, so no predictor reads it: a patient given it is
refused before any prediction.
"""

from __future__ import annotations

import numpy as np

from features import definitions as d
from features.layout import col, series
from features.steps import Stateless
from icans.steroids import RESPONSE_DAYS, persistence_threshold, steroid_start_day


class TreatmentFeatures(Stateless):
    """Corticosteroid (dexamethasone-equivalent mg) and tocilizumab given up to day L.

    * ``steroid_mg_today``: the latest recorded corticosteroid dose on or before day L (mg);
    * ``days_since_steroid_start``: L minus the day steroids were started for ICANS
      (:func:`icans.steroids.steroid_start_day`), NaN if not started by day L;
    * ``icans_grade_at_steroid_start``: the ICANS grade on that day, which sets the grade the
      48-h and 72-h readings must still reach to be refractory (NaN if not started);
    * ``prophylactic_steroid``: 1 if corticosteroid was given on day 0-2 before any ICANS grade
      >= 1 (:func:`features.definitions.dose_before_onset`), 0 if those days were recorded
      without, NaN if not recorded;
    * ``tocilizumab_doses_to_date``: tocilizumab doses on days 0..L (NaN if not recorded);
    * ``icans_unimproved_on_steroids``: 1 while the response to steroids is being judged (fewer
      than :data:`icans.steroids.RESPONSE_DAYS` days since the start) and today's ICANS grade
      is at least :func:`icans.steroids.persistence_threshold` of the start grade (the start
      grade, and at least 2): the ICANS persists as the refractoriness definition reads it, so
      the patient meets it if nothing changes by the 48-h and 72-h readings. A grade 1 that
      lingers is 0, as it is not refractory; a grade 1 start that has become grade 2 is 1. 0
      otherwise, NaN if no ICANS grade was recorded. The definition is the outcome's own
      (:mod:`icans.steroids`), whatever the grade at which a centre starts steroids, so a
      model trained where steroids start at grade 2 reads a grade 1 start (Meng 2025) the
      same way.
    """

    names = (
        "steroid_mg_today",
        "days_since_steroid_start",
        "icans_grade_at_steroid_start",
        "prophylactic_steroid",
        "tocilizumab_doses_to_date",
        "icans_unimproved_on_steroids",
    )

    def _compute(self, raw):
        mg = series(raw, "dexamethasone_mg")
        grade = series(raw, "icans_grade")
        start = steroid_start_day(grade, mg)
        since = col(raw, "day_since_infusion") - start
        today = d.latest_value(grade)
        at_start = d.value_on_day(grade, start)
        # NaN (no start) compares False
        unimproved = (since < RESPONSE_DAYS) & (today >= persistence_threshold(at_start))
        return [
            d.latest_value(mg),
            since,
            at_start,
            d.dose_before_onset(mg, grade),
            d.sum_to_date(series(raw, "tocilizumab_doses")),
            np.where(np.isnan(today), np.nan, unimproved.astype(float)),
        ]
