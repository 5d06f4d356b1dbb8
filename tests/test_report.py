"""The reviewer-facing HTML report: sections, self-containment, figures, SHAP check, TRIPOD+AI."""

from __future__ import annotations

import base64
import io
import re

import matplotlib.image as mpimg
import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from data.synthetic.cohort import read_manifest
from reports.model_report import (
    DIRECTION_TABLE,
    MODEL_CARD_SECTIONS,
    SECTIONS,
    GeneratorDirection,
    build_model_report,
    direction_check,
    sample_rows,
    write_atomically,
)
from training.train import model_card_summary

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:shap.*"),
]


@pytest.fixture(scope="module")
def report(champion) -> str:
    r = champion.result
    manifest = read_manifest(champion.cohort)
    card = model_card_summary(
        r.evaluation,
        r.gate,
        {"params": r.params, "calibration": r.calibration, "pipeline": r.pipeline},
        manifest,
    )
    rows = sample_rows(len(r.test), seed=0)
    return build_model_report(
        r.pipeline, r.evaluation, r.learning_curve, card, manifest, r.test.raw[rows]
    )


def _table_after(html: str, heading: str) -> str:
    start = html.index(heading)
    return html[start : html.index("</table>", start)]


def _body_rows(table: str) -> list[str]:
    body = table[table.index("<tbody>") :]
    return re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)


def test_every_section_and_model_card_heading_is_present(report):
    h2 = re.findall(r"<h2[^>]*>(.*?)</h2>", report)
    assert h2 == list(SECTIONS)
    assert h2 == [
        "Model card",
        "Data card summary",
        "Performance by landmark day",
        "Subgroups",
        "Learning curve",
        "Global explanations (SHAP)",
        "TRIPOD+AI checklist",
    ]
    h3 = re.findall(r"<h3[^>]*>(.*?)</h3>", report)
    for title in MODEL_CARD_SECTIONS:
        assert title in h3, title
    assert len(MODEL_CARD_SECTIONS) == 9


def test_report_is_self_contained(report):
    assert report.startswith("<!DOCTYPE html>")
    assert "<script" not in report.lower()
    for src in re.findall(r'\bsrc="([^"]*)"', report):
        assert src.startswith("data:image/png;base64,"), src[:60]
    assert not re.search(r'(src|href)="\s*(https?:)?//', report)
    assert "<link" not in report.lower()


def test_every_figure_is_an_embedded_png_that_is_not_blank(report):
    images = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', report)
    assert len(images) == report.count("<img")
    assert len(images) >= 7  # ROC/PR, calibration, decision curve, learning curve, 3 SHAP
    for data in images:
        png = base64.b64decode(data, validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(png) > 5_000
        pixels = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
        assert np.ptp(pixels) > 0  # not a single colour
        h = pixels.shape[0]
        rows = [pixels[k] for k in (h // 4, h // 2, 3 * h // 4)]
        assert any(np.ptp(row) > 0 for row in rows)


def test_report_states_it_is_synthetic_and_not_clinical_evidence(report):
    assert "SYNTHETIC" in report
    assert "not clinical evidence" in report
    assert "not a medical device" in report
    assert 'href="data/synthetic/README.md"' in report


def test_direction_table_compares_shap_with_the_generator(report):
    table = _table_after(report, DIRECTION_TABLE)
    rows = _body_rows(table)
    assert len(rows) >= 5
    verdicts = [re.findall(r"<td>(.*?)</td>", r)[-2] for r in rows]
    assert set(verdicts) <= {"agrees", "differs", "not estimable"}
    # The strongest built-in effects are found again in the model's explanations.
    for feature in ("log10_dose_cells_per_kg", "ldh_u_per_l", "platelets_10e9_per_l"):
        row = next(r for r in rows if f"<td>{feature}</td>" in r)
        assert "<td>agrees</td>" in row, row
    assert "agrees" in verdicts


def test_tripod_ai_table_has_all_items(report):
    rows = _body_rows(_table_after(report, "TRIPOD+AI (Collins"))
    assert len(rows) >= 25
    firsts = [re.findall(r"<td>(.*?)</td>", r)[0] for r in rows]
    assert firsts == [str(i) for i in range(1, 28)]
    ethics = next(r for r in rows if "Ethical approval" in r)
    assert "not applicable" in ethics.lower() and "synthetic" in ethics.lower()


def test_performance_tables_per_landmark_and_subgroups(report, champion):
    days = sorted(int(d) for d in champion.result.evaluation.predictions["landmark_day"].unique())
    for day in days:
        assert f"<h3>Landmark day {day}</h3>" in report
    subgroups = _body_rows(_table_after(report, '<h2 id="subgroups"'))
    assert len(subgroups) == len(champion.result.evaluation.subgroups)
    for group in ("car_target=", "costimulatory_domain=", "disease=", "age&lt;12", "cns_"):
        assert group in report, group


def test_text_values_are_escaped(champion):
    r = champion.result
    manifest = read_manifest(champion.cohort) | {"case_mix": "<b>mix</b>"}
    html = build_model_report(
        r.pipeline,
        r.evaluation,
        None,
        {"model_name": "<script>x</script>"},
        manifest,
        r.test.raw[:300],
    )
    assert "<script" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;mix&lt;/b&gt;" in html
    assert "No learning curve was recorded" in html


def test_direction_check_verdicts():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    shap = np.column_stack([x[:, 0], -x[:, 1], np.zeros(200)])
    dirs = [GeneratorDirection(n, +1, "test") for n in ("a", "b", "c")]
    table = direction_check(["a", "b", "c"], x, shap, dirs).set_index("feature")
    assert table.loc["a", "verdict"] == "agrees"
    assert table.loc["b", "verdict"] == "differs"
    assert table.loc["c", "verdict"] == "not estimable"


def test_write_atomically_replaces_and_leaves_no_temporary_file(tmp_path):
    out = tmp_path / "sub" / "r.html"
    write_atomically("one", out)
    write_atomically("two", out)
    assert out.read_text() == "two"
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]


def test_cli_report_writes_the_file(champion, tmp_path):
    config = tmp_path / "fast.toml"
    config.write_text("[train]\nbootstrap_samples = 20\n")
    out = tmp_path / "reports" / "report.html"
    result = CliRunner().invoke(
        app,
        [
            "report",
            "--model",
            "models:/icans-risk@champion",
            "--cohort",
            str(champion.cohort),
            "--out",
            str(out),
            "--config",
            str(config),
            "--tracking-uri",
            champion.settings.tracking_uri,
        ],
    )
    assert result.exit_code == 0, result.output
    assert str(out) in result.output.replace("\n", "")
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>")
    for title in SECTIONS:
        assert f">{title}</h2>" in html
    assert "icans-risk v" in html
    assert "including the patients the model was trained on" in html  # same cohort: said so
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]


def test_cli_report_without_cohort_is_the_training_runs_held_out_report(champion, tmp_path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        app, ["report", "--out", str(out), "--tracking-uri", champion.settings.tracking_uri]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    version = champion.result.model_version
    assert f"<h1>Model report: icans-risk v{version}</h1>" in html
    assert f"<li>Name: icans-risk, version {version}</li>" in html
    assert "held-out patients" in html
    assert "including the patients the model was trained on" not in html
    for title in SECTIONS:
        assert f">{title}</h2>" in html


def test_cli_report_missing_model_is_one_line(champion, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "report",
            "--cohort",
            str(champion.cohort),
            "--out",
            str(tmp_path / "r.html"),
            "--tracking-uri",
            f"sqlite:///{tmp_path}/empty.db",
        ],
    )
    assert result.exit_code == 2
    assert "icans train" in result.output
    assert not (tmp_path / "r.html").exists()
