"""The reviewer-facing HTML report: sections, self-containment, figures, SHAP check, TRIPOD+AI,
and what it says about where the data come from."""

from __future__ import annotations

import base64
import dataclasses
import io
import re

import matplotlib.image as mpimg
import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from cohort.reader import read_metadata
from reports import html as h
from reports.explanations import DIRECTION_TABLE, ExpectedDirection, direction_check
from reports.model_card import model_card, model_card_section
from reports.model_report import build_model_report, sample_rows
from reports.provenance import trained_on_synthetic
from reports.tripod import TRIPOD_AI, tripod_section

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:shap.*"),
]

# Written out here, not imported: the report must show these, in this order.
REPORT_SECTIONS = [
    "Model card",
    "Data card summary",
    "Performance by landmark day",
    "Performance by horizon",
    "Lead time of alerts",
    "What each input set reaches",
    "Subgroups",
    "Learning curve",
    "Global explanations (SHAP)",
    "TRIPOD+AI checklist",
]
CARD_SECTIONS = [
    "Model details",
    "Intended use",
    "Out-of-scope uses",
    "Factors",
    "Metrics",
    "Training and evaluation data",
    "Quantitative analyses",
    "Ethical considerations",
    "Caveats and recommendations",
]
BANNER = (
    '</h1><p class="warning"><strong>Decision support trained and evaluated on SYNTHETIC data '
    "only. Not validated on real patients. Not a medical device. Not for clinical use.</strong>"
    "</p>"
)


@pytest.fixture(scope="module")
def metadata(champion):
    return read_metadata(champion.cohort)


@pytest.fixture(scope="module")
def card(champion, metadata) -> dict:
    r = champion.result
    return model_card(r.model, r.evaluation, r.gate, metadata)


@pytest.fixture(scope="module")
def real_card(card) -> dict:
    """The card of a model trained on real patient data."""
    return card | {
        "synthetic_data": False,
        "training_data": card["training_data"] | {"provenance": "real", "generator": {}},
        "cohort_case_mix": None,
    }


@pytest.fixture(scope="module")
def report(champion, card, metadata) -> str:
    r = champion.result
    rows = sample_rows(len(r.test), seed=0)
    return build_model_report(
        r.model, r.evaluation, r.learning_curve, card, metadata, r.test.raw[rows]
    )


def _table_after(html: str, heading: str) -> str:
    start = html.index(heading)
    return html[start : html.index("</table>", start)]


def _body_rows(table: str) -> list[str]:
    body = table[table.index("<tbody>") :]
    return re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)


def _cells(row: str) -> list[str]:
    return re.findall(r"<td>(.*?)</td>", row, flags=re.S)


def test_every_section_and_model_card_heading_is_present_in_order(report):
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", report) == REPORT_SECTIONS
    assert re.findall(r'<h3 id="mc-[^"]*">(.*?)</h3>', report) == CARD_SECTIONS
    nav = re.search(r"<nav>.*?</nav>", report).group(0)
    assert re.findall(r'<a href="#([^"]+)">', nav) == [
        "model-card",
        "data-card-summary",
        "performance-by-landmark-day",
        "performance-by-horizon",
        "lead-time-of-alerts",
        "what-each-input-set-reaches",
        "subgroups",
        "learning-curve",
        "global-explanations--shap",
        "tripod-ai-checklist",
    ]
    for anchor in re.findall(r'<a href="#([^"]+)">', nav):
        assert f'<h2 id="{anchor}">' in report


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
    # ROC/PR, calibration, decision curve, lead time, learning curve, 3 SHAP
    assert len(images) >= 8
    for data in images:
        png = base64.b64decode(data, validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(png) > 5_000
        pixels = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
        assert np.ptp(pixels) > 0  # not a single colour
        height = pixels.shape[0]
        rows = [pixels[k] for k in (height // 4, height // 2, 3 * height // 4)]
        assert any(np.ptp(row) > 0 for row in rows)


def test_report_states_it_is_synthetic_and_not_clinical_evidence(report):
    assert BANNER in report  # right under the title
    assert "Training cohort: SYNTHETIC, 2,500 patients" in report
    assert "not clinical evidence" in report
    assert "not a medical device" in report
    assert 'href="data/synthetic/README.md"' in report


def test_model_card_claims_match_the_model(report, champion):
    model = champion.result.model
    assert model.additive_ is not None  # the default model boosts from an additive part
    card = report[report.index('<h2 id="model-card">') : report.index('<h2 id="data-card')]
    assert "boosted from a sign-constrained penalised logistic regression" in card
    assert "TreeSHAP of the trees plus the additive part&#x27;s terms" in card
    assert f"{model.augmentation_['copies']:,} copies" in card
    held_out = champion.result.evaluation.meta["n_patients"]
    assert f"{held_out:,} of its patients held out" in card
    assert "The model&#x27;s additive part is itself a sign-constrained" in card
    # The old claims the model no longer supports are gone.
    assert "trees have little to add" not in report
    assert "logged pipeline" not in report
    assert "75% of patients for training" not in report


def test_direction_table_compares_shap_with_the_generator(report):
    table = _table_after(report, DIRECTION_TABLE)
    rows = _body_rows(table)
    assert len(rows) >= 5
    verdicts = [_cells(r)[-2] for r in rows]
    assert set(verdicts) <= {"agrees", "differs", "not estimable"}
    # The strongest built-in effects are found again in the model's explanations: the product
    # (CD28), marrow burden, CNS involvement and platelets through their own predictors, CRS
    # through one of its two predictors (today's grade, the worst so far: correlated, so SHAP
    # may give the twin the other sign). LDH's effect is weak by design (Gauthier: OR ~4 per
    # 10-fold), so the small test model may leave it unused.
    table_text = "\n".join(" ".join(_cells(r)[1::7]) for r in rows)
    for feature in (
        "costimulatory_domain=CD28",
        "marrow_blasts_pct",
        "cns_involvement",
        "platelets_10e9_per_l",
    ):
        row = next(r for r in rows if f"<td>{feature}</td>" in r)
        assert "<td>agrees</td>" in row, table_text
    crs_predictors = ("<td>crs_grade_today</td>", "<td>crs_max_grade_to_date</td>")
    crs = [r for r in rows if any(p in r for p in crs_predictors)]
    assert any("<td>agrees</td>" in r for r in crs), table_text


def test_tripod_ai_table_has_the_27_items_with_their_titles(report):
    rows = [_cells(r) for r in _body_rows(_table_after(report, "TRIPOD+AI (Collins"))]
    assert [r[0] for r in rows] == [str(i) for i in range(1, 28)]
    topics = {int(r[0]): r[2] for r in rows}
    assert topics[1] == "Title"
    assert topics[2] == "Abstract"
    assert topics[11] == "Missing data"
    assert topics[13] == "Class imbalance"
    assert topics[17] == "Ethical approval"
    assert topics[22] == "Model specification"
    assert topics[27] == "Usability in current care (input data quality, users, next steps)"
    by_item = {int(r[0]): r for r in rows}
    missing = by_item[11][3]
    assert "additive part imputes the training median" in missing
    assert "missing-indicator term" in missing
    assert "trees route missing values natively" in missing
    assert "model/augment.py" in missing and "model/linear_offset.py" in missing
    assert "logistic baseline imputes medians with missing indicators" in missing
    assert "xgboost routes missing values natively, the logistic" not in missing  # the old text
    assert by_item[17][3:] == [
        "Not applicable: synthetic data, no human participants.",
        "not applicable",
    ]
    assert "logged pipeline" not in by_item[22][3]
    assert {r[4] for r in rows} <= {"answered", "partly", "not applicable", "not answered"}


def test_tripod_items_as_data():
    assert [item.number for item in TRIPOD_AI] == list(range(1, 28))
    assert [item.topic for item in TRIPOD_AI[:2]] == ["Title", "Abstract"]
    assert TRIPOD_AI[10].topic == "Missing data"
    # With real patient data, the items that depended on synthetic data say so.
    real = tripod_section(synthetic=False)
    rows = {int(_cells(r)[0]): _cells(r) for r in _body_rows(real)}
    assert len(rows) == 27
    assert rows[17][3:] == [
        "Not recorded in this report: the approval covering the real patient data must come "
        "with them.",
        "not answered",
    ]
    assert "synthetic" not in rows[11][3].lower() and "missing-indicator" in rows[11][3]
    assert "synthetic" not in real.lower()


def test_performance_tables_per_landmark_and_subgroups(report, champion):
    days = sorted(int(d) for d in champion.result.evaluation.predictions["landmark_day"].unique())
    for day in days:
        assert f"<h3>Landmark day {day}</h3>" in report
    subgroups = _body_rows(_table_after(report, '<h2 id="subgroups"'))
    assert len(subgroups) == len(champion.result.evaluation.subgroups)
    for group in ("car_target=", "costimulatory_domain=", "disease=", "age&lt;12", "cns_"):
        assert group in report, group


def test_text_values_are_escaped(champion, metadata):
    r = champion.result
    odd = dataclasses.replace(metadata, generator=metadata.generator | {"case_mix": "<b>mix</b>"})
    html = build_model_report(
        r.model, r.evaluation, None, {"model_name": "<script>x</script>"}, odd, r.test.raw[:300]
    )
    assert "<script" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;mix&lt;/b&gt;" in html
    assert "No learning curve was recorded" in html
    assert BANNER in html  # a card without provenance: an older, synthetic model


def test_a_model_trained_on_real_data_has_no_synthetic_banner(champion, metadata, real_card):
    r = champion.result
    html = build_model_report(r.model, r.evaluation, None, real_card, metadata, r.test.raw[:300])
    assert "Decision support trained and evaluated on SYNTHETIC" not in html
    assert re.search(r"</h1><p>Risk of severe", html)  # nothing between title and intro
    assert "Training cohort: real patient data, 2,500 patients, fingerprint" in html
    assert "trained on SYNTHETIC data" not in html
    # The evaluated cohort is still the synthetic one, and the data card says so.
    assert "The cohort is SYNTHETIC" in html
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", html) == REPORT_SECTIONS


def test_model_card_section_follows_the_training_data(champion, metadata, card, real_card):
    ev = champion.result.evaluation
    real_cohort = dataclasses.replace(metadata, provenance="real", generator=None)
    real = model_card_section(real_card, ev, real_cohort, "held-out patients", 30)
    assert "SYNTHETIC" not in real and "synthetic" not in real
    assert "Training cohort: real patient data" in real
    assert "Real patient data were used" in real
    synthetic = model_card_section(card, ev, metadata, "held-out patients", 30)
    assert "Training cohort: SYNTHETIC" in synthetic
    assert "No real patient data were used" in synthetic
    assert trained_on_synthetic({}) and trained_on_synthetic(card)
    assert not trained_on_synthetic(real_card)
    assert not trained_on_synthetic({"training_data": {"provenance": "real"}})
    assert trained_on_synthetic(
        {"synthetic_data": False, "training_data": {"provenance": "synthetic"}}
    )


def test_document_banner_and_headed_sections():
    page = h.document("T <1>", "<p>b</p>")
    assert BANNER.replace("</h1>", "") in page
    assert "SYNTHETIC" not in h.document("T", "<p>b</p>", synthetic=False)
    assert (
        h.headed(["A b", "C"], {"C": "<p>2</p>", "A b": "<p>1</p>"})
        == '<section><h2 id="a-b">A b</h2><p>1</p></section>'
        '<section><h2 id="c">C</h2><p>2</p></section>'
    )
    assert (
        h.headed(["X"], {"X": "x"}, level=3, id_prefix="mc-", section=False)
        == '<h3 id="mc-x">X</h3>x'
    )


def test_direction_check_verdicts():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    shap = np.column_stack([x[:, 0], -x[:, 1], np.zeros(200)])
    dirs = [ExpectedDirection(n, +1, "test") for n in ("a", "b", "c")]
    table = direction_check(["a", "b", "c"], x, shap, dirs).set_index("feature")
    assert table.loc["a", "verdict"] == "agrees"
    assert table.loc["b", "verdict"] == "differs"
    assert table.loc["c", "verdict"] == "not estimable"


def test_write_atomically_replaces_and_leaves_no_temporary_file(tmp_path):
    out = tmp_path / "sub" / "r.html"
    h.write_atomically("one", out)
    h.write_atomically("two", out)
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
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", html) == REPORT_SECTIONS
    assert f"<h1>Model report: icans-risk v{champion.result.model_version}</h1>" in html
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
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", html) == REPORT_SECTIONS


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


# --------------------------------------------------------------------------------------------
# Horizons and lead time (issue 28) on the champion, a model fitted for day 28 alone; a model of
# every horizon: tests/test_horizon_report.py
# --------------------------------------------------------------------------------------------


def _outcome_days(cohort) -> dict:
    """patient -> event day (NaN: none), from the cohort's outcome table."""
    from cohort.store import read_table

    outcomes = read_table(cohort, "outcomes", ["patient_id", "event_day"])
    return dict(zip(outcomes["patient_id"], outcomes["event_day"].astype(float), strict=True))


def test_a_day28_model_has_day28_alone_and_its_lead_time_is_of_the_held_out_rows(report, champion):
    from evaluation.lead_time import lead_time_by_landmark
    from reports.horizon_sections import landmark_rows

    r = champion.result
    assert r.model.horizons_ == ("day28",)
    section = report[report.index('<h2 id="performance-by-horizon"') :]
    section = section[: section.index("</section>")]
    assert [_cells(row)[0] for row in _body_rows(_table_after(section, "horizons"))] == [
        "by day 28 (day28)"
    ]
    assert "fitted for day 28 alone" in section
    # the lead time: day 28 (the model has no 72h) at 0.10, from the held-out rows
    lead = report[report.index('<h2 id="lead-time-of-alerts"') :]
    lead = lead[: lead.index("</section>")]
    assert "the risk by day 28 (day28) (the default" in lead and "Threshold: 0.1 (" in lead
    days = _outcome_days(champion.cohort)
    event = np.array([days[p] for p in r.test.patient_id])
    risk = r.model.predict_proba(r.test.raw)[:, 1]
    expected = lead_time_by_landmark(r.test.landmark_day, risk, event, 0.10, "day28")
    shown = [_cells(row) for row in _body_rows(_table_after(lead, "lead-time-by-landmark"))]
    assert shown == landmark_rows(expected)
    assert 'alt="Lead time across thresholds, day28" src="data:image/png;base64,' in lead


def test_the_report_refuses_a_bad_threshold_or_horizon(champion, card, metadata):
    from icans.errors import InvalidInputError

    r = champion.result
    args = (r.model, r.evaluation, None, card, metadata, r.test.raw[:50])
    with pytest.raises(InvalidInputError) as err:
        build_model_report(*args, threshold=1.5)
    assert err.value.field == "threshold" and "0 < threshold < 1" in err.value.expected
    with pytest.raises(InvalidInputError) as err:
        build_model_report(*args, lead_horizon="72h")
    assert err.value.field == "horizon" and "this model estimates: day28" in err.value.expected


def _evaluate(champion, tmp_path, *options: str):
    config = tmp_path / "fast.toml"
    config.write_text("[train]\nbootstrap_samples = 20\n")
    return CliRunner().invoke(
        app,
        [
            "evaluate",
            "--cohort",
            str(champion.cohort),
            "--config",
            str(config),
            "--tracking-uri",
            champion.settings.tracking_uri,
            *options,
        ],
    )


def test_cli_evaluate_prints_and_writes_the_horizons_and_the_lead_time(champion, tmp_path):
    import json

    from cohort.reader import read_cohort
    from evaluation.lead_time import lead_time_by_landmark
    from features.landmarks import build_landmark_dataset

    out = tmp_path / "evaluation.json"
    result = _evaluate(champion, tmp_path, "--threshold", "0.2", "--json", str(out))
    assert result.exit_code == 0, result.output
    text = flat_output(result.output)
    assert "Every horizon the model estimates" in text
    assert "Lead time: first alert with the risk by day 28 (day28) >= 0.2." in text
    assert "Lead time by landmark day (day28 >= 0.2)" in text
    record = json.loads(out.read_text())
    assert record["estimated_horizons"] == ["day28"] and list(record["horizons"]) == ["day28"]
    assert record["synthetic"] is True and record["model"]["name"] == "icans-risk"
    lead = record["lead_time"]
    assert (lead["horizon"], lead["threshold"], lead["threshold_is_default"]) == (
        "day28",
        0.2,
        False,
    )
    # every landmark row of the cohort, counted here
    ds = build_landmark_dataset(read_cohort(champion.cohort).tables)
    days = _outcome_days(champion.cohort)
    event = np.array([days[p] for p in ds.patient_id])
    risk = champion.result.model.predict_proba(ds.raw)[:, 1]
    expected = lead_time_by_landmark(ds.landmark_day, risk, event, 0.2, "day28")
    got = [{k: v for k, v in row.items()} for row in lead["by_landmark"]]
    assert [row["alerts"] for row in got] == expected["alerts"].tolist()
    assert [row["events_in_window"] for row in got] == expected["events_in_window"].tolist()
    np.testing.assert_allclose(
        [np.nan if row["ppv"] is None else row["ppv"] for row in got], expected["ppv"]
    )


def flat_output(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--threshold", "0"], "threshold=0.0 is invalid: expected a risk strictly between"),
        (["--threshold", "1.5"], "threshold=1.5 is invalid: expected a risk strictly between"),
        (["--horizon", "12h"], "horizon='12h' is invalid: expected one of 72h, 7d, day28"),
        (["--horizon", "72h"], "horizon='72h' is invalid: expected a horizon this model"),
    ],
)
def test_cli_evaluate_refuses_bad_options_before_recording(champion, tmp_path, options, named):
    from mlflow import MlflowClient

    client = MlflowClient(champion.settings.tracking_uri)

    def runs() -> int:
        ids = [e.experiment_id for e in client.search_experiments()]
        return len(client.search_runs(ids))

    before = runs()
    out = tmp_path / "e.json"
    result = _evaluate(champion, tmp_path, *options, "--json", str(out))
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and runs() == before
