"""The one way into a cohort (``cohort.reader``) and the data dictionary written from the contract.

Real files under pytest's ``tmp_path``; the generator only makes the cohort the reader reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cohort.dictionary import DOCUMENT, render
from cohort.reader import read_cohort, read_metadata
from cohort.store import MANIFEST
from data.synthetic.cohort import CohortSpec, generate_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reader") / "c"
    generate_cohort(out, CohortSpec(n_patients=300, seed=9))
    return out


def test_reader_returns_the_contract_columns_only(cohort):
    tables = read_cohort(cohort).tables
    # the generator writes hidden classes, latent curves and findings; none of it comes through
    written = pd.read_parquet(cohort / "daily.parquet").columns
    assert "latent_icans_level" in written and "ice_score" in written
    # the treatment columns and the charted daily series are optional: a cohort that does not
    # record them has none (the generator's ICE and CAPD scores are the contract's columns)
    daily = list(tables["daily"].columns)
    assert daily[:4] == ["patient_id", "day", "crs_grade", "icans_grade"]
    assert set(daily[4:]) <= {
        "dexamethasone_mg",
        "tocilizumab_doses",
        "temperature_max_c",
        "ice_score",
        "capd_score",
        "crp_mg_per_l",
        "ferritin_ng_per_ml",
        "il6_pg_per_ml",
        "platelets_10e9_per_l",
        "fibrinogen_mg_per_dl",
        "lymphocytes_10e9_per_l",
        "ldh_u_per_l",
        "creatinine_mg_per_dl",
        "anakinra_doses",
        "intrathecal_doses",
    }
    assert "latent_icans_level" not in daily
    assert list(tables["measurements"].columns) == [
        "patient_id",
        "day",
        "cd4_car_t_cells_per_ul",
        "cd8_car_t_cells_per_ul",
    ]
    assert not [c for c in tables["patients"].columns if c.startswith("latent_")]
    assert "product_family" not in tables["patients"].columns
    assert {"severe_or_refractory_icans", "event_day"} <= set(tables["outcomes"].columns)
    assert "died_of_icans" not in tables["outcomes"].columns
    true_risk = [
        "patient_id",
        "landmark_day",
        "true_risk",
        "true_risk_routine",
        "true_risk_72h",
        "true_risk_7d",
    ]
    assert list(tables["true_risk"].columns) == true_risk


def test_reader_can_leave_the_true_risk_out(cohort):
    assert "true_risk" not in read_cohort(cohort, with_true_risk=False).tables


def test_metadata_says_where_the_data_came_from(cohort):
    meta = read_metadata(cohort)
    manifest = json.loads((cohort / MANIFEST).read_text())
    assert meta.provenance == "synthetic" and meta.synthetic
    assert meta.fingerprint == manifest["fingerprint"] and len(meta.fingerprint) == 16
    assert meta.n_patients == 300
    assert meta.has_true_risk
    assert meta.generator["seed"] == 9 and meta.generator["case_mix"] == "real-world"
    assert "synthetic cohort" in meta.describe() and "300 patients" in meta.describe()


def test_a_manifest_written_before_provenance_was_recorded_reads_as_synthetic(cohort, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    manifest = json.loads((cohort / MANIFEST).read_text())
    legacy = {k: v for k, v in manifest.items() if k not in ("provenance", "generator")}
    legacy |= {"synthetic": True, "case_mix": "real-world", "seed": 9, "generator_version": "1"}
    (old / MANIFEST).write_text(json.dumps(legacy))
    meta = read_metadata(old)
    assert meta.provenance == "synthetic"
    assert meta.generator == {"generator_version": "1", "case_mix": "real-world", "seed": 9}


def test_a_manifest_without_the_generator_is_real_data(cohort, tmp_path):
    manifest = json.loads((cohort / MANIFEST).read_text())
    real = {k: v for k, v in manifest.items() if k not in ("provenance", "generator")}
    (tmp_path / MANIFEST).write_text(json.dumps(real | {"provenance": "real"}))
    meta = read_metadata(tmp_path)
    assert meta.provenance == "real" and not meta.synthetic and meta.generator is None


def test_the_data_dictionary_is_up_to_date():
    assert DOCUMENT.read_text() == render(), (
        "docs/data-dictionary.md is stale: run 'uv run python -m cohort.dictionary'"
    )


def test_the_data_dictionary_states_the_published_rules():
    text = DOCUMENT.read_text()
    # spot checks against the contract as published, not against the specification objects
    assert "| `age_years` | number | y | a number from 0 to 100 | yes |" in text
    assert "one of CD19, CD19-CD22, BCMA, CLL1, CD123, CD7" in text
    assert "| `icans_grade` | whole number | - | a whole number from 0 to 4 | yes |" in text
    assert (
        "| `icans_grade_by_day` | list of `{day, grade}` | - | a whole number from 0 to 2 |" in text
    )
    # the treatment course: mg real, doses counted (at most 3 in 24 h); both optional columns
    assert (
        "| `dexamethasone_mg` | number | mg | a number from 0 to 2,000 | no (optional column) |"
        in text
    )
    assert (
        "| `tocilizumab_doses` | whole number | doses | a whole number from 0 to 3 | "
        "no (optional column) |" in text
    )
    assert "| `tocilizumab_doses_by_day` | list of `{day, doses}` | doses |" in text
    assert (
        "| `marrow_blasts_pct` | number | % | a number from 0 to 100 | no (may be empty) |" in text
    )
