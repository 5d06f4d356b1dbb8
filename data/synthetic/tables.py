"""Turn a generated block into the cohort's tables, in the data contract's vocabulary.

Tables (one file each in the cohort directory):

``patients``      one row per patient: the baseline fields known before infusion.
``daily``         one row per patient and day 0-28 (until death): CRS grade, the day's maximum
                  temperature and organ support, tocilizumab doses, ICANS findings (ICE or
                  CAPD score) and derived ASTCT grade, corticosteroid (dexamethasone-equivalent
                  mg), anakinra and intrathecal doses, the laboratory values charted that day
                  (empty when not charted);
                  ``latent_*`` columns
                  are the generator's hidden truth (never observable, never a predictor).
``measurements``  one row per CAR-T blood sample: CD4+ and CD8+ CAR-T cells per uL.
``outcomes``      one row per patient: the outcome columns of the contract.
``true_risk``     one row per (patient, landmark day) for patients still event-free at L.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
import pandas as pd

from data.synthetic.chunk import Block
from icans.astct import CerebralEdema, Consciousness, Hypotension, Hypoxia, MotorFinding, Seizure

TABLES = ("patients", "daily", "measurements", "outcomes", "true_risk")


def _category(codes: np.ndarray, enum: type[Enum]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=[m.value for m in enum])


def block_tables(block: Block) -> dict[str, pd.DataFrame]:
    """The five tables of one block (``true_risk`` omitted when it was not computed)."""
    base, course = block.baseline, block.course
    ids = base.table["patient_id"].to_numpy()
    n, width = course.icans_grade.shape
    patients = base.table.copy()
    patients["latent_class"] = base.latent_class.astype(np.int64)
    patients["latent_expansion_timing_class"] = course.timing.astype(np.int64)
    patients["prophylactic_dexamethasone"] = base.prophylaxis

    alive = course.alive
    pid = np.repeat(ids, width).reshape(n, width)[alive]
    day = np.tile(np.arange(width), (n, 1))[alive]
    child = np.repeat(course.child, width).reshape(n, width)[alive]
    cognition = course.cognition[alive]
    unable = cognition < 0
    ice = pd.array(np.where(~child & ~unable, cognition, 0), dtype="Int64")
    ice[child | unable] = pd.NA
    capd = pd.array(np.where(child & ~unable, cognition, 0), dtype="Int64")
    capd[~child | unable] = pd.NA
    daily = pd.DataFrame(
        {
            "patient_id": pid,
            "day": day.astype(np.int64),
            "crs_grade": course.crs_grade[alive].astype(np.int64),
            "temperature_max_c": course.temperature_max_c[alive],
            "hypotension": _category(course.hypotension[alive], Hypotension),
            "hypoxia": _category(course.hypoxia[alive], Hypoxia),
            "ice_score": ice,
            "capd_score": capd,
            "assessment_impossible": unable,
            "consciousness": _category(course.consciousness[alive], Consciousness),
            "seizure": _category(course.seizure[alive], Seizure),
            "motor_finding": _category(course.motor[alive], MotorFinding),
            "cerebral_edema": _category(course.edema[alive], CerebralEdema),
            "icans_grade": course.icans_grade[alive].astype(np.int64),
            "dexamethasone_mg": course.steroid_mg[alive],
            "tocilizumab_doses": course.tocilizumab[alive].astype(np.int64),
            "anakinra_doses": course.anakinra[alive].astype(np.int64),
            "intrathecal_doses": course.intrathecal[alive].astype(np.int64),
            **{lab: values[alive] for lab, values in course.labs.items()},
            "latent_icans_level": course.icans_level[alive].astype(np.int64),
            "latent_cd4_car_t_cells_per_ul": course.cd4_latent[alive],
            "latent_cd8_car_t_cells_per_ul": course.cd8_latent[alive],
        }
    )

    sampling = np.asarray(course.sampling_days, dtype=np.int64)
    measured = ~np.isnan(course.cd4_measured)
    # A sample dated on or after the day of death is not taken.
    death = course.death_day
    measured &= (death[:, None] < 0) | (sampling[None, :] < death[:, None])
    k = measured.shape[1]
    measurements = pd.DataFrame(
        {
            "patient_id": np.repeat(ids, k).reshape(n, k)[measured],
            "day": np.tile(sampling, (n, 1))[measured],
            "cd4_car_t_cells_per_ul": course.cd4_measured[measured],
            "cd8_car_t_cells_per_ul": course.cd8_measured[measured],
        }
    )
    out = {
        "patients": patients,
        "daily": daily,
        "measurements": measurements,
        "outcomes": block.outcomes,
    }
    if block.true_risk is not None:
        out["true_risk"] = block.true_risk
    return out
