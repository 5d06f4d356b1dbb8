"""Shared fixtures: synthetic cohorts generated once per test session, in memory."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from data.synthetic.chunk import Block, generate_block
from data.synthetic.cohort import CohortSpec, generate_cohort
from data.synthetic.parameters import CASE_MIXES, GeneratorParameters
from data.synthetic.tables import block_tables


@dataclass
class CohortFrames:
    blocks: list[Block]
    tables: dict[str, pd.DataFrame]

    @property
    def patients_outcomes(self) -> pd.DataFrame:
        return self.tables["patients"].merge(self.tables["outcomes"], on="patient_id")


def make_cohort(case_mix: str, n_blocks: int, seed: int = 11) -> CohortFrames:
    params = GeneratorParameters()
    blocks = [
        generate_block(seed, k, 10_000, CASE_MIXES[case_mix], params) for k in range(n_blocks)
    ]
    per_block = [block_tables(b) for b in blocks]
    tables = {
        name: pd.concat([t[name] for t in per_block], ignore_index=True) for name in per_block[0]
    }
    return CohortFrames(blocks, tables)


@pytest.fixture(scope="session")
def block_of():
    """``block_of(n, seed)``: the tables of one generated block of ``n`` real-world patients
    (in memory, no files), made once per test process and handed out as copies, so a test may
    corrupt its tables without touching another's."""
    made: dict[tuple[int, int], dict[str, pd.DataFrame]] = {}

    def tables(n: int, seed: int) -> dict[str, pd.DataFrame]:
        if (n, seed) not in made:
            block = generate_block(seed, 0, n, CASE_MIXES["real-world"], GeneratorParameters())
            made[(n, seed)] = block_tables(block)
        return {name: frame.copy() for name, frame in made[(n, seed)].items()}

    return tables


@pytest.fixture(scope="session")
def real_world() -> CohortFrames:
    """20,000 patients of the real-world case mix (the default preset)."""
    return make_cohort("real-world", 2)


@pytest.fixture(scope="session")
def myeloid_centre() -> CohortFrames:
    """20,000 patients of the myeloid-heavy centre (many CLL1/CD123/CD7 products)."""
    return make_cohort("myeloid-centre", 2, seed=12)


@dataclass
class Champion:
    """A small cohort and a model trained on it, registered and promoted in a temporary store."""

    cohort: object
    store: object
    settings: object
    result: object


@pytest.fixture(scope="session")
def champion(tmp_path_factory) -> Champion:
    """Trained once per test process (each xdist worker) and shared by every file that needs a
    registered champion: training end to end, the in-process API, schemathesis, the real server.
    """
    from support import FAST

    from icans.config import load_settings
    from training.train import train

    cohort = tmp_path_factory.mktemp("champion-cohort") / "c"
    generate_cohort(cohort, CohortSpec(n_patients=2500, seed=3))
    store = tmp_path_factory.mktemp("champion-store")
    settings = load_settings(
        tracking_uri=f"sqlite:///{store}/mlflow.db", artifacts_dir=store / "artifacts"
    )
    result = train(cohort, FAST, settings)
    assert result.promoted, result.gate.summary()
    return Champion(cohort, store, settings, result)
