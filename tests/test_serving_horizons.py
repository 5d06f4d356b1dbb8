"""The risk for every horizon wherever the service answers: ``/v1/risk``, ``/v1/risk/batch``
(with the ``horizons`` query parameter), the patient page's chart and the audit line.

The model is the horizon champion (``conftest.horizon_champion``: the small champion's tiny
configuration, trees alone, fitted for the next 72 hours, the next 7 days and day 28,
registered and promoted in a sqlite store of its own), served in process through BentoML's
ASGI app as in ``test_serving_api.py``. A model fitted for day 28 alone is checked there (one
horizon). What is checked here is what the product says per horizon, not the model's quality.

Tolerances: a horizon's contributions (per input) add up to its log-odds to 1e-9 (a float sum of
a few dozen terms of order 1, the shares of a derived predictor included), and that log-odds
gives its probability (computed separately, by the compiled model) to 1e-6, as for day 28 in
``test_serving_api.py``: xgboost's TreeSHAP sums in single precision. Orders between horizons
are checked exactly: the model is monotone in the window by construction.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET

import pytest
from scipy.special import expit
from starlette.testclient import TestClient
from support import shared_asgi_app

from api.patient import parse_patient
from cohort.reader import read_cohort
from features.landmarks import patient_record

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

DAY = 5
# Written out here, not imported: the names, shortest first, and the days each window ends on.
NAMES = ["72h", "7d", "day28"]
END_DAY = {  # min(L + days, 28), by hand
    0: [3, 7, 28],
    5: [8, 12, 28],
    21: [24, 28, 28],
    26: [28, 28, 28],
    27: [28, 28, 28],
}


@pytest.fixture(scope="module")
def tables(horizon_champion):
    return read_cohort(horizon_champion.cohort).tables


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory):
    return tmp_path_factory.mktemp("audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def client(horizon_champion, audit_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", horizon_champion.settings.tracking_uri)
        mp.setenv("ICANS_AUDIT_LOG", str(audit_path))
        mp.setenv("ICANS_PREDICTION_LOG_DIR", str(audit_path.parent / "predictions"))
        mp.delenv("ICANS_API_TOKEN", raising=False)
        mp.delenv("ICANS_MODEL_URI", raising=False)
        with TestClient(shared_asgi_app(), raise_server_exceptions=False) as c:
            yield c


def _requests(tables, day: int, n: int) -> list[dict]:
    """Up to ``n`` valid requests on ``day``: patients event-free by then (a request after the
    event is refused), those with CRS by then first (so the risks move)."""
    daily, outcomes = tables["daily"], tables["outcomes"]
    free = set(outcomes.loc[~(outcomes["event_day"].astype(float) <= day), "patient_id"])
    crs = set(daily.loc[(daily["day"] <= day) & (daily["crs_grade"] >= 2), "patient_id"])
    out = []
    for pid in sorted(free, key=lambda p: (p not in crs, p)):
        record = patient_record(tables, pid, day)
        try:
            parse_patient(record)
        except ValueError:  # e.g. a treatment the contract refuses
            continue
        out.append(record)
        if len(out) == n:
            break
    return out


@pytest.fixture(scope="module")
def body(tables) -> dict:
    return _requests(tables, DAY, 1)[0]


@pytest.fixture(scope="module")
def answer(client, body) -> dict:
    r = client.post("/v1/risk", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _audit_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --------------------------------------------------------------------------------------------
# /v1/risk
# --------------------------------------------------------------------------------------------


def test_every_fitted_horizon_is_answered_shortest_first(answer):
    got = answer["horizons"]
    assert [h["horizon"] for h in got] == NAMES
    assert [h["label"] for h in got] == [
        "within the next 72 hours",
        "within the next 7 days",
        "by day 28",
    ]
    assert [h["end_day"] for h in got] == END_DAY[DAY]
    for h in got:
        assert set(h) == {
            "horizon",
            "label",
            "end_day",
            "probability",
            "probability_interval",
            "log_odds",
            "base_log_odds",
            "input_contributions",
            "drivers",
        }
        assert h["drivers"] and h["input_contributions"]


def test_the_top_level_figures_are_the_day28_horizon(answer):
    day28 = answer["horizons"][-1]
    for key in ("probability", "probability_interval", "log_odds", "base_log_odds"):
        assert answer[key] == day28[key], key  # exact: one number, written twice
    assert answer["input_contributions"] == day28["input_contributions"]
    assert answer["drivers"] == day28["drivers"]


def test_each_horizons_contributions_add_up_to_its_log_odds(answer):
    for h in answer["horizons"]:
        total = h["base_log_odds"] + math.fsum(c["shap_log_odds"] for c in h["input_contributions"])
        assert total == pytest.approx(h["log_odds"], abs=1e-9), h["horizon"]
        assert expit(h["log_odds"]) == pytest.approx(h["probability"], abs=1e-6)
    # the day-28 per-predictor list adds up to the same log-odds
    top = answer["base_log_odds"] + math.fsum(c["shap_log_odds"] for c in answer["contributions"])
    assert top == pytest.approx(answer["log_odds"], abs=1e-9)


def test_the_horizons_differ_where_their_windows_do(answer):
    """On day 5 the windows (3, 7 and 23 days) differ: the risk by day 28 is above the 72-hour
    one (the 7-day one between them, and equal to one of them where no tree splits the window
    between 3 and 7 days or 7 and 23)."""
    p = [h["probability"] for h in answer["horizons"]]
    assert p[0] <= p[1] <= p[2] and p[0] < p[2]
    shap = [
        {c["input"]: c["shap_log_odds"] for c in h["input_contributions"]}
        for h in answer["horizons"]
    ]
    assert shap[0] != shap[2]  # each horizon explained on its own


@pytest.mark.parametrize("day", sorted(END_DAY))
def test_risks_and_interval_bounds_are_nested_on_every_day(client, tables, day):
    patients = _requests(tables, day, 8)
    assert len(patients) >= 4
    r = client.post("/v1/risk/batch", json={"patients": patients})
    assert r.status_code == 200, r.text
    for result in r.json()["results"]:
        hs = result["horizons"]
        assert [h["horizon"] for h in hs] == NAMES
        assert [h["end_day"] for h in hs] == END_DAY[day]
        p = [h["probability"] for h in hs]
        low = [h["probability_interval"]["low"] for h in hs]
        high = [h["probability_interval"]["high"] for h in hs]
        for values in (p, low, high):  # exactly: 72 h <= 7 d <= day 28
            assert values[0] <= values[1] <= values[2], (day, values)
        if day >= 25:  # the windows are one (the days left to 28): one predictor row, one risk
            assert p[0] == p[1] == p[2]
        if day == 21:  # 7 days and day 28 end on day 28
            assert p[1] == p[2]


def test_the_batch_carries_the_horizons_of_each_patient_as_single_calls(client, tables):
    patients = _requests(tables, DAY, 3)
    batch = client.post("/v1/risk/batch", json={"patients": patients}).json()["results"]
    for record, result in zip(patients, batch, strict=True):
        single = client.post("/v1/risk", json=record).json()
        assert [h["horizon"] for h in result["horizons"]] == NAMES
        for a, b in zip(result["horizons"], single["horizons"], strict=True):
            assert a["probability"] == pytest.approx(b["probability"], abs=1e-12)


# --------------------------------------------------------------------------------------------
# The horizons query parameter
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("72h", ["72h"]),
        ("day28,72h", ["72h", "day28"]),  # shortest first whatever the order given
        ("7d, 7d", ["7d"]),
        ("72h,7d,day28", NAMES),
    ],
)
def test_the_horizons_parameter_selects(client, body, answer, query, expected):
    r = client.post("/v1/risk", params={"horizons": query}, json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert [h["horizon"] for h in got["horizons"]] == expected
    assert got["probability"] == answer["probability"]  # day 28 at the top, always
    assert got["contributions"] == answer["contributions"]
    batch = client.post("/v1/risk/batch", params={"horizons": query}, json={"patients": [body]})
    assert [h["horizon"] for h in batch.json()["results"][0]["horizons"]] == expected


@pytest.mark.parametrize(
    ("query", "value", "rule"),
    [
        ("24h", "24h", "one of 72h, 7d, day28"),
        ("72h,day14", "day14", "one of 72h, 7d, day28"),
        ("", "", "one of 72h, 7d, day28"),
        ("72H", "72H", "one of 72h, 7d, day28"),
    ],
)
@pytest.mark.parametrize("route", ["/v1/risk", "/v1/risk/batch"])
def test_an_unknown_horizon_is_refused_naming_it_and_nothing_recorded(
    client, body, audit_path, route, query, value, rule
):
    before = len(_audit_lines(audit_path))
    payload = body if route == "/v1/risk" else {"patients": [body]}
    r = client.post(route, params={"horizons": query}, json=payload)
    assert r.status_code == 422, r.text
    got = r.json()
    assert got["error"] == "invalid_input" and got["request_id"]
    assert got["errors"] == [
        {"field": "horizons", "value": value, "expected": got["errors"][0]["expected"]}
    ]
    assert rule in got["errors"][0]["expected"]
    assert len(_audit_lines(audit_path)) == before


def test_the_parameter_is_documented_in_the_openapi_spec(client):
    spec = client.get("/v1/openapi.json").json()
    for path in ("/risk", "/risk/batch"):
        params = {p["name"]: p for p in spec["paths"][path]["post"]["parameters"]}
        assert params["horizons"]["in"] == "query" and not params["horizons"]["required"]
        assert "comma-separated" in params["horizons"]["description"]
    schemas = spec["components"]["schemas"]
    assert "HorizonRiskResponse" in schemas
    assert "horizons" in schemas["RiskResponse"]["properties"]


# --------------------------------------------------------------------------------------------
# The audit line
# --------------------------------------------------------------------------------------------


def test_the_audit_line_holds_every_horizons_probability(client, body, audit_path):
    before = len(_audit_lines(audit_path))
    r = client.post(
        "/v1/risk", params={"horizons": "72h"}, json=body, headers={"X-Request-ID": "hz-1"}
    )
    full = client.post("/v1/risk", json=body).json()
    lines = _audit_lines(audit_path)[before:]
    assert len(lines) == 2
    line = lines[0]
    assert line["request_id"] == "hz-1"
    assert list(line["horizons"]) == NAMES  # every horizon, whichever the response showed
    for h in full["horizons"]:
        assert line["horizons"][h["horizon"]] == h["probability"]  # exact: one number
    assert line["probability"] == line["horizons"]["day28"] == r.json()["probability"]


# --------------------------------------------------------------------------------------------
# The patient page
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(client, body) -> str:
    r = client.post("/v1/report", json=body)
    assert r.status_code == 200, r.text
    return r.text


def _svg(html: str) -> ET.Element:
    found = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    assert len(found) == 1
    return ET.fromstring(found[0])


def test_the_page_charts_every_horizon_with_its_window(page, answer):
    svg = _svg(page)
    labels = [t.text for t in svg.iter("text") if t.get("class") == "horizon-label"]
    assert labels == ["next 72 h", "next 7 days", "by day 28"]
    windows = [t.text for t in svg.iter("text") if t.get("class") == "window"]
    assert windows == ["days 6-8", "days 6-12", "days 6-28"]  # day 5: days 6 .. end_day
    bars = [r for r in svg.iter("rect") if r.get("class") == "bar"]
    assert [b.get("data-horizon") for b in bars] == NAMES
    shown = [float(b.get("data-probability")) for b in bars]
    assert shown == [h["probability"] for h in answer["horizons"]]  # exact: repr round-trip
    heights = [float(b.get("height")) for b in bars]
    # ordered as the probabilities, to one scale (the bars' heights per unit of probability)
    assert heights[0] <= heights[1] <= heights[2] and heights[0] < heights[2]
    ratios = [height / p for height, p in zip(heights, shown, strict=True)]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-3)
    assert len([g for g in svg.iter("g") if g.get("class") == "interval"]) == 3
    assert "<script" not in page.lower()


def test_the_page_tabulates_the_horizons_and_says_they_are_nested(page, answer):
    table = re.search(r'<table class="horizons">(.*?)</table>', page, flags=re.S)
    assert table
    for h in answer["horizons"]:
        low, high = h["probability_interval"]["low"], h["probability_interval"]["high"]
        assert f"{100 * h['probability']:.1f}%" in table.group(1)
        assert f"{100 * low:.1f}% to {100 * high:.1f}%" in table.group(1)
    assert "The risks are nested" in page
    assert "72 h &lt;= 7 d &lt;= day 28" in page
