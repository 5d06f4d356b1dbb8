"""The ``icans`` command line, driven through Typer's CliRunner against real files in tmp_path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner, Result

from cli.main import app
from data.synthetic.cohort import CohortSpec
from icans.errors import InvalidInputError

runner = CliRunner()
GENERATE_OPTIONS = ("--out", "--n", "--seed", "--case-mix", "--format", "--overwrite", "--workers")


def flat(text: str) -> str:
    """Help/console text with Rich box characters removed and whitespace collapsed.

    Rich wraps help cells to the terminal width; flattening makes a help sentence searchable
    wherever the wrap fell.
    """
    return " ".join(re.sub(r"[│╭╮╰╯─┃━┏┓┗┛┡┩╇┳┻╋┠┨┯┷]", " ", text).split())


def generate_command() -> Any:
    """The Click command behind ``icans cohort generate`` (Typer vendors its own Click)."""
    return typer.main.get_command(app).commands["cohort"].commands["generate"]


# --------------------------------------------------------------------------- help


def test_top_level_help_exits_0_and_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert "cohort" in text
    assert "demo" in text
    assert "SYNTHETIC" in text


def test_cohort_help_lists_sub_commands() -> None:
    result = runner.invoke(app, ["cohort", "--help"])
    assert result.exit_code == 0, result.output
    assert "generate" in result.stdout
    assert "summary" in result.stdout


def test_generate_help_shows_named_options() -> None:
    result = runner.invoke(app, ["cohort", "generate", "--help"])
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    for option in GENERATE_OPTIONS:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), option


def _help_of(option: str) -> str:
    return flat(next(p.help for p in generate_command().params if option in p.opts))


def test_the_limits_the_help_states_are_the_ones_enforced() -> None:
    """What --help promises is what generation accepts (read from the help, tried for real)."""
    low, high = (
        int(x.replace(",", ""))
        for x in re.search(r"\(([\d,]+) to ([\d,]+)\)", _help_of("--n")).groups()
    )
    CohortSpec(n_patients=low)
    CohortSpec(n_patients=high)  # construction only: nothing is generated
    for outside in (low - 1, high + 1):
        with pytest.raises(InvalidInputError, match="n="):
            CohortSpec(n_patients=outside)
    presets = re.findall(r"[a-z]+(?:-[a-z]+)+", _help_of("--case-mix").split(":", 1)[1])
    assert len(presets) >= 3
    for preset in presets:
        CohortSpec(n_patients=1, case_mix=preset)
    formats = [w for w in re.findall(r"\w+", _help_of("--format").split(":", 1)[1]) if w != "or"]
    assert len(formats) >= 2
    for fmt in formats:
        CohortSpec(n_patients=1, fmt=fmt)
    assert "seed" in _help_of("--seed").lower() and "identical" in _help_of("--seed")


def test_generate_help_has_help_text_for_every_option() -> None:
    command = generate_command()
    text = flat(runner.invoke(app, ["cohort", "generate", "--help"]).stdout)
    options = [p for p in command.params if p.param_type_name == "option"]
    assert {o.opts[0] for o in options} >= set(GENERATE_OPTIONS)
    for option in options:
        if option.name == "help":
            continue
        assert option.help, f"{option.opts[0]} has no help text"
        assert flat(option.help) in text, option.opts[0]


# --------------------------------------------------------------------------- generate + summary


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    out = tmp_path_factory.mktemp("cli") / "cohort"
    result = runner.invoke(app, ["cohort", "generate", "--n", "300", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.stdout, result.stderr


def test_generate_writes_a_cohort_and_reports_it(generated: tuple[Path, str, str]) -> None:
    out, stdout, _ = generated
    assert (out / "manifest.json").is_file()
    assert "Wrote 300 synthetic patients" in flat(stdout)
    assert "fingerprint" in stdout


def stage_lines(stderr: str) -> list[tuple[float, str]]:
    """The timed lines of a progress display outside a terminal, (seconds, text)."""
    return [(float(t), text) for t, text in re.findall(r"^\[ *(\d+\.\d) s\] (.+)$", stderr, re.M)]


def test_generate_outside_a_terminal_prints_timed_stage_lines(
    generated: tuple[Path, str, str],
) -> None:
    # CliRunner's stderr is not a terminal, as a log file or CI is not: no live bar, a line
    # per stage (and per quarter of the patients) with the time since the start
    lines = stage_lines(generated[2])
    texts = [text for _, text in lines]
    assert texts[0] == "generating patients (300)"
    assert "generating patients: 300 of 300" in texts
    assert texts[-1] == "done"
    times = [t for t, _ in lines]
    assert times == sorted(times)


def test_summary_prints_family_and_true_risk_tables(generated: tuple[Path, str, str]) -> None:
    out, *_ = generated
    result = runner.invoke(app, ["cohort", "summary", str(out)])
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert "SYNTHETIC" in text
    # 300 patients: no product family reaches 200, but the whole cohort does, so the table
    # holds the targets of all patients (the daily routine series) and no family's
    assert "crp_peak_crs_1_2" in text
    assert "CD19-CD28" not in text.split("Patients like the source papers")[0]
    assert "Patients like the source papers" in text
    assert "True risk by landmark day" in text
    assert "landmark day" in text
    assert "AUROC" in text


def test_generate_refuses_existing_cohort_without_overwrite(
    generated: tuple[Path, str, str],
) -> None:
    out, *_ = generated
    result = runner.invoke(app, ["cohort", "generate", "--n", "300", "--out", str(out)])
    assert result.exit_code == 2
    assert "out=" in flat(result.stderr)
    assert "--overwrite" in flat(result.stderr)
    assert "Traceback" not in result.output


def test_generate_csv_with_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    out.mkdir()
    (out / "old.txt").write_text("old")
    args = ["cohort", "generate", "--n", "300", "--format", "csv", "--no-true-risk"]
    result = runner.invoke(app, [*args, "--overwrite", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    tables = ["daily", "measurements", "outcomes", "patients"]
    assert names == sorted(["manifest.json", *(f"{t}.csv" for t in tables)])


# --------------------------------------------------------------------------- user errors


BAD_INPUTS = {
    "case-mix": (["cohort", "generate", "--case-mix", "nope"], "case_mix='nope'"),
    "format": (["cohort", "generate", "--format", "xlsx"], "format='xlsx'"),
    "n-zero": (["cohort", "generate", "--n", "0"], "n=0"),
    "summary-not-a-cohort": (["cohort", "summary", "{tmp}"], "is not a cohort directory"),
}


def _invoke_bad(case: str, tmp_path: Path) -> tuple[Result, str]:
    args, expected = BAD_INPUTS[case]
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if args[1] == "generate":
        args = [*args, "--out", str(tmp_path / "cohort")]
    return runner.invoke(app, args), expected


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_naming_the_field(case: str, tmp_path: Path) -> None:
    result, expected = _invoke_bad(case, tmp_path)
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    message = flat(result.stderr)
    assert message.startswith("error: ")
    assert expected in message
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert not (tmp_path / "cohort").exists()


@pytest.mark.parametrize(
    "case",
    [
        "case-mix",
        "format",
        "n-zero",
        "summary-not-a-cohort",
    ],
)
def test_bad_input_message_is_one_line(case: str, tmp_path: Path) -> None:
    result, _ = _invoke_bad(case, tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines


def test_unknown_case_mix_lists_valid_presets(tmp_path: Path) -> None:
    result, _ = _invoke_bad("case-mix", tmp_path)
    message = flat(result.stderr)
    for name in ("real-world", "myeloid-centre", "paediatric-all"):
        assert name in message


def test_summary_error_says_how_to_create_a_cohort(tmp_path: Path) -> None:
    result, _ = _invoke_bad("summary-not-a-cohort", tmp_path)
    assert "icans cohort generate --out DIR" in flat(result.stderr)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("icans.example.org", False),
    ],
)
def test_loopback_hosts(host, loopback):
    from serving.launch import is_loopback

    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        ({}, True),
        ({"ICANS_API_TOKEN": "a-long-enough-test-token-0123456789"}, False),
        ({"ICANS_ALLOW_UNAUTHENTICATED_NETWORK": "true"}, False),
    ],
)
def test_serve_refuses_the_network_without_authentication(tmp_path, monkeypatch, env, refused):
    """On 0.0.0.0 without a token the service does not start and says why; with a token (or
    the explicit setting) it goes on to load the model (none here: 'icans train')."""
    monkeypatch.delenv("ICANS_API_TOKEN", raising=False)
    monkeypatch.delenv("ICANS_ALLOW_UNAUTHENTICATED_NETWORK", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    store = f"sqlite:///{tmp_path}/empty.db"
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--tracking-uri", store])
    assert result.exit_code == 2
    if refused:
        assert "loopback" in result.output and "ICANS_API_TOKEN" in result.output
    else:
        assert "icans train" in result.output and "loopback" not in result.output
