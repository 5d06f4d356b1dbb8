"""The HTTP API of the BentoML service, in process: contract, validation, limits, auth, audit.

The model is the small champion (``conftest.small_champion``: 400 patients, a tiny model,
registered and promoted in a temporary sqlite MLflow store once per run): nothing here depends on
its quality. The service is started through BentoML's own ASGI app (``IcansRisk.to_asgi()``) with
Starlette's test client, which runs the service's ``__init__`` and so loads the champion from the
registry exactly as ``bentoml serve`` does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import re
from datetime import UTC, datetime
from typing import Any
from unittest.mock import ANY

import pytest
from scipy.special import expit
from starlette.testclient import TestClient
from support import shared_asgi_app

from api.patient import parse_patient
from api.schemas import MAX_BATCH, MAX_BODY_BYTES
from cohort.reader import read_cohort
from features.landmarks import patient_record
from features.packing import to_raw
from icans.contract import CAR_TARGETS, DISEASES, LAB_FIELDS
from serving.audit import canonical_input_sha256

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TOKEN = "s3cret-test-token-0123456789"
SECRET_ID = "PATIENT-SECRET-123"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
CONTRIBUTION_KEYS = {"feature", "label", "value", "value_text", "shap_log_odds"}
DAY = 3


# --------------------------------------------------------------------------------------------
# Fixtures: the small champion, a running service, request bodies
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cohort(small_champion):
    return small_champion.cohort


@pytest.fixture(scope="module")
def tables(cohort):
    return read_cohort(cohort).tables


@pytest.fixture(scope="module")
def store(small_champion):
    return small_champion.store


@pytest.fixture(scope="module")
def trained(small_champion):
    return small_champion.result


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory):
    return tmp_path_factory.mktemp("audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def service_env(trained, store, audit_path):
    """The environment the service reads at start-up; no API token."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}/mlflow.db")
        mp.setenv("ICANS_AUDIT_LOG", str(audit_path))
        mp.setenv("ICANS_PREDICTION_LOG_DIR", str(audit_path.parent / "predictions"))
        mp.delenv("ICANS_API_TOKEN", raising=False)
        mp.delenv("ICANS_MODEL_URI", raising=False)
        yield mp


@pytest.fixture(scope="module")
def client(service_env):
    with TestClient(shared_asgi_app(), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def patient_ids(tables):
    """Patients with every baseline lab, CAR-T samples by DAY and ICANS grade <= 2 to day 7."""
    patients = tables["patients"].dropna(subset=list(LAB_FIELDS))
    daily = tables["daily"].query("day <= 7")
    worst = daily.groupby("patient_id")["icans_grade"].max()
    days = daily.groupby("patient_id")["day"].max()
    sampled = set(tables["measurements"].query("day <= @DAY")["patient_id"])
    ok = [
        pid
        for pid in patients["patient_id"]
        if worst.get(pid, 9) <= 2 and days.get(pid, 0) == 7 and pid in sampled
    ]
    # A few of each CAR target the cohort has, so the requests cover several products.
    by_target = patients.set_index("patient_id").loc[ok, "car_target"]
    chosen = []
    for target in CAR_TARGETS:
        chosen += list(by_target[by_target == target].index[:2])
    assert len(chosen) >= 6
    return chosen


@pytest.fixture(scope="module")
def body(tables, patient_ids):
    """One complete, valid request (day 3)."""
    return patient_record(tables, patient_ids[0], DAY)


def fresh(record: dict, **changes: Any) -> dict:
    out = copy.deepcopy(record)
    out.update(changes)
    return out


def invalid(response) -> list[dict]:
    """The `errors` of a 422 ErrorResponse, after checking its envelope."""
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["error"] == "invalid_input"
    assert payload["request_id"]
    assert payload["errors"], payload
    for e in payload["errors"]:
        assert set(e) == {"field", "value", "expected"}, e
        assert isinstance(e["expected"], str) and e["expected"]
    return payload["errors"]


def error_for(errors: list[dict], field: str) -> dict:
    found = [e for e in errors if e["field"] == field]
    assert found, f"no error names {field!r}: {errors}"
    return found[0]


def without_request_id(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "request_id"}


# A patient written out by hand (LBCL, CD19 with CD28, day 3) with every input given: what a
# test takes away from it is all that is missing. Marrow blasts are measured in the leukaemias
# only, so a lymphoma leaves them out without missing them.
COMPLETE = {
    "day_since_infusion": 3,
    "age_years": 61.0,
    "weight_kg": 70.0,
    "dose_cells_per_kg": 2.0e6,
    "cns_involvement": False,
    "prior_lines": 2,
    "neuro_comorbidity": False,
    "ldh_u_per_l": 320.0,
    "crp_mg_per_l": 24.0,
    "ferritin_ng_per_ml": 800.0,
    "platelets_10e9_per_l": 110.0,
    "creatinine_mg_per_dl": 0.9,
    "disease": "LBCL",
    "car_target": "CD19",
    "costimulatory_domain": "CD28",
    "lymphodepletion": "flu_cy",
    "marrow_involvement": False,
    "car_product": "axi-cel",  # CD19/CD28, licensed in LBCL
    "crs_grade_by_day": [{"day": d, "grade": g} for d, g in enumerate([0, 1, 1, 0])],
    "cd4_car_t_cells_per_ul": [{"day": 0, "value": 0.0}, {"day": 3, "value": 14.0}],
    "cd8_car_t_cells_per_ul": [{"day": 0, "value": 0.0}, {"day": 3, "value": 31.0}],
    "icans_grade_by_day": [{"day": d, "grade": 0} for d in range(4)],
    "dexamethasone_mg_by_day": [{"day": d, "mg": 0.0} for d in range(4)],
    "tocilizumab_doses_by_day": [{"day": d, "doses": int(d == 1)} for d in range(4)],
    # the daily routine a ward charts (an adult: the ICE score, no CAPD)
    "temperature_max_c_by_day": [
        {"day": d, "value": t} for d, t in enumerate([36.8, 38.6, 38.9, 37.2])
    ],
    "ice_score_by_day": [{"day": d, "score": 10} for d in range(4)],
    "crp_mg_per_l_by_day": [{"day": d, "value": v} for d, v in enumerate([8.0, 30.0, 95.0, 120.0])],
    "ferritin_ng_per_ml_by_day": [{"day": 0, "value": 700.0}, {"day": 3, "value": 1500.0}],
    "il6_pg_per_ml_by_day": [{"day": 2, "value": 150.0}],
    "platelets_10e9_per_l_by_day": [{"day": d, "value": 100.0 - 5 * d} for d in range(4)],
    "fibrinogen_mg_per_dl_by_day": [{"day": 0, "value": 380.0}, {"day": 3, "value": 420.0}],
    "lymphocytes_10e9_per_l_by_day": [{"day": d, "value": 0.2} for d in range(4)],
    "ldh_u_per_l_by_day": [{"day": 0, "value": 300.0}, {"day": 3, "value": 340.0}],
    "creatinine_mg_per_dl_by_day": [{"day": d, "value": 0.9} for d in range(4)],
}
ALL_COURSE = ("crs_grade_by_day", "cd4_car_t_cells_per_ul", "cd8_car_t_cells_per_ul")
ALL_COURSE += ("icans_grade_by_day", "dexamethasone_mg_by_day", "tocilizumab_doses_by_day")
ALL_COURSE += ("temperature_max_c_by_day", "ice_score_by_day", "crp_mg_per_l_by_day")
ALL_COURSE += ("ferritin_ng_per_ml_by_day", "il6_pg_per_ml_by_day", "platelets_10e9_per_l_by_day")
ALL_COURSE += ("fibrinogen_mg_per_dl_by_day", "lymphocytes_10e9_per_l_by_day")
ALL_COURSE += ("ldh_u_per_l_by_day", "creatinine_mg_per_dl_by_day")
NO_COURSE = {field: [] for field in ALL_COURSE}


def without(record: dict, *fields: str, **changes: Any) -> dict:
    out = fresh(record, **changes)
    for field in fields:
        del out[field]
    return out


# (request, its missing inputs in contract order): each list written out by hand.
MISSING_CASES = [
    pytest.param(COMPLETE, [], id="complete"),
    pytest.param(
        without(COMPLETE, "weight_kg", "crp_mg_per_l", "prior_lines"),
        ["weight_kg", "prior_lines", "crp_mg_per_l"],
        id="omitted-baseline",
    ),
    pytest.param(
        fresh(COMPLETE, ferritin_ng_per_ml=None, lymphodepletion=None),
        ["ferritin_ng_per_ml", "lymphodepletion"],
        id="sent-as-null",
    ),
    pytest.param(
        without(COMPLETE, "marrow_involvement", "tocilizumab_doses_by_day"),
        ["marrow_involvement", "tocilizumab_doses_by_day"],
        id="lymphoma-without-marrow-and-treatment",
    ),
    pytest.param(
        without(
            COMPLETE,
            "marrow_involvement",
            disease="B-ALL",
            marrow_blasts_pct=35.0,
            car_product="brexu-cel",  # the CD19/CD28 product of adult B-ALL
        ),
        [],
        id="leukaemia-marrow-as-blasts",
    ),
    pytest.param(
        without(COMPLETE, "marrow_involvement", disease="B-ALL", car_product="brexu-cel"),
        ["marrow_blasts_pct"],
        id="leukaemia-without-blasts",
    ),
    pytest.param(without(COMPLETE, "car_product"), ["car_product"], id="product-not-given"),
    pytest.param(
        fresh(COMPLETE, cd4_car_t_cells_per_ul=[], dexamethasone_mg_by_day=[]),
        ["cd4_car_t_cells_per_ul", "dexamethasone_mg_by_day"],
        id="empty-course-lists",
    ),
    pytest.param(
        fresh(COMPLETE, day_since_infusion=0, **NO_COURSE),
        [],
        id="day-0-nothing-observed-yet",
    ),
    pytest.param(
        fresh(COMPLETE, day_since_infusion=5, **NO_COURSE),
        list(ALL_COURSE),
        id="day-5-no-course",
    ),
    pytest.param(
        # no predictor reads anakinra or intrathecal doses (the outcome check alone does)
        fresh(
            COMPLETE,
            day_since_infusion=5,
            **NO_COURSE,
            anakinra_doses_by_day=[],
            intrathecal_doses_by_day=[],
        ),
        list(ALL_COURSE),
        id="day-5-no-course-second-line-not-read-by-the-model",
    ),
]


def treated(record: dict) -> dict:
    """The request with a treatment course that does not make it refractory: dexamethasone
    10 mg on days 0-2 (prophylaxis), a tocilizumab dose on day 1, marrow not involved."""
    day = record["day_since_infusion"]
    return fresh(
        record,
        marrow_involvement=False,
        dexamethasone_mg_by_day=[{"day": d, "mg": 10.0 if d <= 2 else 0.0} for d in range(day + 1)],
        tocilizumab_doses_by_day=[{"day": d, "doses": int(d == 1)} for d in range(day + 1)],
    )


def refractory(record: dict) -> dict:
    """The request (day 3) with ICANS grade 2 from day 0, when dexamethasone 20 mg a day was
    started, still grade 2 on day 2 and day 3 (48 and 72 h later): steroid-refractory ICANS,
    the outcome."""
    assert record["day_since_infusion"] == 3
    return fresh(
        treated(record),
        icans_grade_by_day=[{"day": d, "grade": 2} for d in range(4)],
        dexamethasone_mg_by_day=[{"day": d, "mg": 20.0} for d in range(4)],
    )


def lingering(record: dict) -> dict:
    """The request (day 3) with ICANS grade 1 from day 0, when dexamethasone 20 mg a day was
    started, still grade 1 on days 2 and 3: a grade 1 that lingers is not refractory."""
    assert record["day_since_infusion"] == 3
    return fresh(
        treated(record),
        icans_grade_by_day=[{"day": d, "grade": 1} for d in range(4)],
        dexamethasone_mg_by_day=[{"day": d, "mg": 20.0} for d in range(4)],
    )


# --------------------------------------------------------------------------------------------
# POST /v1/risk: the response contract
# --------------------------------------------------------------------------------------------


def test_risk_response_contract(client, trained, body):
    response = client.post("/v1/risk", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    r = response.json()
    assert 0.0 <= r["probability"] <= 1.0
    assert r["landmark_day"] == body["day_since_infusion"] == DAY
    assert r["model_name"] == "icans-risk"
    assert r["model_version"] == trained.model_version
    for key in ("base_log_odds", "log_odds"):
        assert isinstance(r[key], float) and math.isfinite(r[key])
    assert isinstance(r["drivers"], list) and r["drivers"]
    assert all(isinstance(d, str) and d for d in r["drivers"])
    assert isinstance(r["warnings"], list)
    assert all(isinstance(w, str) for w in r["warnings"])
    # each missing input is one the request leaves out or sends empty (which, exactly, is
    # checked on requests written by hand: test_missing_inputs_are_the_optional_inputs_left_out)
    assert isinstance(r["missing_inputs"], list)
    assert all(body.get(field) in (None, []) for field in r["missing_inputs"]), r
    assert isinstance(r["request_id"], str) and r["request_id"]
    assert "SYNTHETIC" in r["disclaimer"]


def test_a_model_fitted_for_day28_alone_answers_with_that_one_horizon(client, body):
    """The horizons of a model fitted for every horizon: tests/test_serving_horizons.py."""
    r = client.post("/v1/risk", json=body).json()
    (day28,) = r["horizons"]
    assert (day28["horizon"], day28["label"], day28["end_day"]) == ("day28", "by day 28", 28)
    for key in ("probability", "probability_interval", "log_odds", "base_log_odds"):
        assert day28[key] == r[key], key
    assert client.post("/v1/risk", params={"horizons": "day28"}, json=body).json() == (
        r | {"request_id": ANY}
    )
    refused = client.post("/v1/risk", params={"horizons": "72h"}, json=body)
    error = error_for(invalid(refused), "horizons")
    assert error["value"] == "72h"
    assert error["expected"] == "a horizon this model estimates: one of day28"


@pytest.mark.parametrize(("record", "missing"), MISSING_CASES)
def test_missing_inputs_are_the_optional_inputs_left_out(client, record, missing):
    r = client.post("/v1/risk", json=record)
    assert r.status_code == 200, r.text
    assert r.json()["missing_inputs"] == missing


def test_contributions_one_per_feature_largest_first(client, trained, body):
    r = client.post("/v1/risk", json=body).json()
    contributions = r["contributions"]
    for c in contributions:
        assert set(c) == CONTRIBUTION_KEYS, c
        assert isinstance(c["feature"], str) and isinstance(c["label"], str)
        assert isinstance(c["value_text"], str)
        assert c["value"] is None or isinstance(c["value"], float)
        assert isinstance(c["shap_log_odds"], float)
    features = [c["feature"] for c in contributions]
    expected = list(trained.model.feature_names_)
    assert len(features) == len(set(features)) == len(expected)
    assert set(features) == set(expected)
    magnitudes = [abs(c["shap_log_odds"]) for c in contributions]
    assert magnitudes == sorted(magnitudes, reverse=True)


def test_explanation_adds_up_to_the_probability(client, tables, patient_ids):
    for pid in patient_ids:
        for day in (0, DAY, 7):
            r = client.post("/v1/risk", json=patient_record(tables, pid, day)).json()
            total = r["base_log_odds"] + sum(c["shap_log_odds"] for c in r["contributions"])
            assert total == pytest.approx(r["log_odds"], abs=1e-5), (pid, day)
            assert float(expit(r["log_odds"])) == pytest.approx(r["probability"], abs=1e-6)


def test_valid_request_id_header_is_echoed(client, body):
    r = client.post("/v1/risk", json=body, headers={"X-Request-ID": "ward-7.req_0042"})
    assert r.status_code == 200
    assert r.json()["request_id"] == "ward-7.req_0042"


def test_invalid_request_id_header_is_replaced(client, body):
    given = "not valid; <script>" + "x" * 80
    r = client.post("/v1/risk", json=body, headers={"X-Request-ID": given})
    assert r.status_code == 200
    rid = r.json()["request_id"]
    assert rid != given and re.fullmatch(r"[0-9a-f]{32}", rid)


def test_request_ids_differ_between_calls(client, body):
    first = client.post("/v1/risk", json=body).json()["request_id"]
    second = client.post("/v1/risk", json=body).json()["request_id"]
    assert first != second


def test_probabilities_equal_the_trained_pipeline_exactly(client, trained, tables, patient_ids):
    for pid in patient_ids:
        for day in (0, 1, DAY, 5, 7):
            record = patient_record(tables, pid, day)
            raw = to_raw(parse_patient(record))
            expected = float(trained.model.predict_proba(raw)[0, 1])
            got = client.post("/v1/risk", json=record).json()["probability"]
            # exact: one process and machine; the served compiled model repeats the pipeline's
            # elementwise sums and xgboost's float32 tree order (no BLAS); JSON round-trips
            assert got == expected, (pid, day)


# --------------------------------------------------------------------------------------------
# POST /v1/risk/batch
# --------------------------------------------------------------------------------------------


def test_batch_results_in_order_and_identical_to_single_calls(client, tables, patient_ids):
    days = [(0, 3, 7)[i % 3] for i in range(len(patient_ids))]
    records = [patient_record(tables, p, d) for p, d in zip(patient_ids, days, strict=True)]
    response = client.post(
        "/v1/risk/batch", json={"patients": records}, headers={"X-Request-ID": "batch-1"}
    )
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["request_id"] == "batch-1"
    results = payload["results"]
    assert len(results) == len(records)
    for i, (record, result) in enumerate(zip(records, results, strict=True)):
        assert result["landmark_day"] == record["day_since_infusion"]
        single = client.post("/v1/risk", json=record).json()
        # exact: a batch runs each row through the same per-row code as a single call
        assert without_request_id(result) == without_request_id(single)
        assert result["request_id"] == f"batch-1.{i}"  # one id per prediction: outcomes join


def test_batch_of_max_size_is_accepted(client, body):
    response = client.post("/v1/risk/batch", json={"patients": [body] * MAX_BATCH})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == MAX_BATCH
    assert len({r["probability"] for r in results}) == 1  # exact: rows computed one by one


def test_batch_over_the_limit_is_rejected_naming_patients(client, body):
    errors = invalid(client.post("/v1/risk/batch", json={"patients": [body] * (MAX_BATCH + 1)}))
    e = error_for(errors, "patients")
    assert str(MAX_BATCH) in e["expected"]


def test_empty_batch_is_rejected(client):
    errors = invalid(client.post("/v1/risk/batch", json={"patients": []}))
    assert error_for(errors, "patients")


def test_batch_error_names_the_patient_and_field(client, body):
    bad = fresh(body, disease="GLIOMA")
    errors = invalid(client.post("/v1/risk/batch", json={"patients": [body, bad]}))
    e = error_for(errors, "patients[1].disease")
    assert e["value"] == "GLIOMA"
    assert all(d in e["expected"] for d in DISEASES)
    assert not any(x["field"].startswith("patients[0]") for x in errors)


def test_batch_course_date_error_names_the_patient(client, body):
    bad = fresh(body, age_years=-5)
    bad["crs_grade_by_day"] = [*bad["crs_grade_by_day"], {"day": DAY + 2, "grade": 1}]
    errors = invalid(client.post("/v1/risk/batch", json={"patients": [body, body, bad]}))
    assert error_for(errors, "patients[2].age_years")["value"] == -5
    k = len(bad["crs_grade_by_day"]) - 1
    assert error_for(errors, f"patients[2].crs_grade_by_day[{k}].day")["value"] == DAY + 2


def test_batch_with_extra_top_level_field_is_rejected(client, body):
    errors = invalid(client.post("/v1/risk/batch", json={"patients": [body], "extra": 1}))
    assert error_for(errors, "extra")


# --------------------------------------------------------------------------------------------
# GET /v1/model
# --------------------------------------------------------------------------------------------


def test_model_info(client, trained):
    response = client.get("/v1/model")
    assert response.status_code == 200, response.text
    m = response.json()
    assert m["name"] == "icans-risk"
    assert m["version"] == trained.model_version
    assert m["alias"] == "champion"
    assert m["run_id"] == trained.run_id
    assert datetime.fromisoformat(m["trained_at"]).tzinfo is not None
    assert re.fullmatch(r"[0-9a-f]{16}", m["cohort_fingerprint"]), m["cohort_fingerprint"]
    assert 0.5 < m["headline_metrics"]["auroc"] <= 1.0
    assert "SYNTHETIC" in m["intended_use"]
    assert m["synthetic_data"] is True
    assert m["gate"]["passed"] is True
    expected = list(trained.model.feature_names_)
    assert m["feature_names"] == expected
    rollout = m["rollout"]
    assert rollout["model_version"] == trained.model_version
    assert rollout["follows_alias"] == "champion"
    assert rollout["poll_seconds"] == 30.0  # the default
    assert rollout["failed_rollout"] is None


def test_readyz_names_the_version_the_worker_answers_with(client, trained):
    """BentoML's readiness code, with the worker's roll-out state as its body; no token needed
    (nor wanted: a load balancer's health check sends none)."""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "ready"
    assert body["model_name"] == "icans-risk"
    assert body["model_version"] == trained.model_version
    assert body["follows_alias"] == "champion"
    assert body["failed_rollout"] is None
    assert client.get("/livez").status_code == 200


# --------------------------------------------------------------------------------------------
# Validation: 422 naming field, value and rule
# --------------------------------------------------------------------------------------------


def _append(series: str, item: dict):
    def change(record: dict) -> tuple[dict, int]:
        out = copy.deepcopy(record)
        out[series] = [*out[series], item]
        return out, len(out[series]) - 1

    return change


SIMPLE_CASES = [
    # (changes, field, value given, words of the rule)
    ({"age_years": "61"}, "age_years", "61", "number"),
    ({"cns_involvement": 1}, "cns_involvement", 1, "boolean"),
    ({"prior_lines": True}, "prior_lines", True, "integer"),
    ({"day_since_infusion": 3.5}, "day_since_infusion", 3.5, "integer"),
    ({"age_years": 101}, "age_years", 101, "less than or equal to 100"),
    ({"age_years": -1}, "age_years", -1, "greater than or equal to 0"),
    ({"dose_cells_per_kg": 0}, "dose_cells_per_kg", 0, "greater than 0"),
    ({"marrow_blasts_pct": 100.5}, "marrow_blasts_pct", 100.5, "less than or equal to 100"),
    ({"weight_kg": 0}, "weight_kg", 0, "greater than 0"),
    # day 28 is the last of follow-up: no horizon reaches past it (icans.horizons)
    ({"day_since_infusion": 28}, "day_since_infusion", 28, "less than or equal to 27"),
    ({"platelets_10e9_per_l": 0}, "platelets_10e9_per_l", 0, "greater than 0"),
    ({"crp_mg_per_l": -3}, "crp_mg_per_l", -3, "greater than or equal to 0"),
    ({"ice_score": 7}, "ice_score", 7, "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("changes", "field", "value", "rule"), SIMPLE_CASES)
def test_field_rule_is_reported(client, body, changes, field, value, rule):
    errors = invalid(client.post("/v1/risk", json=fresh(body, **changes)))
    e = error_for(errors, field)
    assert e["value"] == value
    assert type(e["value"]) is type(value)
    assert rule in e["expected"], e


def test_invalid_patient_id_is_reported_but_never_echoed(client, body):
    errors = invalid(client.post("/v1/risk", json=fresh(body, patient_id=12345)))
    e = error_for(errors, "patient_id")
    assert e["value"] is None  # identifiers are never repeated back, even invalid ones
    assert "string" in e["expected"]


@pytest.mark.parametrize(
    ("field", "allowed"),
    [
        ("car_target", CAR_TARGETS),
        ("disease", DISEASES),
        ("costimulatory_domain", ("CD28", "4-1BB")),
        (
            "car_product",
            ("axi-cel", "brexu-cel", "tisa-cel", "liso-cel", "ide-cel", "cilta-cel"),
        ),
    ],
)
def test_unknown_enum_lists_allowed_values(client, body, field, allowed):
    errors = invalid(client.post("/v1/risk", json=fresh(body, **{field: "CD999"})))
    e = error_for(errors, field)
    assert e["value"] == "CD999"
    for value in allowed:
        assert f"'{value}'" in e["expected"], e


def test_a_request_is_answered_with_or_without_the_product(client):
    """car_product is optional: the hand-written request with axi-cel (CD19/CD28, LBCL) and
    without it are both answered; without it the product is listed as a missing input."""
    given = client.post("/v1/risk", json=COMPLETE)
    assert given.status_code == 200, given.text
    assert "car_product" not in given.json()["missing_inputs"]
    left_out = client.post("/v1/risk", json=without(COMPLETE, "car_product"))
    assert left_out.status_code == 200, left_out.text
    assert "car_product" in left_out.json()["missing_inputs"]
    sent_null = client.post("/v1/risk", json=fresh(COMPLETE, car_product=None))
    assert sent_null.status_code == 200, sent_null.text
    assert sent_null.json()["probability"] == left_out.json()["probability"]


@pytest.mark.parametrize(
    ("changes", "fitting"),
    [
        # tisa-cel is 4-1BB: for CD19 with CD28 the products are axi-cel and brexu-cel
        ({"car_product": "tisa-cel"}, "axi-cel, brexu-cel or investigational"),
        # brexu-cel is CD19/CD28 but licensed for MCL and adult B-ALL, not LBCL
        ({"car_product": "brexu-cel"}, "LBCL at 61 years: axi-cel, tisa-cel, liso-cel or "),
        # tisa-cel in B-ALL: up to 25 years (Kymriah label)
        (
            {
                "car_product": "tisa-cel",
                "costimulatory_domain": "4-1BB",
                "disease": "B-ALL",
                "marrow_involvement": None,
                "marrow_blasts_pct": 20.0,
            },
            "B-ALL at 61 years: brexu-cel or investigational",
        ),
    ],
)
def test_a_product_off_its_label_is_refused_with_422(client, changes, fitting):
    response = client.post("/v1/risk", json=fresh(COMPLETE, **changes))
    errors = invalid(response)  # 422, never a 500
    e = error_for(errors, "car_product")
    assert e["value"] == changes["car_product"]
    assert fitting in e["expected"], e


@pytest.mark.parametrize(
    "field",
    [
        "age_years",
        "disease",
        "car_target",
        "costimulatory_domain",
        "dose_cells_per_kg",
        "cns_involvement",
        "day_since_infusion",
    ],
)
def test_missing_required_field_does_not_echo_the_request(client, body, field):
    record = fresh(body, patient_id=SECRET_ID)
    del record[field]
    response = client.post("/v1/risk", json=record)
    errors = invalid(response)
    e = error_for(errors, field)
    assert e["value"] is None
    assert "required" in e["expected"]
    assert SECRET_ID not in response.text


def test_observation_dated_after_the_prediction_day(client, body):
    record, k = _append("crs_grade_by_day", {"day": DAY + 1, "grade": 1})(body)
    errors = invalid(client.post("/v1/risk", json=record))
    e = error_for(errors, f"crs_grade_by_day[{k}].day")
    assert e["value"] == DAY + 1
    assert f"day_since_infusion={DAY}" in e["expected"]
    assert "after the prediction day" in e["expected"]


def test_cell_sample_dated_after_the_prediction_day(client, body):
    record, k = _append("cd8_car_t_cells_per_ul", {"day": 20, "value": 3.0})(body)
    errors = invalid(client.post("/v1/risk", json=record))
    assert error_for(errors, f"cd8_car_t_cells_per_ul[{k}].day")["value"] == 20


def test_duplicate_day(client, body):
    record, k = _append("icans_grade_by_day", {"day": 1, "grade": 0})(body)
    errors = invalid(client.post("/v1/risk", json=record))
    e = error_for(errors, f"icans_grade_by_day[{k}].day")
    assert e["value"] == 1
    assert "at most once" in e["expected"]


def test_negative_cell_count(client, body):
    cells = [{"day": 0, "value": 0.0}, {"day": 2, "value": -1.5}]
    errors = invalid(client.post("/v1/risk", json=fresh(body, cd4_car_t_cells_per_ul=cells)))
    e = error_for(errors, "cd4_car_t_cells_per_ul[1].value")
    assert e["value"] == -1.5
    assert "greater than or equal to 0" in e["expected"]


def test_icans_grade_three_is_rejected(client, body):
    record = copy.deepcopy(body)
    record["icans_grade_by_day"][1]["grade"] = 3
    errors = invalid(client.post("/v1/risk", json=record))
    e = error_for(errors, "icans_grade_by_day[1].grade")
    assert e["value"] == 3
    assert "less than or equal to 2" in e["expected"]


def test_a_patient_already_steroid_refractory_is_refused(client, body):
    errors = invalid(client.post("/v1/risk", json=refractory(body)))
    assert len(errors) == 1, errors
    e = error_for(errors, "icans_grade_by_day[3].grade")
    assert e["value"] == 2
    for words in ("steroid-refractory", "started on day 0", "48 and 72 h", "day 3: grade 2"):
        assert words in e["expected"], e


def test_a_lingering_grade_1_on_steroids_is_answered(client, body):
    r = client.post("/v1/risk", json=lingering(body))
    assert r.status_code == 200, r.text
    assert 0.0 <= r.json()["probability"] <= 1.0


def test_escalation_to_anakinra_or_intrathecal_therapy_is_refused(client, body):
    """The lingering grade 1 (steroids from day 0) given anakinra on day 2, or intrathecal
    therapy on day 1, after the start: the treating team judged steroids failed, refractory
    ICANS; the error names the dose entry. The same doses on the start day count for nothing."""
    for field, entries, k, day, label in (
        (
            "anakinra_doses_by_day",
            [{"day": 0, "doses": 0}, {"day": 2, "doses": 2}],
            1,
            2,
            "anakinra",
        ),
        ("intrathecal_doses_by_day", [{"day": 1, "doses": 1}], 0, 1, "intrathecal therapy"),
    ):
        errors = invalid(client.post("/v1/risk", json=fresh(lingering(body), **{field: entries})))
        assert len(errors) == 1, errors
        e = error_for(errors, f"{field}[{k}].doses")
        assert e["value"] == entries[k]["doses"]
        for words in ("steroid-refractory", "started on day 0", f"{label} was given on day {day}"):
            assert words in e["expected"], e
        on_start = fresh(lingering(body), **{field: [{"day": 0, "doses": 1}]})
        assert client.post("/v1/risk", json=on_start).status_code == 200


def test_steroid_refractoriness_comes_with_every_other_error(client, body):
    record = fresh(refractory(body), age_years=-1, car_target="BCMA")
    record, k = _append("cd4_car_t_cells_per_ul", {"day": DAY + 1, "value": 1.0})(record)
    errors = invalid(client.post("/v1/risk", json=record))
    fields = {e["field"] for e in errors}
    assert {
        "age_years",
        f"cd4_car_t_cells_per_ul[{k}].day",
        "icans_grade_by_day[3].grade",
    } <= fields, fields
    # and with the model validator's product error (the fields themselves valid)
    errors = invalid(client.post("/v1/risk", json=fresh(refractory(body), car_target="BCMA")))
    assert {"car_target", "icans_grade_by_day[3].grade"} <= {e["field"] for e in errors}


def test_batch_names_the_refractory_patient(client, body):
    errors = invalid(client.post("/v1/risk/batch", json={"patients": [body, refractory(body)]}))
    assert [e["field"] for e in errors] == ["patients[1].icans_grade_by_day[3].grade"]


def test_treatment_course_is_accepted_and_explained(client, body):
    """A treated patient who is not refractory (prophylaxis, a tocilizumab dose) is answered;
    the treatment inputs are no longer missing and every treatment predictor is explained."""
    r = client.post("/v1/risk", json=treated(body))
    assert r.status_code == 200, r.text
    result = r.json()
    for field in ("marrow_involvement", "dexamethasone_mg_by_day", "tocilizumab_doses_by_day"):
        assert field not in result["missing_inputs"]
    shown = {c["feature"]: c for c in result["contributions"]}
    assert shown["prophylactic_steroid"]["value_text"] == "yes"
    assert shown["tocilizumab_doses_to_date"]["value"] == 1.0
    assert shown["steroid_mg_today"]["value_text"] == "0 mg"  # day 3: none that day
    assert shown["days_since_steroid_start"]["value_text"] == "none so far"


def test_a_fractional_tocilizumab_dose_is_refused(client, body):
    record = fresh(body, tocilizumab_doses_by_day=[{"day": 1, "doses": 0.5}])
    e = error_for(
        invalid(client.post("/v1/risk", json=record)), "tocilizumab_doses_by_day[0].doses"
    )
    assert e["value"] == 0.5 and "integer" in e["expected"]


def test_crs_grade_five_is_rejected(client, body):
    record = copy.deepcopy(body)
    record["crs_grade_by_day"][0]["grade"] = 5
    errors = invalid(client.post("/v1/risk", json=record))
    assert error_for(errors, "crs_grade_by_day[0].grade")["value"] == 5


def test_several_errors_reported_at_once(client, body):
    record, k = _append("crs_grade_by_day", {"day": DAY + 4, "grade": 2})(body)
    record.update(age_years=-1, car_target="CD99", cns_involvement="no", unknown_field=True)
    del record["disease"]
    response = client.post("/v1/risk", json=record)
    errors = invalid(response)
    fields = {e["field"] for e in errors}
    assert {
        "age_years",
        "car_target",
        "cns_involvement",
        "unknown_field",
        "disease",
        f"crs_grade_by_day[{k}].day",
    } <= fields, fields
    assert response.json()["message"].startswith(f"{len(errors)} invalid")


def test_non_finite_numbers_are_rejected_not_echoed_as_invalid_json(client, body):
    text = json.dumps(fresh(body, age_years=0)).replace('"age_years": 0', '"age_years": NaN')
    response = client.post(
        "/v1/risk", content=text.encode(), headers={"content-type": "application/json"}
    )
    errors = invalid(response)
    assert error_for(errors, "age_years")
    json.loads(response.text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


# --------------------------------------------------------------------------------------------
# Malformed bodies: 4xx, never 5xx
# --------------------------------------------------------------------------------------------

JSON = {"content-type": "application/json"}

MALFORMED = {
    "invalid json": (b"{not json", JSON),
    "truncated json": (b'{"age_years": 61, "disease": "LB', JSON),
    "json array": (b"[]", JSON),
    "json array of objects": (b'[{"age_years": 61}]', JSON),
    "json number": (b"5", JSON),
    "json string": (b'"hello"', JSON),
    "json null": (b"null", JSON),
    "json true": (b"true", JSON),
    "empty body": (b"", JSON),
    "empty body no content-type": (b"", {}),
    "whitespace": (b"   \n ", JSON),
    "wrong content-type": (b'{"age_years": 61}', {"content-type": "text/plain"}),
    "form encoded": (
        b"age_years=61&disease=LBCL",
        {"content-type": "application/x-www-form-urlencoded"},
    ),
    "binary junk": (bytes(range(256)) * 4, {"content-type": "application/octet-stream"}),
    "invalid utf-8": (b'{"disease": "\xff\xfe"}', JSON),
    "huge float": (b'{"age_years": 1e400, "dose_cells_per_kg": -1e999}', JSON),
    "huge integer": (b'{"age_years": 1' + b"0" * 4000 + b"}", JSON),
    "huge integer score": (
        b'{"age_years": 40, "day_since_infusion": 1, "icans_grade_by_day": [{"day": 1, '
        b'"grade": 0}], "ice_score_by_day": [{"day": 1, "score": 1' + b"0" * 4000 + b"}]}",
        JSON,
    ),
    "nan and infinity": (b'{"age_years": NaN, "weight_kg": Infinity}', JSON),
    "deeply nested arrays": (b"[" * 20_000 + b"]" * 20_000, JSON),
    "deeply nested objects": (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, JSON),
    "nested junk in a field": (b'{"crs_grade_by_day": ' + b"[" * 3000 + b"]" * 3000 + b"}", JSON),
    "wrong shapes in lists": (b'{"crs_grade_by_day": [1, "a", null, {"day": {}}]}', JSON),
    "list longer than 29": (
        json.dumps({"crs_grade_by_day": [{"day": 0, "grade": 0}] * 40}).encode(),
        JSON,
    ),
    "null bytes": (b'{"patient_id": "a\\u0000b", "age_years": 61}', JSON),
}


@pytest.mark.parametrize("path", ["/v1/risk", "/v1/risk/batch"])
@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_body_is_a_client_error(client, path, name):
    content, headers = MALFORMED[name]
    response = client.post(path, content=content, headers=headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    payload = response.json()
    assert set(payload) >= {"error", "message", "errors", "request_id"}
    assert payload["error"] != "internal_error"


def test_body_over_the_limit_is_413(client):
    content = b'{"patient_id": "' + b"x" * 70_000 + b'"}'
    assert len(content) > MAX_BODY_BYTES
    response = client.post("/v1/risk", content=content, headers=JSON)
    assert response.status_code == 413
    payload = response.json()
    assert payload["error"] == "payload_too_large"
    assert payload["request_id"]


def test_streamed_body_over_the_limit_without_content_length_is_rejected(client):
    def chunks():
        yield b'{"patient_id": "'
        for _ in range(10):
            yield b"x" * 10_000
        yield b'"}'

    response = client.post("/v1/risk", content=chunks(), headers=JSON)
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413, response.text[:300]
    assert response.json()["error"] == "payload_too_large"


def test_unknown_route_is_404(client):
    assert client.post("/v1/nope", json={}).status_code == 404
    assert client.get("/v1/risk/unknown").status_code == 404


def test_wrong_method_is_405_with_the_allowed_methods(client):
    response = client.get("/v1/risk")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert response.headers["allow"] == "POST"
    put = client.put("/v1/model", json={})
    assert put.status_code == 405 and put.headers["allow"] == "GET"


def test_the_html_report_documents_and_returns_json_errors(client, body):
    spec = client.get("/v1/openapi.json").json()["paths"]["/report"]["post"]["responses"]
    assert list(spec["200"]["content"]) == ["text/html"]
    assert list(spec["422"]["content"]) == ["application/json"]
    bad = client.post("/v1/report", json=fresh(body, age_years=-1))
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/json")


# --------------------------------------------------------------------------------------------
# Warnings
# --------------------------------------------------------------------------------------------


def test_values_far_outside_training_range_are_warned_about(client, body):
    r = client.post("/v1/risk", json=fresh(body, ldh_u_per_l=40_000, marrow_blasts_pct=100))
    assert r.status_code == 200, r.text
    warnings = r.json()["warnings"]
    ldh = [w for w in warnings if w.startswith("LDH")]
    assert ldh and "training range" in ldh[0], warnings
    assert any("marrow blasts" in w and "training range" in w for w in warnings), warnings


def test_omitted_optional_labs_are_warned_about_and_listed(client):
    record = without(COMPLETE, "crp_mg_per_l", "ferritin_ng_per_ml", "prior_lines")
    r = client.post("/v1/risk", json=record)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["missing_inputs"] == ["prior_lines", "crp_mg_per_l", "ferritin_ng_per_ml"]
    for field in result["missing_inputs"]:
        assert any(field in w for w in result["warnings"]), (field, result["warnings"])


def test_missing_course_after_day_zero_is_warned_about(client, body):
    r = client.post("/v1/risk", json=fresh(body, crs_grade_by_day=[])).json()
    assert "crs_grade_by_day" in r["missing_inputs"]
    assert any(w.startswith("crs_grade_by_day not given") for w in r["warnings"])


def test_car_t_counts_left_out_are_listed_but_not_warned_about(client, body):
    """Most centres never measure CAR-T cells (icans-facts-3): leaving them out is listed in
    ``missing_inputs`` and is not a warning."""
    r = client.post("/v1/risk", json=fresh(body, cd4_car_t_cells_per_ul=[])).json()
    assert "cd4_car_t_cells_per_ul" in r["missing_inputs"]
    assert not any("cd4" in w or "CAR-T" in w for w in r["warnings"]), r["warnings"]


def test_null_optional_lab_equals_omitted(client, body):
    omitted = copy.deepcopy(body)
    del omitted["crp_mg_per_l"]
    a = client.post("/v1/risk", json=omitted).json()
    b = client.post("/v1/risk", json=fresh(body, crp_mg_per_l=None)).json()
    assert without_request_id(a) == without_request_id(b)  # exact: the same row, the same code


# --------------------------------------------------------------------------------------------
# Audit trail and logs: one line per prediction, no patient identifier
# --------------------------------------------------------------------------------------------


def _audit_lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_each_prediction_appends_one_audit_line(client, body, audit_path):
    before = _audit_lines(audit_path)
    response = client.post("/v1/risk", json=body, headers={"X-Request-ID": "audit-1"})
    assert response.status_code == 200
    after = _audit_lines(audit_path)
    assert len(after) == len(before) + 1
    line = json.loads(after[-1])
    assert {"time", "request_id", "model_version", "input_sha256", "probability"} <= set(line)
    assert line["request_id"] == "audit-1"
    assert line["model_version"] == response.json()["model_version"]
    assert line["probability"] == response.json()["probability"]  # exact: one number, logged
    assert line["horizons"] == {"day28": line["probability"]}  # a day-28 model: one horizon
    assert HEX64.match(line["input_sha256"])
    assert datetime.fromisoformat(line["time"]).tzinfo is not None
    assert "patient_id" not in line


def test_each_prediction_appends_its_feature_row_to_the_prediction_log(client, body, audit_path):
    from serving.prediction_log import read_prediction_log

    today = datetime.now(UTC).date()
    directory = audit_path.parent / "predictions"
    before = len(read_prediction_log(directory, today, today))
    record = fresh(body, patient_id="MRN-0042")
    answer = client.post("/v1/risk", json=record, headers={"X-Request-ID": "log-1"}).json()
    client.post("/v1/risk", json=fresh(body, age_years=-1))  # refused: not logged

    frame = read_prediction_log(directory, today, today)
    assert len(frame) == before + 1
    line = frame.iloc[-1]
    assert line["request_id"] == "log-1" and line["channel"] == "json"
    assert line["model_version"] == answer["model_version"]
    assert line["probability"] == answer["probability"]  # exact: one number, logged
    for c in answer["contributions"]:  # the feature row is the predictors the answer explains
        value = line[f"predictor.{c['feature']}"]
        assert (value != value) if c["value"] is None else value == c["value"]  # same numbers
    text = "".join(p.read_text() for p in directory.iterdir())
    assert "MRN-0042" not in text and "patient_id" not in text


def test_batch_appends_one_line_per_patient_and_rejections_none(client, body, audit_path):
    before = len(_audit_lines(audit_path))
    client.post("/v1/risk/batch", json={"patients": [body, body, body]})
    assert len(_audit_lines(audit_path)) == before + 3
    client.post("/v1/risk", json=fresh(body, age_years=-1))
    client.post("/v1/risk/batch", json={"patients": [body, fresh(body, disease="X")]})
    assert len(_audit_lines(audit_path)) == before + 3


def test_input_hash_is_the_canonical_hash_and_ignores_patient_id(client, body, audit_path):
    hashes = []
    for pid in ("A-1", "B-2", None):
        record = fresh(body, patient_id=pid)
        client.post("/v1/risk", json=record)
        line = json.loads(_audit_lines(audit_path)[-1])
        assert line["input_sha256"] == canonical_input_sha256(parse_patient(record))
        hashes.append(line["input_sha256"])
    assert len(set(hashes)) == 1
    client.post("/v1/risk", json=fresh(body, age_years=body["age_years"] + 1))
    assert json.loads(_audit_lines(audit_path)[-1])["input_sha256"] != hashes[0]


def test_patient_id_never_reaches_audit_or_logs(client, body, audit_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    for name in ("icans", "icans.serving", "bentoml", "uvicorn", "fastapi"):
        caplog.set_level(logging.DEBUG, logger=name)
    record = fresh(body, patient_id=SECRET_ID)
    assert client.post("/v1/risk", json=record).status_code == 200
    assert client.post("/v1/risk/batch", json={"patients": [record]}).status_code == 200
    assert client.post("/v1/risk", json=fresh(record, age_years=-1)).status_code == 422
    assert client.post("/v1/risk", json=fresh(record, ice_score=1)).status_code == 422

    derived = hashlib.sha256(SECRET_ID.encode()).hexdigest()
    audit = audit_path.read_text()
    assert SECRET_ID not in audit and derived not in audit
    out, err = capfd.readouterr()
    assert SECRET_ID not in out and SECRET_ID not in err
    assert SECRET_ID not in caplog.text
    for rec in caplog.records:
        assert SECRET_ID not in rec.getMessage()
        assert SECRET_ID not in repr(rec.args)


# --------------------------------------------------------------------------------------------
# Security: a separate service instance with ICANS_API_TOKEN set
# --------------------------------------------------------------------------------------------


class TestBearerToken:
    """A separate service instance (lifespan) started with ICANS_API_TOKEN set.

    The token lives on the module-level FastAPI app, shared by every instance in the process;
    the plain instance started again afterwards has none.
    """

    @pytest.fixture(scope="class")
    def secured(self, client):
        """The plain service is stopped meanwhile: BentoML keeps ONE current service instance
        per process and clears it when any lifespan ends, so two cannot overlap."""
        from serving.service import app

        client.__exit__(None, None, None)
        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("ICANS_API_TOKEN", TOKEN)
                with TestClient(shared_asgi_app(), raise_server_exceptions=False) as c:
                    assert app.state.api_token == TOKEN
                    yield c
        finally:
            app.state.api_token = None
            client.__enter__()  # a new plain instance: reads the environment without a token

    @pytest.mark.parametrize(
        ("method", "path"),
        [("post", "/v1/risk"), ("post", "/v1/risk/batch"), ("get", "/v1/model")],
    )
    @pytest.mark.parametrize(
        "authorization",
        [None, "Bearer wrong-token", TOKEN, f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer "],
    )
    def test_missing_or_wrong_token_is_401(self, secured, body, method, path, authorization):
        headers = {"Authorization": authorization} if authorization is not None else {}
        payload = {"patients": [body]} if path.endswith("batch") else body
        kwargs = {"json": payload} if method == "post" else {}
        response = getattr(secured, method)(path, headers=headers, **kwargs)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        error = response.json()
        assert error["error"] == "unauthorized"
        assert error["request_id"] and error["message"]
        assert TOKEN not in response.text

    def test_401_comes_before_body_validation(self, secured):
        response = secured.post("/v1/risk", content=b"{not json", headers=JSON)
        assert response.status_code == 401

    def test_right_token_is_accepted(self, secured, body, trained):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        risk = secured.post("/v1/risk", json=body, headers=auth)
        assert risk.status_code == 200, risk.text
        assert risk.json()["model_version"] == trained.model_version
        batch = secured.post("/v1/risk/batch", json={"patients": [body]}, headers=auth)
        assert batch.status_code == 200
        model = secured.get("/v1/model", headers=auth)
        assert model.status_code == 200 and model.json()["alias"] == "champion"

    def test_validation_still_applies_with_the_right_token(self, secured, body):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        errors = invalid(secured.post("/v1/risk", json=fresh(body, age_years=200), headers=auth))
        assert error_for(errors, "age_years")["value"] == 200

    @pytest.mark.parametrize("path", ["/livez", "/readyz"])
    def test_health_endpoints_stay_open(self, secured, path):
        assert secured.get(path).status_code == 200


def test_token_is_cleared_after_the_secured_service(client, body):
    # Guards the ordering assumption above: the plain service is open again.
    assert client.post("/v1/risk", json=body).status_code == 200


def test_a_whole_number_written_with_a_fraction_is_that_integer(client, body):
    """JSON Schema's integers include 3.0; the answer is the one for 3."""
    as_int = client.post("/v1/risk", json=fresh(body, day_since_infusion=3)).json()
    as_float = client.post("/v1/risk", json=fresh(body, day_since_infusion=3.0)).json()
    assert as_float["landmark_day"] == 3
    assert as_float["probability"] == as_int["probability"]  # exact: the same row, same code


# --------------------------------------------------------------------------------------------
# The daily charted series: the scores' age windows and the ICANS grade they imply
# --------------------------------------------------------------------------------------------


def charted(record: dict, age: float, **series: list) -> dict:
    """The request for a patient of ``age``, no ICE or CAPD score unless given."""
    return fresh(
        record, **({"ice_score_by_day": [], "capd_score_by_day": []} | series), age_years=age
    )


def test_a_score_outside_its_age_window_is_refused(client, body):
    """An ICE score for a 9-year-old (ASTCT 2019: ICE from 12 years, CAPD below): 422 naming
    the score, its value, the age and the rule."""
    record = charted(body, 9.0, ice_score_by_day=[{"day": 0, "score": 10}])
    e = error_for(invalid(client.post("/v1/risk", json=record)), "ice_score_by_day[0].score")
    assert e["value"] == 10
    assert "aged 9 years" in e["expected"] and "from 12 years" in e["expected"]
    assert "CAPD score below 12 years" in e["expected"]


def test_an_icans_grade_below_its_ice_score_s_grade_is_refused(client, body):
    """ICE 5 is at least ICANS grade 2 (ASTCT 2019): grade 1 that day is refused."""
    grades = [{"day": d, "grade": int(d == DAY)} for d in range(DAY + 1)]
    record = charted(
        body, 40.0, ice_score_by_day=[{"day": DAY, "score": 5}], icans_grade_by_day=grades
    )
    e = error_for(invalid(client.post("/v1/risk", json=record)), f"icans_grade_by_day[{DAY}].grade")
    assert e["value"] == 1 and "at least 2" in e["expected"] and f"day {DAY}" in e["expected"]


def test_the_daily_series_are_answered(client, body):
    """A request charting every daily series (scores in agreement) is answered; the series
    are no longer missing inputs."""
    days = range(DAY + 1)
    series = {
        "temperature_max_c_by_day": [{"day": d, "value": 38.5} for d in days],
        "crp_mg_per_l_by_day": [{"day": d, "value": 40.0 + d} for d in days],
        "ferritin_ng_per_ml_by_day": [{"day": d, "value": 900.0} for d in days],
        "il6_pg_per_ml_by_day": [{"day": d, "value": 25.0} for d in days],
        "platelets_10e9_per_l_by_day": [{"day": d, "value": 120.0} for d in days],
        "fibrinogen_mg_per_dl_by_day": [{"day": d, "value": 300.0} for d in days],
        "lymphocytes_10e9_per_l_by_day": [{"day": d, "value": 0.4} for d in days],
        "ldh_u_per_l_by_day": [{"day": d, "value": 350.0} for d in days],
        "creatinine_mg_per_dl_by_day": [{"day": d, "value": 0.9} for d in days],
        "icans_grade_by_day": [{"day": d, "grade": 0} for d in days],
    }
    record = charted(body, 40.0, ice_score_by_day=[{"day": d, "score": 10} for d in days])
    r = client.post("/v1/risk", json=fresh(record, **series))
    assert r.status_code == 200, r.text
    missing = set(r.json()["missing_inputs"])
    assert not missing & {*series, "ice_score_by_day"}, missing
