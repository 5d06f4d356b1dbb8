"""The per-patient explanation page: content, arithmetic, the endpoint and ``icans explain``.

The page is built from the small champion (``conftest.small_champion``: a tiny model, trained once
per run; what is checked here is the page, not the model's quality); the same page comes from
``POST /v1/report`` (the real service app, in process) and from the CLI. The intervals the page
states are checked on the session champion in ``test_training_e2e.py`` (their coverage needs its
refits). The browser checks (rendering, images, console) are in ``test_report_browser.py``.
"""

from __future__ import annotations

import io
import json
import re

import matplotlib.image as mpimg
import numpy as np
import pytest
from scipy.special import expit
from starlette.testclient import TestClient
from support import shared_asgi_app
from typer.testing import CliRunner

from api.patient import parse_patient
from cli.main import app as cli
from cohort.reader import read_cohort
from features.landmarks import patient_record
from reports.html import embedded_figures
from reports.patient import build_patient_report, read_patient_file
from serving.model_version import ModelRuntime

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
DAY = 5
# Written out here, not imported: the page must show these, in this order.
PAGE_SECTIONS = [
    "Risk estimate",
    "Top drivers",
    "Contributions (waterfall)",
    "Warnings",
    "Inputs used",
    "How to read this report",
]
BANNER = (
    '</h1><p class="warning"><strong>Decision support trained and evaluated on SYNTHETIC data '
    "only. Not validated on real patients. Not a medical device. Not for clinical use.</strong>"
    "</p>"
)


@pytest.fixture(scope="module")
def runtime(small_champion) -> ModelRuntime:
    return ModelRuntime.load("models:/icans-risk@champion", small_champion.settings)


@pytest.fixture(scope="module")
def record(small_champion) -> dict:
    """A patient with CRS by DAY (so several predictors move the risk) and without the event by
    then (a request after it is refused)."""
    tables = read_cohort(small_champion.cohort).tables
    daily, outcomes = tables["daily"], tables["outcomes"]
    event_day = outcomes["event_day"].astype(float)
    free = outcomes.loc[~(event_day <= DAY), "patient_id"]
    crs = daily[(daily["day"] <= DAY) & (daily["crs_grade"] >= 2)]
    pid = crs.loc[crs["patient_id"].isin(free), "patient_id"].iloc[0]
    return patient_record(tables, pid, DAY)


@pytest.fixture(scope="module")
def page(runtime, record) -> tuple[str, object]:
    patient = parse_patient(record)
    assessment = runtime.assess([patient])[0]
    return build_patient_report(patient, assessment, runtime.identity(), "req-1"), assessment


def _attr(html: str, name: str) -> float:
    return float(re.search(rf'{name}="([^"]+)"', html).group(1))


def test_every_section_is_present_in_order(page):
    html, _ = page
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", html) == PAGE_SECTIONS
    assert re.findall(r'<h2 id="([^"]+)">', html) == [
        "risk-estimate",
        "top-drivers",
        "contributions--waterfall",
        "warnings",
        "inputs-used",
        "how-to-read-this-report",
    ]
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html.lower() and "http://" not in html and "https://" not in html


def test_a_model_fitted_for_day28_alone_draws_no_horizon_chart(page):
    """The chart of several horizons: tests/test_serving_horizons.py."""
    html, a = page
    assert [h.horizon for h in a.horizons] == ["day28"]
    assert "<svg" not in html
    assert "This model version estimates the risk by day 28 only" in html


def test_headline_states_probability_interval_and_landmark(page, runtime):
    html, a = page
    assert a.interval is not None and 0 <= a.interval[0] <= a.interval[1] <= 1
    headline = re.search(r'<p class="headline".*?</p>', html, flags=re.S).group(0)
    assert f"{100 * a.probability:.1f}%" in headline
    assert f"{100 * a.interval[0]:.1f}% to {100 * a.interval[1]:.1f}%" in headline
    assert _attr(headline, "data-probability") == a.probability  # exact: repr round-trips
    assert f"day {DAY} after CAR-T infusion" in html
    assert f"{runtime.ref.name} version {runtime.ref.version}" in html
    assert "req-1" in html


@pytest.mark.parametrize(
    ("table", "n"), [("inputs", "input_contributions"), ("contributions", "contributions")]
)
def test_waterfall_tables_add_up_to_the_stated_probability(page, table, n):
    """By input and by predictor, each table adds up to the page's log-odds and probability."""
    html, a = page
    body = re.search(rf'<table class="{table}">(.*?)</table>', html, re.S).group(1)
    shap = [float(v) for v in re.findall(r'<tr data-shap="([^"]+)">', body)]
    assert len(shap) == len(getattr(a, n))
    base = _attr(html, "data-base-log-odds")
    assert base + sum(shap) == pytest.approx(
        _attr(html, "data-log-odds"), abs=1e-6
    )  # float32 trees
    assert float(expit(base + sum(shap))) == pytest.approx(
        _attr(html, "data-probability"), abs=1e-6
    )


def test_inputs_group_the_predictors_of_one_field(page):
    """One contribution per entered field: the CAR target's indicators are one input, and the
    inputs' contributions add up to the predictors'."""
    _, a = page
    fields = [c["input"] for c in a.input_contributions]
    assert len(fields) == len(set(fields))
    assert "car_target" in fields and not any("=" in f for f in fields)
    by_field = {c["input"]: c["shap_log_odds"] for c in a.input_contributions}
    target = sum(
        c["shap_log_odds"] for c in a.contributions if c["feature"].startswith("car_target=")
    )
    assert by_field["car_target"] == pytest.approx(target, abs=1e-12)
    assert sum(by_field.values()) == pytest.approx(
        sum(c["shap_log_odds"] for c in a.contributions), abs=1e-9
    )


def test_contributions_are_in_clinical_units(page):
    html, a = page
    top = a.contributions[0]
    assert f"<td>{top['label']}</td><td>{top['value_text']}</td>" in html
    assert "CRS grade today" in html
    for driver in a.drivers:
        assert driver in html


def test_caveats_say_model_not_biology_and_synthetic(page):
    html, _ = page
    assert "Contributions explain the model, not the patient&#x27;s biology" in html
    assert BANNER in html
    assert "The model was trained on a SYNTHETIC cohort." in html
    assert "<td>training cohort</td><td>synthetic, fingerprint" in html


def test_a_model_trained_on_real_data_is_not_called_synthetic(runtime, record):
    patient = parse_patient(record)
    real = runtime.identity() | {"provenance": "real"}
    html = build_patient_report(patient, runtime.assess([patient])[0], real)
    assert "SYNTHETIC" not in html and "synthetic" not in html
    assert "The model was trained on real patients." in html
    assert "<td>training cohort</td><td>real, fingerprint" in html
    assert "Contributions explain the model, not the patient&#x27;s biology" in html
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", html) == PAGE_SECTIONS


def test_waterfall_figure_is_not_blank(page):
    html, _ = page
    figures = embedded_figures(html)
    assert list(figures) == ["waterfall-of-the-contributions-to-this-patient-s-log-odds.png"]
    image = mpimg.imread(io.BytesIO(next(iter(figures.values()))), format="png")
    assert image.shape[0] > 200 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05  # not a single colour


def test_missing_inputs_are_listed_and_shown_as_not_given(runtime, record):
    sparse = {k: v for k, v in record.items() if k not in ("ldh_u_per_l", "crp_mg_per_l")}
    patient = parse_patient(sparse)
    html = build_patient_report(patient, runtime.assess([patient])[0], runtime.identity())
    assert "ldh_u_per_l" in html and "crp_mg_per_l" in html
    assert "<td>LDH (before lymphodepletion)</td><td>not given</td>" in html


def test_text_is_escaped(runtime, record):
    patient = parse_patient(record | {"patient_id": "<img src=x onerror=alert(1)>"})
    html = build_patient_report(patient, runtime.assess([patient])[0], runtime.identity())
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


# --------------------------------------------------------------------------------------------
# POST /v1/report: the same page from the service
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(small_champion, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", small_champion.settings.tracking_uri)
        mp.setenv("ICANS_AUDIT_LOG", str(tmp_path_factory.mktemp("audit") / "audit.jsonl"))
        mp.setenv("ICANS_PREDICTION_LOG_DIR", str(tmp_path_factory.mktemp("predictions")))
        mp.delenv("ICANS_API_TOKEN", raising=False)
        mp.delenv("ICANS_MODEL_URI", raising=False)
        with TestClient(shared_asgi_app(), raise_server_exceptions=False) as c:
            yield c


def test_report_endpoint_returns_the_page_with_the_risk_endpoints_numbers(client, record):
    risk = client.post("/v1/risk", json=record).json()
    r = client.post("/v1/report", json=record, headers={"X-Request-ID": "ward-3.r1"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["x-request-id"] == "ward-3.r1"
    html = r.text
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", html) == PAGE_SECTIONS
    # exact: one process, the same one-row assessment path for both; repr and JSON round-trip
    assert _attr(html, "data-probability") == risk["probability"]
    assert _attr(html, "data-log-odds") == pytest.approx(risk["log_odds"], abs=1e-12)
    interval = risk["probability_interval"]
    assert interval["low"] <= interval["high"] and interval["level"] == 0.95
    assert f"{100 * interval['low']:.1f}% to {100 * interval['high']:.1f}%" in html
    assert "ward-3.r1" in html


def test_report_endpoint_rejects_bad_input_with_json_naming_the_field(client, record):
    r = client.post("/v1/report", json=record | {"marrow_blasts_pct": 140})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/json")
    assert [e["field"] for e in r.json()["errors"]] == ["marrow_blasts_pct"]


def test_report_endpoint_is_in_the_openapi_spec_as_html(client):
    spec = client.get("/v1/openapi.json").json()
    ok = spec["paths"]["/report"]["post"]["responses"]["200"]["content"]
    assert "text/html" in ok


# --------------------------------------------------------------------------------------------
# icans explain
# --------------------------------------------------------------------------------------------


def test_explain_command_writes_the_page(small_champion, record, tmp_path):
    source = tmp_path / "patient.json"
    source.write_text(json.dumps(record))
    out = tmp_path / "reports" / "patient.html"
    result = CliRunner().invoke(
        cli,
        [
            "explain",
            "--patient",
            str(source),
            "--out",
            str(out),
            "--tracking-uri",
            small_champion.settings.tracking_uri,
        ],
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    probability = _attr(html, "data-probability")
    assert f"Risk on day {DAY}: {probability:.1%}" in result.output
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", html) == PAGE_SECTIONS


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "an existing JSON file"),
        ("{not json", "a JSON object"),
        ("[1, 2]", "a JSON object (one patient)"),
        ('{"age_years": -1}', "age_years"),
    ],
)
def test_explain_command_rejects_bad_patient_files_and_writes_nothing(
    small_champion, tmp_path, content, message
):
    source = tmp_path / "patient.json"
    if content is not None:
        source.write_text(content)
    out, uri = tmp_path / "patient.html", small_champion.settings.tracking_uri
    result = CliRunner().invoke(
        cli,
        ["explain", "--patient", str(source), "--out", str(out), "--tracking-uri", uri],
    )
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.count("\n") <= 2  # one line, no traceback
    assert not out.exists() and list(tmp_path.iterdir()) == ([source] if content else [])


def test_read_patient_file_reports_every_field_error(tmp_path, record):
    source = tmp_path / "p.json"
    source.write_text(json.dumps(record | {"age_years": -1, "marrow_blasts_pct": 140}))
    with pytest.raises(Exception) as info:
        read_patient_file(source)
    assert "age_years" in str(info.value) and "marrow_blasts_pct" in str(info.value)


def test_contributions_equal_the_shap_package_plus_the_additive_part(small_champion):
    """Our explanation = shap.TreeExplainer on the trees + the additive part's contributions."""
    import shap

    from model.explain import RiskExplainer

    model = small_champion.result.model
    raw = small_champion.result.test.raw[:200]
    x = model.transform(raw)
    ours = RiskExplainer(model).explain_features(x)
    trees = np.asarray(shap.TreeExplainer(model.trees_).shap_values(x), dtype=float)
    expected = model.calibration_[1] * (trees + model.additive_.contributions(x))
    np.testing.assert_allclose(ours.contributions, expected, atol=1e-5)
    np.testing.assert_allclose(ours.log_odds, model.decision_function(raw), atol=1e-5)
