"""Generate one block of patients: baseline, course, outcomes and true risk, in memory.

Blocks are the unit of reproducibility: block ``k`` of a cohort with seed ``s`` is drawn from
``SeedSequence([s, k])``, so the same patients come out whatever the chunking on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from data.synthetic.baseline import Baseline, sample_baseline
from data.synthetic.kinetics import latent_grid
from data.synthetic.outcomes import derive_outcomes
from data.synthetic.parameters import CaseMix, GeneratorParameters
from data.synthetic.process import finding_tables, kernel_tables
from data.synthetic.routine import draw_charting
from data.synthetic.simulate import Course, simulate_course
from data.synthetic.true_risk import true_risk_table

BLOCK_SIZE = 10_000


@dataclass
class Block:
    baseline: Baseline
    course: Course
    outcomes: pd.DataFrame
    true_risk: pd.DataFrame | None


def generate_block(
    seed: int,
    block: int,
    n: int,
    case_mix: CaseMix,
    params: GeneratorParameters,
    with_true_risk: bool = True,
) -> Block:
    """Draw ``n`` patients (``n <= BLOCK_SIZE``) of block number ``block``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, block]))
    grid = latent_grid(params)
    base = sample_baseline(rng, n, block * BLOCK_SIZE, case_mix, grid, params)
    course = simulate_course(
        rng,
        base,
        draw_charting(rng, n, case_mix),
        grid,
        finding_tables(params),
        kernel_tables(params, grid.shifts),
        params,
    )
    outcomes = derive_outcomes(course, cast(pd.Series, base.table["patient_id"]))
    risk = None
    if with_true_risk:
        event_day = outcomes["event_day"].fillna(-1).to_numpy(np.int64)
        risk = true_risk_table(base, course, event_day, grid, params)
    return Block(base, course, outcomes, risk)
