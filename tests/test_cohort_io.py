"""The synthetic cohort on disk: files, manifest, reproducibility, atomicity and the data contract.

Every test writes real files under pytest's ``tmp_path`` (no mocks). Cohorts are small
(300-2,500 patients) except where two blocks are needed (``BLOCK_SIZE + 500``) or a generation
runs in a process of its own: those tests are marked ``slow`` (tests/conftest.py). Cohorts that
several tests only read are generated once per module.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohort.store import MANIFEST, read_manifest, read_table, remove_abandoned
from data.synthetic.chunk import BLOCK_SIZE
from data.synthetic.cohort import CohortSpec, generate_cohort
from data.synthetic.parameters import CASE_MIXES
from icans.errors import CohortNotFoundError, InvalidInputError
from icans.products import SUPPORTED_TARGETS

ROOT = Path(__file__).resolve().parent.parent

TABLE_NAMES = ("patients", "daily", "measurements", "outcomes", "true_risk")
SMALL = 2_500
TWO_BLOCKS = BLOCK_SIZE + 500

PATIENT_COLUMNS = [
    "patient_id",
    "age_years",
    "weight_kg",
    "disease",
    "car_target",
    "costimulatory_domain",
    "dose_cells_per_kg",
    "marrow_blasts_pct",
    "cns_involvement",
    "prior_lines",
    "neuro_comorbidity",
    "ldh_u_per_l",
    "crp_mg_per_l",
    "ferritin_ng_per_ml",
    "platelets_10e9_per_l",
    "creatinine_mg_per_dl",
]
OUTCOME_COLUMNS = [
    "icans_max_grade",
    "icans_onset_day",
    "severe_icans",
    "steroid_refractory_icans",
    "severe_or_refractory_icans",
    "event_day",
]
TRUE_RISK_COLUMNS = [
    "patient_id",
    "landmark_day",
    "true_risk",
    "true_risk_routine",
    "true_risk_72h",
    "true_risk_7d",
]

# The CAR target each disease may receive, and the target each product family carries.
LYMPHOMA = ("LBCL", "PMBCL", "MCL", "FL", "CLL")
TARGET_BY_FAMILY = {
    "CD19-CD28": "CD19",
    "CD19-4-1BB": "CD19",
    "CD19-CD22": "CD19-CD22",
    "BCMA": "BCMA",
    "CLL1": "CLL1",
    "CD123": "CD123",
    "CD7": "CD7",
}


def file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file in ``directory`` (manifest included), by file name."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def leftovers(out: Path) -> list[str]:
    """Hidden temp (``.name.tmp-*``) or backup (``.name.old-*``) siblings of ``out``."""
    return sorted(p.name for p in out.parent.glob(f".{out.name}.*"))


def as_comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float64 (nullable Int64 and CSV's float-with-NaN compare equal)."""
    out = frame.copy()
    truth = {True: 1.0, False: 0.0, "True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0}
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_bool_dtype(values) or set(values.dropna().unique()) <= set(truth):
            # booleans, nullable booleans and CSV's text booleans with empty cells
            out[column] = values.astype(object).map(truth).astype("float64")
        elif pd.api.types.is_numeric_dtype(values):
            out[column] = values.astype("float64")
        else:
            out[column] = values.astype(str)
    return out


# --------------------------------------------------------------------------- shared cohorts


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,500 real-world patients, Parquet, true risk on, seed 11."""
    out = tmp_path_factory.mktemp("parquet") / "cohort"
    generate_cohort(out, CohortSpec(n_patients=SMALL, seed=11))
    return out


@pytest.fixture(scope="module")
def csv_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same cohort as ``cohort`` written as CSV."""
    out = tmp_path_factory.mktemp("csv") / "cohort"
    generate_cohort(out, CohortSpec(n_patients=SMALL, seed=11, fmt="csv"))
    return out


@pytest.fixture(scope="module")
def two_block_cohorts(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """A cohort spanning two blocks, generated with 1 and with 2 worker processes."""
    base = tmp_path_factory.mktemp("blocks")
    outs = {}
    for workers in (1, 2):
        outs[workers] = base / f"workers{workers}"
        generate_cohort(outs[workers], CohortSpec(n_patients=TWO_BLOCKS, seed=3), workers=workers)
    return outs


@pytest.fixture(scope="module")
def tables(cohort: Path) -> dict[str, pd.DataFrame]:
    return {name: read_table(cohort, name) for name in TABLE_NAMES}


# --------------------------------------------------------------------------- files and manifest


def test_directory_holds_five_tables_and_manifest(cohort: Path) -> None:
    names = sorted(p.name for p in cohort.iterdir())
    assert names == sorted([MANIFEST, *(f"{t}.parquet" for t in TABLE_NAMES)])


def test_manifest_describes_the_request(cohort: Path) -> None:
    m = read_manifest(cohort)
    assert m["n_patients"] == SMALL
    assert m["provenance"] == "synthetic"
    assert m["generator"]["seed"] == 11
    assert m["generator"]["case_mix"] == "real-world"
    assert m["format"] == "parquet"
    assert set(m["tables"]) == set(TABLE_NAMES)


def test_manifest_declares_the_generators_effects(cohort: Path) -> None:
    """The generator describes its own effects in the cohort (reports read them from there):
    the data card's directions, checked against it independently here."""
    effects = {e["input"]: e["sign"] for e in read_manifest(cohort)["generator"]["effects"]}
    assert effects["dose_cells_per_kg"] == 1  # dose raises expansion, expansion raises ICANS
    assert effects["marrow_blasts_pct"] == 1
    assert effects["platelets_10e9_per_l"] == -1  # platelets fall with inflammation
    assert effects["creatinine_mg_per_dl"] == 0  # the data card: creatinine carries no signal
    assert effects["costimulatory_domain=CD28"] == -effects["costimulatory_domain=4-1BB"] == 1
    assert all(e["basis"] for e in read_manifest(cohort)["generator"]["effects"])


def test_manifest_row_counts_match_files(cohort: Path) -> None:
    m = read_manifest(cohort)
    for name in TABLE_NAMES:
        assert len(read_table(cohort, name)) == m["tables"][name]["rows"], name
    assert m["tables"]["patients"]["rows"] == SMALL
    assert m["tables"]["outcomes"]["rows"] == SMALL


def test_manifest_checksums_match_files(cohort: Path) -> None:
    m = read_manifest(cohort)
    hashes = file_hashes(cohort)
    for name, entry in m["tables"].items():
        assert hashes[entry["file"]] == entry["sha256"], name


def test_patients_table_has_contract_columns(tables: dict[str, pd.DataFrame]) -> None:
    patients = tables["patients"]
    assert isinstance(patients, pd.DataFrame)
    assert set(PATIENT_COLUMNS) <= set(patients.columns)
    assert patients["patient_id"].is_unique


def test_outcomes_table_has_contract_columns(tables: dict[str, pd.DataFrame]) -> None:
    outcomes = tables["outcomes"]
    assert set(["patient_id", *OUTCOME_COLUMNS]) <= set(outcomes.columns)
    assert outcomes["patient_id"].is_unique
    assert set(outcomes["patient_id"]) == set(tables["patients"]["patient_id"])


def test_true_risk_table_has_contract_columns(tables: dict[str, pd.DataFrame]) -> None:
    assert list(tables["true_risk"].columns) == TRUE_RISK_COLUMNS


def test_read_table_selects_columns(cohort: Path) -> None:
    frame = read_table(cohort, "patients", ["patient_id", "disease"])
    assert list(frame.columns) == ["patient_id", "disease"]
    assert len(frame) == SMALL


def test_read_table_unknown_table_raises_cohort_not_found(cohort: Path) -> None:
    with pytest.raises(CohortNotFoundError, match="no 'labs' table"):
        read_table(cohort, "labs")


def test_read_manifest_of_empty_dir_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(CohortNotFoundError) as info:
        read_manifest(tmp_path)
    message = str(info.value)
    assert "not a cohort directory" in message
    assert "icans cohort generate" in message


def test_read_table_of_empty_dir_raises_cohort_not_found(tmp_path: Path) -> None:
    with pytest.raises(CohortNotFoundError):
        read_table(tmp_path, "patients")


# --------------------------------------------------------------------------- reproducibility


def test_same_seed_gives_byte_identical_files(cohort: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_cohort(again, CohortSpec(n_patients=SMALL, seed=11))
    # byte for byte: one seed, the generator's own code, on this machine in this run
    assert file_hashes(again) == file_hashes(cohort)


def test_different_seed_gives_different_bytes(cohort: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    generate_cohort(other, CohortSpec(n_patients=SMALL, seed=12))
    a, b = file_hashes(cohort), file_hashes(other)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] != b[name], name
    assert read_manifest(cohort)["fingerprint"] != read_manifest(other)["fingerprint"]


@pytest.mark.slow
def test_two_workers_give_same_bytes_as_one(two_block_cohorts: dict[int, Path]) -> None:
    assert read_manifest(two_block_cohorts[1])["tables"]["patients"]["rows"] == TWO_BLOCKS
    # byte for byte: each block from its own seed by the same code, on this machine
    assert file_hashes(two_block_cohorts[2]) == file_hashes(two_block_cohorts[1])


@pytest.mark.slow
def test_patient_ids_run_on_across_the_block_boundary(two_block_cohorts: dict[int, Path]) -> None:
    ids = read_table(two_block_cohorts[1], "patients", ["patient_id"])["patient_id"]
    assert list(ids) == [f"P{i:07d}" for i in range(TWO_BLOCKS)]


@pytest.mark.slow
def test_first_block_does_not_depend_on_cohort_size(
    two_block_cohorts: dict[int, Path], tmp_path: Path
) -> None:
    one_block = tmp_path / "one-block"
    generate_cohort(one_block, CohortSpec(n_patients=BLOCK_SIZE, seed=3, with_true_risk=False))
    for name in ("patients", "outcomes"):
        small = read_table(one_block, name)
        large = read_table(two_block_cohorts[1], name).iloc[:BLOCK_SIZE]
        # exact (pandas' default for floats is rtol=1e-5): the same block from the same seed by
        # the same code, on this machine in this run
        pd.testing.assert_frame_equal(
            small, large.reset_index(drop=True), obj=name, check_exact=True
        )


# --------------------------------------------------------------------------- CSV


def test_csv_files_end_in_csv(csv_cohort: Path) -> None:
    m = read_manifest(csv_cohort)
    assert m["format"] == "csv"
    assert all(entry["file"].endswith(".csv") for entry in m["tables"].values())
    assert sorted(p.name for p in csv_cohort.iterdir()) == sorted(
        [MANIFEST, *(f"{t}.csv" for t in TABLE_NAMES)]
    )


def test_csv_row_counts_match_parquet(csv_cohort: Path, cohort: Path) -> None:
    for name in TABLE_NAMES:
        assert len(read_table(csv_cohort, name)) == len(read_table(cohort, name)), name
        assert (
            read_manifest(csv_cohort)["tables"][name]["rows"]
            == read_manifest(cohort)["tables"][name]["rows"]
        )


@pytest.mark.parametrize("name", ["patients", "outcomes"])
def test_csv_values_match_parquet(csv_cohort: Path, cohort: Path, name: str) -> None:
    from_csv = as_comparable(read_table(csv_cohort, name))
    from_parquet = as_comparable(read_table(cohort, name))
    assert list(from_csv.columns) == list(from_parquet.columns)
    pd.testing.assert_frame_equal(from_csv, from_parquet, check_exact=False, rtol=1e-9, atol=0)


# --------------------------------------------------------------------------- atomicity


@pytest.mark.slow
def test_failure_during_generation_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    calls = []

    def fail_after_first_block(n: int) -> None:
        calls.append(n)
        raise RuntimeError("interrupted")

    spec = CohortSpec(n_patients=TWO_BLOCKS, with_true_risk=False)
    with pytest.raises(RuntimeError, match="interrupted"):
        generate_cohort(out, spec, progress=fail_after_first_block)
    assert calls == [BLOCK_SIZE]
    assert not out.exists()
    assert leftovers(out) == []
    assert list(tmp_path.iterdir()) == []


def _start_generating(out: Path) -> subprocess.Popen:
    """``icans cohort generate`` in its own process, returned once its hidden working
    directory holds a file: the first block is written. Without the true-risk table: its
    backward tables and compiled filter (numba, compiled on first use in a fresh clone; a
    signal that lands inside that compilation is not seen by Python until it returns) would
    take most of a minute before the first file, and what is killed here is the writing of
    the files, which is the same with or without it. 20 blocks: still generating when
    stopped."""
    cmd = [sys.executable, "-m", "cli.main", "cohort", "generate", "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--n", "200000", "--no-true-risk"],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(f".{out.name}.tmp-*/*")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    return proc


@pytest.mark.slow
def test_a_killed_generation_leaves_nothing_after_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    proc = _start_generating(out)
    proc.kill()  # SIGKILL: no clean-up runs
    assert proc.wait(60) == -signal.SIGKILL
    assert len(leftovers(out)) == 1  # what a killed run leaves

    # a writer still at work holds its directory: the next run leaves it alone
    busy = _start_generating(tmp_path / "other")
    generate_cohort(out, CohortSpec(n_patients=300, with_true_risk=False))
    assert leftovers(out) == []
    assert len(leftovers(tmp_path / "other")) == 1
    busy.kill()
    busy.wait(60)


def test_a_replaced_cohort_whose_replacement_was_lost_is_put_back(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    generate_cohort(out, CohortSpec(n_patients=300, with_true_risk=False))
    before = read_manifest(out)["fingerprint"]
    out.rename(tmp_path / ".cohort.old-0a1b2c3d")  # killed between the two renames

    assert remove_abandoned(tmp_path) == [tmp_path / ".cohort.old-0a1b2c3d"]
    assert read_manifest(out)["fingerprint"] == before
    assert leftovers(out) == []


@pytest.mark.slow
def test_sigterm_stops_a_generation_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    proc = _start_generating(out)
    sent = time.monotonic()
    proc.terminate()
    code = proc.wait(60)
    assert code == 128 + signal.SIGTERM, (
        f"exit {code} {time.monotonic() - sent:.2f} s after SIGTERM; cohort written: "
        f"{out.exists()}; stderr: {proc.stderr.read().decode()[-2000:]}"
    )
    assert leftovers(out) == []
    assert not out.exists()


@pytest.mark.slow
def test_output_appears_only_when_complete(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    seen = []

    def look(n: int) -> None:
        seen.append((out.exists(), len(list(tmp_path.glob(".cohort.tmp-*")))))

    generate_cohort(out, CohortSpec(n_patients=TWO_BLOCKS, with_true_risk=False), progress=look)
    assert seen == [(False, 1), (False, 1)]
    assert (out / MANIFEST).is_file()
    assert leftovers(out) == []


def test_existing_non_empty_dir_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(InvalidInputError) as info:
        generate_cohort(out, CohortSpec(n_patients=300))
    assert info.value.field == "out"
    assert "out=" in str(info.value)
    assert "overwrite" in str(info.value)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert leftovers(out) == []


def test_existing_empty_dir_is_used(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    out.mkdir()
    generate_cohort(out, CohortSpec(n_patients=300))
    assert (out / MANIFEST).is_file()
    assert leftovers(out) == []


def test_overwrite_replaces_old_content(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    generate_cohort(out, CohortSpec(n_patients=300, seed=1, fmt="csv"))
    (out / "stale.txt").write_text("old")
    generate_cohort(out, CohortSpec(n_patients=400, seed=2), overwrite=True)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([MANIFEST, *(f"{t}.parquet" for t in TABLE_NAMES)])
    assert read_manifest(out)["n_patients"] == 400
    assert leftovers(out) == []


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_patients": 0}, "n"),
        ({"n_patients": -5}, "n"),
        ({"n_patients": 10_000_001}, "n"),
        ({"n_patients": 100, "seed": -1}, "seed"),
        ({"n_patients": 100, "case_mix": "nope"}, "case_mix"),
        ({"n_patients": 100, "fmt": "xlsx"}, "format"),
    ],
    ids=["n-zero", "n-negative", "n-too-large", "seed-negative", "case-mix", "format"],
)
def test_spec_rejects_invalid_value_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        CohortSpec(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}=")


def test_spec_accepts_the_size_limits() -> None:
    assert CohortSpec(n_patients=1).n_patients == 1
    assert CohortSpec(n_patients=10_000_000).n_patients == 10_000_000


def test_unknown_case_mix_message_lists_valid_presets() -> None:
    with pytest.raises(InvalidInputError) as info:
        CohortSpec(n_patients=100, case_mix="nope")
    for name in CASE_MIXES:
        assert name in str(info.value)


def test_unknown_format_message_lists_valid_formats() -> None:
    with pytest.raises(InvalidInputError) as info:
        CohortSpec(n_patients=100, fmt="xlsx")
    assert "parquet" in str(info.value)
    assert "csv" in str(info.value)


# --------------------------------------------------------------------------- case-mix presets


@pytest.mark.parametrize("case_mix", sorted(CASE_MIXES))
def test_case_mix_preset_targets_match_disease(case_mix: str, tmp_path: Path) -> None:
    out = tmp_path / case_mix
    generate_cohort(out, CohortSpec(n_patients=300, seed=5, case_mix=case_mix))
    assert read_manifest(out)["generator"]["case_mix"] == case_mix
    p = read_table(out, "patients")
    assert len(p) == 300
    assert set(p["disease"]) <= set(CASE_MIXES[case_mix].disease_share)
    for disease, target in zip(p["disease"], p["car_target"], strict=True):
        assert disease in SUPPORTED_TARGETS[target], (disease, target)  # the contract's list
    for family, target in zip(p["product_family"], p["car_target"], strict=True):
        assert TARGET_BY_FAMILY[family] == target, (family, target)
    assert (p.loc[p["product_family"] == "CD19-CD28", "costimulatory_domain"] == "CD28").all()


def test_paediatric_preset_is_b_all_only(tmp_path: Path) -> None:
    out = tmp_path / "paed"
    generate_cohort(out, CohortSpec(n_patients=300, case_mix="paediatric-all"))
    p = read_table(out, "patients")
    assert set(p["disease"]) == {"B-ALL"}
    assert set(p["product_family"]) <= {"CD19-4-1BB", "CD19-CD22"}


# --------------------------------------------------------------------------- daily table


@pytest.fixture(scope="module")
def daily(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Daily rows with the patient's age and death day attached."""
    return (
        tables["daily"]
        .merge(tables["patients"][["patient_id", "age_years"]], on="patient_id")
        .merge(tables["outcomes"][["patient_id", "death_day"]], on="patient_id")
    )


def test_daily_icans_grade_is_0_to_4(daily: pd.DataFrame) -> None:
    assert daily["icans_grade"].between(0, 4).all()


def test_daily_crs_grade_is_0_to_4(daily: pd.DataFrame) -> None:
    assert daily["crs_grade"].between(0, 4).all()


def test_children_have_capd_and_no_ice(daily: pd.DataFrame) -> None:
    child = daily[daily["age_years"] < 12]
    assert len(child) > 0
    assert child["ice_score"].isna().all()
    assessed = child[~child["assessment_impossible"]]
    assert assessed["capd_score"].notna().all()
    assert assessed["capd_score"].between(0, 32).all()


def test_older_patients_have_ice_and_no_capd(daily: pd.DataFrame) -> None:
    older = daily[daily["age_years"] >= 12]
    assert older["capd_score"].isna().all()
    assessed = older[~older["assessment_impossible"]]
    assert assessed["ice_score"].notna().all()
    assert assessed["ice_score"].between(0, 10).all()


def test_unassessable_rows_have_neither_score(daily: pd.DataFrame) -> None:
    unable = daily[daily["assessment_impossible"]]
    assert len(unable) > 0
    assert unable["ice_score"].isna().all()
    assert unable["capd_score"].isna().all()


def test_no_daily_rows_after_death(daily: pd.DataFrame) -> None:
    died = daily[daily["death_day"].notna()]
    assert len(died) > 0
    assert (died["day"] <= died["death_day"]).all()


def test_daily_rows_cover_day_0_to_last_day_without_gaps(
    tables: dict[str, pd.DataFrame], daily: pd.DataFrame
) -> None:
    # a patient who dies on day d is observed last on day d - 1
    last = (daily["death_day"] - 1).fillna(28).astype("int64")
    per_patient = daily.assign(last=last).groupby("patient_id")
    assert (per_patient["day"].min() == 0).all()
    assert (per_patient["day"].max() == per_patient["last"].first()).all()
    assert (per_patient.size() == per_patient["last"].first() + 1).all()
    assert per_patient.ngroups == len(tables["patients"])


# --------------------------------------------------------------------------- measurements


def test_day_0_measurements_are_zero(tables: dict[str, pd.DataFrame]) -> None:
    """Only some centres count CAR-T cells (20% in the real-world mix); where they do, the
    pre-infusion sample of day 0 is always taken and holds no CAR-T cells."""
    m = tables["measurements"]
    day0 = m[m["day"] == 0]
    counted = m["patient_id"].unique()
    assert len(day0) == len(counted)
    assert 0.1 * SMALL < len(counted) < 0.3 * SMALL
    assert (day0["cd4_car_t_cells_per_ul"] == 0.0).all()
    assert (day0["cd8_car_t_cells_per_ul"] == 0.0).all()


def test_later_measurements_are_positive(tables: dict[str, pd.DataFrame]) -> None:
    m = tables["measurements"]
    later = m[m["day"] > 0]
    assert len(later) > 0
    assert (later["cd4_car_t_cells_per_ul"] > 0).all()
    assert (later["cd8_car_t_cells_per_ul"] > 0).all()


def test_no_measurements_after_death(tables: dict[str, pd.DataFrame]) -> None:
    m = tables["measurements"].merge(tables["outcomes"][["patient_id", "death_day"]])
    died = m[m["death_day"].notna()]
    assert (died["day"] <= died["death_day"]).all()


# --------------------------------------------------------------------------- true risk


def test_true_risk_is_a_probability(tables: dict[str, pd.DataFrame]) -> None:
    risk = tables["true_risk"]["true_risk"]
    assert risk.notna().all()
    assert risk.between(0.0, 1.0).all()


def test_true_risk_is_on_every_prediction_day_0_to_27(tables: dict[str, pd.DataFrame]) -> None:
    # every day a prediction may be asked on (the contract's 0-27): the daily landmarks
    assert set(tables["true_risk"]["landmark_day"]) == set(range(28))


def test_no_true_risk_row_at_or_after_event(tables: dict[str, pd.DataFrame]) -> None:
    m = tables["true_risk"].merge(tables["outcomes"][["patient_id", "event_day"]])
    with_event = m[m["event_day"].notna()]
    assert len(with_event) > 0
    assert (with_event["landmark_day"] < with_event["event_day"]).all()


def test_every_living_event_free_patient_has_a_true_risk_row(
    tables: dict[str, pd.DataFrame],
) -> None:
    risk, outcomes = tables["true_risk"], tables["outcomes"]
    assert not risk.duplicated(["patient_id", "landmark_day"]).any()
    event_day = outcomes["event_day"].astype("float64").to_numpy()
    death_day = outcomes["death_day"].astype("float64").to_numpy()
    for landmark, rows in risk.groupby("landmark_day"):
        alive = np.isnan(death_day) | (death_day > landmark)
        at_risk = (np.isnan(event_day) | (event_day > landmark)) & alive
        assert set(rows["patient_id"]) == set(outcomes.loc[at_risk, "patient_id"]), landmark


# --------------------------------------------------------------------------- outcomes


def test_target_is_severe_or_refractory(tables: dict[str, pd.DataFrame]) -> None:
    o = tables["outcomes"]
    expected = o["severe_icans"] | o["steroid_refractory_icans"]
    assert (o["severe_or_refractory_icans"] == expected).all()
    assert o["severe_or_refractory_icans"].any()


def test_event_day_present_iff_target(tables: dict[str, pd.DataFrame]) -> None:
    o = tables["outcomes"]
    assert (o["event_day"].notna() == o["severe_or_refractory_icans"]).all()


def test_onset_not_after_event_day(tables: dict[str, pd.DataFrame]) -> None:
    o = tables["outcomes"]
    both = o[o["icans_onset_day"].notna() & o["event_day"].notna()]
    assert len(both) > 0
    assert (both["icans_onset_day"] <= both["event_day"]).all()


def test_severe_icans_is_max_grade_3_or_more(tables: dict[str, pd.DataFrame]) -> None:
    o = tables["outcomes"]
    assert (o["severe_icans"] == (o["icans_max_grade"] >= 3)).all()
    assert o["icans_max_grade"].between(0, 5).all()
