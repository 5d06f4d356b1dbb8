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


# --------------------------------------------------------------------------------------------
# The daily series as one observation per row (observations.csv)
# --------------------------------------------------------------------------------------------

OBS_COLUMNS = ["patient_id", "day", "series", "value", "unit"]


def _with_observations(centre: Path, to: Path, rows: list[tuple]) -> Path:
    shutil.copytree(centre, to)
    pd.DataFrame(rows, columns=OBS_COLUMNS).to_csv(to / "observations.csv", index=False)
    return to


def _charted(centre: Path) -> pd.DataFrame:
    """The centre's daily rows with the patient's age (to pick an adult's or a child's day)."""
    daily = pd.read_csv(centre / "daily.csv", dtype={"patient_id": str})
    patients = pd.read_csv(centre / "patients.csv", dtype={"patient_id": str})
    return daily.join(patients.set_index("patient_id")["age_years"], on="patient_id")


def test_observations_are_converted_and_pivoted_into_the_daily_table(centre, tmp_path):
    """Several values on one day in several units become the day's one value in the
    contract's unit; conversions checked against hand-computed values (100.4 °F = 38 °C;
    CRP 2.5 mg/dL = 25 mg/L; fibrinogen 3.1 g/L = 310 mg/dL; creatinine 88.42 umol/L =
    1 mg/dL; LDH 5 ukat/L = 300 U/L; platelets 150,000/uL = 150 x10^9/L)."""
    charted = _charted(centre)
    adult = charted[(charted["age_years"] >= 12) & (charted["icans_grade"] >= 1)].iloc[0]
    child = charted[charted["age_years"] < 12].iloc[0]
    a, c = (adult["patient_id"], int(adult["day"])), (child["patient_id"], int(child["day"]))
    rows = [
        (*a, "temperature_max_c", 100.4, "°F"),
        (*a, "temperature_max_c", 37.1, "C"),  # the day's highest: 38.0
        (*a, "ice_score", 9, ""),
        (*a, "ice_score", 7, "points"),  # the day's lowest: 7 (grade >= 1 that day)
        (*a, "crp_mg_per_l", 80, "mg/L"),
        (*a, "crp_mg_per_l", 2.5, "mg/dL"),  # labs: the day's last (latest draw), 25
        (*a, "fibrinogen_mg_per_dl", 3.1, "g/L"),
        (*a, "creatinine_mg_per_dl", 88.42, "µmol/L"),
        (*a, "ldh_u_per_l", 5, "ukat/L"),
        (*a, "platelets_10e9_per_l", 150_000, "/uL"),
        (*c, "capd_score", 0, ""),
        (*c, "capd_score", 0, ""),
        (*c, "il6_pg_per_ml", 12.5, "pg/mL"),
    ]
    src = _with_observations(centre, tmp_path / "long", rows)
    out = tmp_path / "cohort"
    import_cohort(src, out)
    daily = read_cohort(out).tables["daily"].set_index(["patient_id", "day"])
    day_a, day_c = daily.loc[a], daily.loc[c]
    expected = {
        "temperature_max_c": 38.0,
        "ice_score": 7,
        "crp_mg_per_l": 25.0,
        "fibrinogen_mg_per_dl": 310.0,
        "creatinine_mg_per_dl": 1.0,
        "ldh_u_per_l": 300.0,
        "platelets_10e9_per_l": 150.0,
    }
    for column, value in expected.items():
        assert day_a[column] == pytest.approx(value, rel=1e-12), column
    assert (day_c["capd_score"], day_c["il6_pg_per_ml"]) == (0, 12.5)
    assert pd.isna(day_c["ice_score"]) and pd.isna(day_a["capd_score"])
    filled = daily[list(expected)].notna().any(axis=1)
    assert filled.sum() == 1  # no other day was touched
    recorded = pd.read_json(out / "manifest.json", typ="series")["source"]["files"]
    digest = hashlib.sha256((src / "observations.csv").read_bytes()).hexdigest()
    assert recorded["observations"] == {"file": "observations.csv", "rows": 13, "sha256": digest}


def test_bad_observations_are_named_by_line_series_unit_and_rule(centre, tmp_path):
    """An unknown series or unit, an unreadable or implausible value, a day without a daily
    row, a value the daily table already gives: each named with its line, nothing written."""
    charted = _charted(centre)
    adult = charted[charted["age_years"] >= 12].iloc[0]
    pid, day = adult["patient_id"], int(adult["day"])
    days = set(charted.loc[charted["patient_id"] == pid, "day"])
    uncharted = next(d for d in range(29) if d not in days)
    src = _with_observations(
        centre,
        tmp_path / "bad-long",
        [
            (pid, day, "crp", 3.0, "mg/L"),  # line 2
            (pid, day, "ldh_u_per_l", 5.0, "mmol/L"),  # line 3
            (pid, day, "crp_mg_per_l", "high", "mg/L"),  # line 4
            (pid, day, "crp_mg_per_l", 200, "mg/dL"),  # line 5: 2,000 mg/L
            (pid, day, "temperature_max_c", 101.0, "C"),  # line 6: Fahrenheit written as C
            (pid, uncharted, "ferritin_ng_per_ml", 900, "ng/mL"),  # line 7
            (pid, day, "dexamethasone_mg", 10, "mg"),  # line 8: comes in the daily table
        ],
    )
    daily = pd.read_csv(src / "daily.csv", dtype={"patient_id": str})
    daily["il6_pg_per_ml"] = None
    daily.loc[adult.name, "il6_pg_per_ml"] = 40.0  # the adult's row (same index)
    daily.to_csv(src / "daily.csv", index=False)
    with (src / "observations.csv").open("a") as f:
        f.write(f"{pid},{day},il6_pg_per_ml,41,pg/mL\n")  # line 9: given in daily.csv already
    out = tmp_path / "cohort"
    with pytest.raises(InvalidCohortError) as caught:
        import_cohort(src, out)
    assert not out.exists()
    named = {
        (int(re.search(r"\(line (\d+)\)", e.where)[1]), e.field): e
        for e in caught.value.errors
        if e.where.startswith("observations.csv: patient ")
    }
    assert set(named) == {
        (2, "series"),
        (3, "unit"),
        (4, "value"),
        (5, "crp_mg_per_l"),
        (6, "temperature_max_c"),
        (7, "day"),
        (8, "series"),
        (9, "il6_pg_per_ml"),
    }, named
    unit = named[3, "unit"]
    assert unit.value == "mmol/L" and unit.where.startswith(f"observations.csv: patient {pid}")
    assert unit.expected == "a unit of ldh_u_per_l: one of U/L, IU/L, ukat/L"
    assert "crp_mg_per_l" in named[2, "series"].expected
    crp = named[5, "crp_mg_per_l"]
    assert crp.value == 200 and "2000 mg/L once converted" in crp.expected
    assert "from 0 to 1,000 mg/L" in crp.expected
    assert "from 30 to 45 °C" in named[6, "temperature_max_c"].expected
    assert named[7, "day"].value == uncharted and "daily table" in named[7, "day"].expected
    assert "already" in named[9, "il6_pg_per_ml"].expected


def test_a_systematic_problem_is_stated_once_with_its_count(centre, tmp_path):
    """A whole export in an unknown unit: the first rows named, then the count, not a
    million lines."""
    charted = _charted(centre).head(60)
    rows = [(r.patient_id, r.day, "crp_mg_per_l", 5.0, "mg/mL") for r in charted.itertuples()]
    src = _with_observations(centre, tmp_path / "unit", rows)
    with pytest.raises(InvalidCohortError) as caught:
        validate_source(src)
    units = [e for e in caught.value.errors if e.field == "unit"]
    assert len(units) == 21
    assert units[-1].value == "40 more rows" and "60 rows in all" in units[-1].expected
    assert units[-1].where == "observations.csv: table"


def test_observation_scores_meet_the_age_window_and_the_grade(centre, tmp_path):
    """Pivoted scores are checked as a daily cell would be: a CAPD on an adult's day, and an
    ICE score of 2 on a day charted ICANS grade 0 (ICE 0-2 is grade 3, ASTCT 2019)."""
    charted = _charted(centre)
    adult = charted[(charted["age_years"] >= 12) & (charted["icans_grade"] == 0)].iloc[0]
    a = (adult["patient_id"], int(adult["day"]))
    src = _with_observations(
        centre, tmp_path / "scores", [(*a, "capd_score", 3, ""), (*a, "ice_score", 2, "")]
    )
    with pytest.raises(InvalidCohortError) as caught:
        validate_source(src)
    found = {(e.field, e.value) for e in caught.value.errors}
    assert found == {("capd_score", 3), ("icans_grade", 0)}, caught.value.errors
    assert all(e.where.startswith(f"daily.csv: patient {a[0]}") for e in caught.value.errors)
