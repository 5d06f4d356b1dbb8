"""A centre's own cohort: templates, validation (every problem at once), atomic import.

The valid cohort is written by ``tests/centre.py`` from the import documentation alone (no
generator): other effect sizes, non-additive effects, unsorted rows, uncharted days, optional
columns left out.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from centre import write_centre
from typer.testing import CliRunner

from cli.main import app
from cohort.importer import import_cohort, validate_source, write_templates
from cohort.reader import OBSERVABLE_COLUMNS, read_cohort
from icans.errors import InvalidCohortError

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture(scope="module")
def centre(tmp_path_factory) -> Path:
    return write_centre(tmp_path_factory.mktemp("centre") / "files", n=300, seed=1)


def _corrupt(centre: Path, to: Path) -> Path:
    """A copy with one problem of each kind planted (values read back as text)."""
    shutil.copytree(centre, to)

    def edit(name, fn):
        frame = pd.read_csv(to / f"{name}.csv", dtype=str, keep_default_na=False)
        fn(frame).to_csv(to / f"{name}.csv", index=False)

    def patients(p):
        p.loc[3, "age_years"] = "old"
        p.loc[5, "car_target"] = "CD99"
        return p

    def daily(d):
        d.loc[10, "day"] = "31"
        return pd.concat([d, d.iloc[[20]]])

    def outcomes(o):
        severe = o.index[o["severe_icans"] == "true"][0]
        o.loc[severe, "severe_icans"] = "false"
        quiet = o.index[(o["icans_max_grade"] == "0") & (o["death_day"] == "")][0]
        o.loc[quiet, "event_day"] = "12"
        return o

    edit("patients", patients)
    edit("daily", daily)
    edit("outcomes", outcomes)
    pd.DataFrame({"patient_id": ["ZZ9"], "day": [3], "crs_grade": [1], "icans_grade": [0]}).to_csv(
        to / "daily.csv", mode="a", header=False, index=False
    )
    return to


def test_a_centres_cohort_validates_and_imports_through_the_one_reader(centre, tmp_path):
    out = tmp_path / "cohort"
    meta = import_cohort(centre, out)
    assert meta.provenance == "real" and meta.n_patients == 300 and not meta.has_true_risk
    cohort = read_cohort(out)
    source = {
        n: pd.read_csv(centre / f"{n}.csv", dtype={"patient_id": str}) for n in OBSERVABLE_COLUMNS
    }
    for name, frame in cohort.tables.items():
        assert len(frame) == len(source[name])
        assert set(frame.columns) == set(source[name].columns) & set(OBSERVABLE_COLUMNS[name])
    assert "marrow_involvement" not in cohort.tables["patients"]  # an optional column left out
    daily = cohort.tables["daily"]
    assert daily.equals(daily.sort_values(["patient_id", "day"]))  # sorted on import (exact)
    manifest = out / "manifest.json"
    recorded = pd.read_json(manifest, typ="series")["source"]["files"]
    for name in OBSERVABLE_COLUMNS:
        digest = hashlib.sha256((centre / f"{name}.csv").read_bytes()).hexdigest()
        assert recorded[name]["sha256"] == digest
    # importing the same files again gives the same fingerprint
    assert import_cohort(centre, tmp_path / "again").fingerprint == meta.fingerprint


def test_parquet_files_are_read_as_well(centre, tmp_path):
    src = tmp_path / "parquet"
    src.mkdir()
    for name in OBSERVABLE_COLUMNS:
        frame = pd.read_csv(centre / f"{name}.csv", dtype={"patient_id": str})
        for col in frame.columns:
            if frame[col].dtype == object and set(frame[col].dropna()) <= {True, False}:
                frame[col] = frame[col].astype(bool)
        frame.to_parquet(src / f"{name}.parquet")
    _, tables = validate_source(src)
    assert len(tables["patients"]) == 300


def test_every_problem_is_reported_at_once_and_nothing_is_written(centre, tmp_path):
    bad = _corrupt(centre, tmp_path / "bad")
    out = tmp_path / "cohort"
    with pytest.raises(InvalidCohortError) as caught:
        import_cohort(bad, out)
    errors = caught.value.errors
    found = {(e.where.split(":")[0], e.field) for e in errors}
    assert {
        ("patients.csv", "age_years"),
        ("patients.csv", "car_target"),
        ("daily.csv", "day"),
        ("daily.csv", "patient_id+day"),
        ("daily.csv", "patient_id"),  # ZZ9 is not a listed patient
        ("outcomes.csv", "severe_icans"),
        ("outcomes.csv", "event_day"),
    } <= found, found
    age = next(e for e in errors if e.field == "age_years")
    assert age.value == "old" and age.expected == "a number"
    # line 5 of the file: the header is line 1, the fourth data row (index 3) is line 5
    assert re.search(r"\(line 5\)", age.where)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no hidden temp dir


def test_outcomes_that_agree_with_the_course_only_where_it_was_charted_pass(centre, tmp_path):
    """A course day removed (uncharted) cannot contradict the outcome columns."""
    src = tmp_path / "sparse"
    shutil.copytree(centre, src)
    daily = pd.read_csv(src / "daily.csv", dtype={"patient_id": str})
    daily[daily["day"] % 3 != 1].to_csv(src / "daily.csv", index=False)
    validate_source(src)


def test_generated_cohorts_meet_the_same_rules(tmp_path):
    """The generator's outcome columns follow the documented rules (its CSV output imports)."""
    from data.synthetic.cohort import CohortSpec, generate_cohort

    gen = tmp_path / "gen"
    generate_cohort(gen, CohortSpec(n_patients=400, seed=3, fmt="csv", with_true_risk=False))
    src = tmp_path / "src"
    src.mkdir()
    for name in OBSERVABLE_COLUMNS:
        shutil.copy(gen / f"{name}.csv", src / f"{name}.csv")
    checked, tables = validate_source(src)
    assert len(tables["patients"]) == 400
    assert "latent_class" in checked.ignored_columns()["patients"]


def test_templates_have_the_columns_of_the_data_dictionary(tmp_path):
    write_templates(tmp_path)
    dictionary = (ROOT / "docs" / "data-dictionary.md").read_text()
    for name in OBSERVABLE_COLUMNS:
        header = pd.read_csv(tmp_path / f"{name}.csv").columns.tolist()
        section = dictionary.split(f"### `{name}`")[1].split("###")[0].split("## ")[0]
        documented = re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.M)
        assert header == ["patient_id", *documented]
    with pytest.raises(Exception, match="overwrite"):
        write_templates(tmp_path)


def test_the_documented_example_directory_is_valid():
    _, tables = validate_source(ROOT / "docs" / "example-cohort")
    assert len(tables["patients"]) == 12


def test_cli_validate_lists_problems_and_exits_2(centre, tmp_path):
    ok = runner.invoke(app, ["cohort", "validate", str(centre)])
    assert ok.exit_code == 0, ok.output
    assert "valid (300 patients" in ok.output
    bad = _corrupt(centre, tmp_path / "bad")
    result = runner.invoke(app, ["cohort", "validate", str(bad)])
    assert result.exit_code == 2
    assert "patients.csv: patient" in result.output and "car_target='CD99'" in result.output
    missing = runner.invoke(app, ["cohort", "validate", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "an existing directory" in missing.output


def test_a_file_missing_a_required_column_is_reported_not_a_crash(centre, tmp_path):
    src = tmp_path / "no-grades"
    shutil.copytree(centre, src)
    daily = pd.read_csv(src / "daily.csv", dtype={"patient_id": str})
    daily.drop(columns=["icans_grade", "day"]).to_csv(src / "daily.csv", index=False)
    with pytest.raises(InvalidCohortError) as caught:
        validate_source(src)
    missing = {e.value for e in caught.value.errors if "column present" in e.expected}
    assert {"icans_grade", "day"} <= missing
