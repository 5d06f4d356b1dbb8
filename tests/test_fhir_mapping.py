"""FHIR R4 resources -> the contract's patient (``serving.fhir.mapping``), without a model.

The documented example Bundle is checked against values worked out by hand from its resources
(unit conversions, days since infusion, the worst grade of a day, steroid equivalents), and
against the FHIR R4B models of ``fhir.resources``; then each rule of the mapping on its own:
windows in time, units, statuses, the one-patient rule and the errors that name the resource
and element.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir_fixtures import (
    EXAMPLE_AT,
    LOINC,
    OURS,
    ROOT,
    example_bundle,
    observation,
    shifted,
    with_daily,
)

from api.patient import parse_patient
from serving.fhir import codes as fhir_codes
from serving.fhir.mapping import read_bundle
from serving.fhir.reading import FhirInputError, NotApplicable, parse_when

# What the example Bundle says, worked out by hand (docs/fhir-mapping.md, "The example").
EXPECTED = {
    "age_years": 61.46,  # born 1964-09-15, infused 2026-03-02: 22,448 days / 365.25
    "weight_kg": 80.0,
    "dose_cells_per_kg": 2.0e6,  # 1.6e8 CAR+ cells / 80 kg
    "ldh_u_per_l": 410.0,
    "crp_mg_per_l": 45.0,  # 4.5 mg/dL; the day -1 value (9.0 mg/dL) is after lymphodepletion
    "ferritin_ng_per_ml": 850.0,  # ug/L = ng/mL
    "platelets_10e9_per_l": 142.0,  # 10*3/uL = 10*9/L
    "creatinine_mg_per_dl": 97.3 / 88.42,  # umol/L
    "prior_lines": 2,
    "marrow_involvement": False,
    "cns_involvement": False,  # a refuted Condition
    "disease": "LBCL",
    "car_target": "CD19",  # axi-cel
    "costimulatory_domain": "CD28",
    "car_product": "axi-cel",  # coded by product
    "lymphodepletion": "flu_cy",
    "day_since_infusion": 5,
    "crs_grade_by_day": [
        {"day": 1, "grade": 1},
        {"day": 2, "grade": 2},
        {"day": 3, "grade": 2},
        {"day": 4, "grade": 1},
        {"day": 5, "grade": 1},
    ],
    # day 5: grade 0 at 07:30 and 1 at 09:00 -> 1; the grade 2 at 20:00 is after 10:00
    "icans_grade_by_day": [{"day": 3, "grade": 0}, {"day": 4, "grade": 1}, {"day": 5, "grade": 1}],
    "cd4_car_t_cells_per_ul": [{"day": 3, "value": 12.0}, {"day": 5, "value": 48.0}],
    "cd8_car_t_cells_per_ul": [{"day": 3, "value": 30.0}, {"day": 5, "value": 95.0}],
    # day 5: dexamethasone 10 mg + methylprednisolone 40 mg x 0.1875 = 17.5 mg
    "dexamethasone_mg_by_day": [{"day": d, "mg": m} for d, m in enumerate([0, 0, 0, 0, 10, 17.5])],
    "tocilizumab_doses_by_day": [{"day": d, "doses": n} for d, n in enumerate([0, 0, 1, 1, 0, 0])],
    # no anakinra, no intrathecal therapy: the administration record is complete, so 0 a day
    "anakinra_doses_by_day": [{"day": d, "doses": 0} for d in range(6)],
    "intrathecal_doses_by_day": [{"day": d, "doses": 0} for d in range(6)],
}


def mapped(bundle=None, at=EXAMPLE_AT):
    return read_bundle(example_bundle() if bundle is None else bundle, at)


def entry(bundle: dict, rid: str) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["resource"].get("id") == rid)


def without(bundle: dict, *ids: str) -> dict:
    return bundle | {"entry": [e for e in bundle["entry"] if e["resource"]["id"] not in ids]}


def test_the_example_maps_to_the_values_worked_out_by_hand():
    m = mapped()
    assert set(m.data) == set(EXPECTED)
    for name, want in EXPECTED.items():
        if isinstance(want, float):
            assert m.data[name] == pytest.approx(want), name
        else:
            assert m.data[name] == want, name
    assert m.patient_reference == "Patient/example"
    parse_patient(m.data)  # a valid request of the contract


def test_the_example_is_valid_fhir_r4():
    Bundle.model_validate(example_bundle())  # fhir.resources, R4B (R4 + backported fixes)


def test_resources_not_used_are_listed_with_the_reason_and_left_out_of_the_basis():
    m = mapped()
    assert any("Observation/crp-day-1" in w and "baseline window" in w for w in m.warnings)
    assert any(
        "Observation/icans-d5-evening" in w and "after the prediction" in w for w in m.warnings
    )
    assert "Observation/crp-day-1" not in m.basis
    assert "Observation/icans-d5-evening" not in m.basis
    assert {
        "Patient/example",
        "MedicationAdministration/car-t-infusion",
        "Observation/crp",
        "MedicationAdministration/methylprednisolone-d5",
    } <= set(m.basis)


@pytest.mark.parametrize("day", range(0, 6))
def test_a_record_read_at_a_time_equals_the_record_cut_at_that_time(day):
    """No leakage: mapping the whole record at day D 12:00 gives exactly what mapping only the
    resources dated up to then gives."""
    at = datetime.fromisoformat("2026-03-02T12:00:00+01:00") + timedelta(days=day)
    full = with_daily()
    cut = full | {"entry": [e for e in full["entry"] if not _after(e["resource"], at)]}
    a, b = mapped(full, at), mapped(cut, at)
    assert a.data == b.data
    assert a.data["day_since_infusion"] == day
    for name in (
        "crs_grade_by_day",
        "icans_grade_by_day",
        "ice_score_by_day",
        "crp_mg_per_l_by_day",
    ):
        assert all(obs["day"] <= day for obs in a.data.get(name, []))


def _after(resource: dict, at: datetime) -> bool:
    for key in ("effectiveDateTime", "recordedDate"):
        if key in resource:
            return parse_when(resource[key]).after(at)
    return False


@pytest.mark.parametrize(
    ("rid", "quantity", "field", "want"),
    [
        ("ldh", {"value": 6.0, "code": "ukat/L"}, "ldh_u_per_l", 360.0),
        ("ldh", {"value": 250, "code": "[IU]/L"}, "ldh_u_per_l", 250.0),
        ("crp", {"value": 12, "code": "mg/L"}, "crp_mg_per_l", 12.0),
        ("creatinine", {"value": 0.9, "code": "mg/dL"}, "creatinine_mg_per_dl", 0.9),
        ("creatinine", {"value": 176.84, "code": "umol/L"}, "creatinine_mg_per_dl", 2.0),
        ("platelets", {"value": 95, "code": "10*9/L"}, "platelets_10e9_per_l", 95.0),
        ("weight", {"value": 176.3698, "code": "[lb_av]"}, "weight_kg", 80.0),
        ("weight", {"value": 72500, "code": "g"}, "weight_kg", 72.5),
        ("ferritin", {"value": 1200, "unit": "ng/mL"}, "ferritin_ng_per_ml", 1200.0),
    ],
)
def test_units_are_converted_to_the_contract_units(rid, quantity, field, want):
    bundle = example_bundle()
    entry(bundle, rid)["valueQuantity"] = quantity
    assert mapped(bundle).data[field] == pytest.approx(want, rel=1e-4)


def test_an_observation_in_an_unknown_unit_is_listed_and_treated_as_missing():
    bundle = example_bundle()
    entry(bundle, "ldh")["valueQuantity"] = {"value": 4.1, "code": "mmol/L"}
    m = mapped(bundle)
    assert "ldh_u_per_l" not in m.data
    assert any("Observation/ldh" in w and "'mmol/L'" in w for w in m.warnings)
    assert parse_patient(m.data).ldh_u_per_l is None  # missing, never guessed


def test_a_total_dose_needs_the_weight_and_a_per_kg_dose_does_not():
    bundle = without(example_bundle(), "weight")
    with pytest.raises(FhirInputError, match="weight") as err:
        mapped(bundle)
    assert err.value.issues[0].resource == "MedicationAdministration/car-t-infusion"
    entry(bundle, "car-t-infusion")["dosage"]["dose"] = {"value": 1.5, "code": "10*6{cells}/kg"}
    assert mapped(bundle).data["dose_cells_per_kg"] == pytest.approx(1.5e6)


def test_a_product_may_be_coded_by_target_and_domain():
    bundle = example_bundle()
    entry(bundle, "car-t-infusion")["medicationCodeableConcept"] = {
        "coding": [
            {"system": fhir_codes.CAR_TARGET, "code": "CD7"},
            {"system": fhir_codes.COSTIMULATORY_DOMAIN, "code": "4-1BB"},
        ]
    }
    m = mapped(bundle)
    assert (m.data["car_target"], m.data["costimulatory_domain"]) == ("CD7", "4-1BB")
    assert "car_product" not in m.data  # no product code: the product is not given


def test_a_product_the_contract_does_not_name_is_investigational():
    """obe-cel (CD19/4-1BB) is not among the contract's products: its code gives the target and
    domain, and car_product "investigational"."""
    bundle = example_bundle()
    entry(bundle, "car-t-infusion")["medicationCodeableConcept"] = {
        "coding": [{"system": fhir_codes.CAR_T_PRODUCT, "code": "obe-cel"}]
    }
    m = mapped(bundle)
    assert (m.data["car_target"], m.data["costimulatory_domain"]) == ("CD19", "4-1BB")
    assert m.data["car_product"] == "investigational"


def test_two_products_of_one_construct_are_an_error():
    """axi-cel and brexu-cel are both CD19/CD28: the construct agrees, the product does not."""
    bundle = example_bundle()
    entry(bundle, "car-t-infusion")["medicationCodeableConcept"]["coding"].append(
        {"system": fhir_codes.CAR_T_PRODUCT, "code": "brexu-cel"}
    )
    with pytest.raises(FhirInputError, match="all agreeing"):
        mapped(bundle)


def test_codes_that_disagree_about_the_product_are_an_error():
    bundle = example_bundle()
    entry(bundle, "car-t-infusion")["medicationCodeableConcept"]["coding"].append(
        {"system": fhir_codes.CAR_TARGET, "code": "BCMA"}
    )
    with pytest.raises(FhirInputError, match="all agreeing"):
        mapped(bundle)


@pytest.mark.parametrize(
    ("rid", "element", "value", "expression"),
    [
        ("crp", "valueQuantity", {"value": "4.5", "code": "mg/dL"}, "valueQuantity.value"),
        ("crs-d2", "valueInteger", "2", "valueInteger"),
        ("crs-d2", "effectiveDateTime", "2026-03-04T07:00:00", "effectiveDateTime"),
        ("crs-d2", "effectiveDateTime", "2026-03", "effectiveDateTime"),
        ("crs-d2", "subject", {"display": "no reference"}, "subject.reference"),
        ("example", "birthDate", "1964", "birthDate"),
    ],
)
def test_malformed_fhir_is_an_error_naming_the_resource_and_element(
    rid, element, value, expression
):
    bundle = example_bundle()
    entry(bundle, rid)[element] = value
    with pytest.raises(FhirInputError) as err:
        mapped(bundle)
    assert err.value.status == 400
    issue = err.value.issues[0]
    where = next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["id"] == rid)
    assert issue.expression == f"Bundle.entry[{where}].resource.{expression}"
    assert issue.resource.endswith(f"/{rid}")


def test_a_bundle_for_two_patients_is_refused():
    bundle = example_bundle()
    other = copy.deepcopy(entry(bundle, "example")) | {"id": "someone-else"}
    bundle["entry"].append({"resource": other})
    with pytest.raises(FhirInputError, match="exactly one Patient"):
        mapped(bundle)
    bundle = example_bundle()
    entry(bundle, "crp")["subject"] = {"reference": "Patient/someone-else"}
    with pytest.raises(FhirInputError, match="one patient") as err:
        mapped(bundle)
    assert err.value.issues[0].resource == "Observation/crp"


@pytest.mark.parametrize(
    ("bundle", "message"),
    [
        ([], "a FHIR resource"),
        ({"resourceType": "Bundle", "entry": [{"fullUrl": "x"}]}, "entry\\[0\\]"),
        ({"resourceType": "Bundle", "entry": "nope"}, "a list"),
    ],
)
def test_what_is_not_a_bundle_is_an_error(bundle, message):
    with pytest.raises(FhirInputError, match=message):
        mapped(bundle)


def test_outside_days_0_to_27_or_without_an_infusion_there_is_no_estimate():
    with pytest.raises(NotApplicable, match="before the CAR-T infusion"):
        mapped(at=EXAMPLE_AT - timedelta(days=6))
    with pytest.raises(NotApplicable, match="before the CAR-T infusion"):
        mapped(at=datetime.fromisoformat("2026-03-02T09:00:00+01:00"))  # day 0, before 10:30
    with pytest.raises(NotApplicable, match="day 29"):
        mapped(at=EXAMPLE_AT + timedelta(days=24))
    # day 28 ends every horizon (icans.horizons): no day is left to predict
    with pytest.raises(NotApplicable, match=r"day 28 after .* days 0-27"):
        mapped(at=EXAMPLE_AT + timedelta(days=23))
    assert mapped(at=EXAMPLE_AT + timedelta(days=22)).data["day_since_infusion"] == 27
    with pytest.raises(NotApplicable, match="no CAR-T infusion"):
        mapped(without(example_bundle(), "car-t-infusion"))


def test_a_death_is_known_only_from_its_date_on():
    bundle = example_bundle()
    entry(bundle, "example")["deceasedDateTime"] = "2026-03-20T08:00:00+01:00"  # day 18
    assert mapped(bundle).data["day_since_infusion"] == 5  # not known on day 5
    with pytest.raises(NotApplicable, match="died"):
        mapped(bundle, at=EXAMPLE_AT + timedelta(days=14))


def test_a_missing_required_input_names_what_to_record():
    m = mapped(without(example_bundle(), "cns"))
    with pytest.raises(FhirInputError) as err:
        m.to_patient()
    assert err.value.status == 422
    (issue,) = err.value.issues
    assert issue.expression == "cns_involvement"
    assert "urn:icans-risk:condition|cns-involvement" in issue.rule


def test_a_contract_error_names_the_resource_it_came_from():
    bundle = example_bundle()
    entry(bundle, "icans-d4")["valueInteger"] = 3  # severe ICANS: the event has happened
    with pytest.raises(FhirInputError) as err:
        mapped(bundle).to_patient()
    assert err.value.status == 422
    assert [i.resource for i in err.value.issues] == ["Observation/icans-d4"]


def test_statuses_and_verification_decide_what_is_used():
    bundle = example_bundle()
    entry(bundle, "crp")["status"] = "entered-in-error"
    entry(bundle, "cns")["verificationStatus"]["coding"][0]["code"] = "confirmed"
    entry(bundle, "dexamethasone-d4")["status"] = "not-done"
    m = mapped(bundle)
    assert "crp_mg_per_l" not in m.data
    assert m.data["cns_involvement"] is True
    assert m.data["dexamethasone_mg_by_day"][4] == {"day": 4, "mg": 0.0}


def test_the_same_record_a_year_later_maps_to_the_same_patient():
    later = shifted(example_bundle(), 365)
    assert mapped(later, EXAMPLE_AT + timedelta(days=365)).data == mapped().data


def test_the_mapping_document_holds_the_current_code_tables():
    doc = (ROOT / "docs" / "fhir-mapping.md").read_text()
    assert fhir_codes.render_tables() in doc, (
        "docs/fhir-mapping.md is stale: paste serving.fhir.codes.render_tables()"
    )


def test_a_resource_given_twice_counts_once_and_two_contents_for_one_id_are_an_error():
    bundle = example_bundle()
    toci = next(e for e in bundle["entry"] if e["resource"]["id"] == "tocilizumab-d2")
    bundle["entry"].append(copy.deepcopy(toci))  # e.g. in two search pages
    assert mapped(bundle).data["tocilizumab_doses_by_day"][2] == {"day": 2, "doses": 1}
    changed = copy.deepcopy(toci)
    changed["resource"]["effectiveDateTime"] = "2026-03-05T14:00:00+01:00"
    bundle["entry"].append(changed)
    with pytest.raises(FhirInputError, match="one content per resource id"):
        mapped(bundle)


def test_a_corticosteroid_without_a_dose_leaves_that_day_unknown():
    bundle = example_bundle()
    del entry(bundle, "dexamethasone-d4")["dosage"]
    m = mapped(bundle)
    assert [d["day"] for d in m.data["dexamethasone_mg_by_day"]] == [0, 1, 2, 3, 5]
    assert any("dexamethasone-d4" in w and "not known" in w for w in m.warnings)


@pytest.mark.parametrize("system", [["http://loinc.org"], {"url": "http://loinc.org"}, 7, None])
def test_a_coding_whose_system_is_not_text_matches_no_code(system):
    """FHIR's ``Coding.system`` is a uri: a list, an object or a number there names no code
    system, so the Observation is not read as CRP (and nothing fails on an unhashable value);
    the rest of the record maps as before."""
    bundle = example_bundle()
    coding = entry(bundle, "crp")["code"]["coding"][0]
    if system is None:
        del coding["system"]
    else:
        coding["system"] = system
    m, before = mapped(bundle), mapped()
    assert before.data["crp_mg_per_l"] == 45.0
    assert "crp_mg_per_l" not in m.data
    assert "Observation/crp" not in m.basis
    assert {k: v for k, v in m.data.items() if k != "crp_mg_per_l"} == {
        k: v for k, v in before.data.items() if k != "crp_mg_per_l"
    }


# --------------------------------------------------------------------------------------------
# The daily routine series (fhir_fixtures.DAILY added to the example)
# --------------------------------------------------------------------------------------------

# Worked out by hand from fhir_fixtures.DAILY (infusion 2026-03-02 = day 0, assessed day 5 10:00).
EXPECTED_DAILY = {
    # day 2: 101.3 degF = (101.3 - 32) x 5/9 = 38.5 C, 38.2 C, 99.5 degF = 37.5 C -> the highest
    "temperature_max_c_by_day": [{"day": 2, "value": 38.5}, {"day": 4, "value": 37.2}],
    # day 1: 2.1 mg/dL = 21 mg/L; day 3: 8.0 mg/dL at 06:00, 95 mg/L at 18:00 -> the latest
    "crp_mg_per_l_by_day": [{"day": 1, "value": 21.0}, {"day": 3, "value": 95.0}],
    # day 4: 9 and 10 -> 9; day 5: 10 at 07:00, 8 at 09:30 -> 8 (the 3 at 20:00 is after 10:00)
    "ice_score_by_day": [{"day": 4, "score": 9}, {"day": 5, "score": 8}],
    "fibrinogen_mg_per_dl_by_day": [{"day": 2, "value": 310.0}],  # 3.1 g/L
    "creatinine_mg_per_dl_by_day": [{"day": 3, "value": 106.1 / 88.42}],  # umol/L
    "lymphocytes_10e9_per_l_by_day": [{"day": 1, "value": 0.4}],  # /nL = 10^9/L
    "platelets_10e9_per_l_by_day": [{"day": 1, "value": 88.0}],  # 10^3/uL = 10^9/L
    "ferritin_ng_per_ml_by_day": [{"day": 3, "value": 2400.0}],  # ug/L = ng/mL
    "il6_pg_per_ml_by_day": [{"day": 2, "value": 310.0}],  # ng/L = pg/mL
    "ldh_u_per_l_by_day": [{"day": 3, "value": 720.0}],  # 12 ukat/L x 60
}


def test_the_daily_series_map_to_the_values_worked_out_by_hand():
    m = mapped(with_daily())
    assert set(m.data) == set(EXPECTED) | set(EXPECTED_DAILY)
    for name, want in EXPECTED_DAILY.items():
        got = m.data[name]
        assert [o["day"] for o in got] == [o["day"] for o in want], name
        key = next(k for k in want[0] if k != "day")
        assert [o[key] for o in got] == pytest.approx([o[key] for o in want], rel=1e-9), name
    assert {k: v for k, v in m.data.items() if k in EXPECTED} == mapped().data  # unchanged
    patient = m.to_patient()  # a valid request of the contract
    assert [o.score for o in patient.ice_score_by_day] == [9, 8]


def test_one_code_feeds_the_baseline_before_lymphodepletion_and_the_series_after_infusion():
    """CRP 1988-5: day -6 (4.5 mg/dL) is the baseline, day -1 is after lymphodepletion began and
    before the infusion (neither), days 1 and 3 are the series."""
    m = mapped(with_daily())
    assert m.data["crp_mg_per_l"] == 45.0
    assert [o["day"] for o in m.data["crp_mg_per_l_by_day"]] == [1, 3]
    assert any(
        "Observation/crp-day-1" in w and "before the infusion" in w and "not used" in w
        for w in m.warnings
    )
    assert m.sources["crp_mg_per_l"] == "Observation/crp"
    assert m.sources["crp_mg_per_l_by_day[1].value"] == "Observation/crp-d3-evening"
    assert {"Observation/crp", "Observation/crp-d1", "Observation/crp-d3-morning"} <= set(m.basis)
    assert "Observation/crp-day-1" not in m.basis


def test_a_daily_value_after_the_prediction_time_is_left_out_with_a_warning():
    m = mapped(with_daily())
    assert any(
        "Observation/ice-d5-evening" in w and "after the prediction time" in w for w in m.warnings
    )
    assert "Observation/ice-d5-evening" not in m.basis
    # read the next morning, the 20:00 score of 3 is the day's lowest
    later = mapped(with_daily(), at=EXAMPLE_AT + timedelta(hours=12))
    assert later.data["ice_score_by_day"][-1] == {"day": 5, "score": 3}


def test_an_ice_score_for_a_child_is_refused_naming_resource_field_value_and_rule():
    bundle = with_daily()
    entry(bundle, "example")["birthDate"] = "2017-06-01"  # 8.75 years at the infusion
    m = mapped(bundle)
    assert "ice_score_by_day" not in m.data
    with pytest.raises(FhirInputError) as err:
        m.to_patient()
    assert err.value.status == 422
    refused = {i.resource: i for i in err.value.issues}
    # the four ICE scores dated up to the prediction time (the fifth is after it)
    assert set(refused) == {
        "Observation/ice-d4-morning",
        "Observation/ice-d4-evening",
        "Observation/ice-d5-early",
        "Observation/ice-d5-late",
    }
    issue = refused["Observation/ice-d5-late"]
    where = next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["id"] == "ice-d5-late")
    assert issue.expression == f"Bundle.entry[{where}].resource.valueInteger"
    assert issue.value == 8
    assert "ice_score_by_day" in issue.rule and "12 years or older" in issue.rule
    assert "8.75" in issue.rule


def test_a_capd_score_is_read_for_a_child_and_refused_for_an_adult():
    capd = [
        observation("capd-d3-a", (OURS, "capd-score"), "2026-03-05T08:00:00+01:00", 4),
        observation("capd-d3-b", (OURS, "capd-score"), "2026-03-05T20:00:00+01:00", 11),
        observation("capd-d3-c", (OURS, "capd-score"), "2026-03-05T22:00:00+01:00", 6),
    ]
    child = example_bundle()
    child["entry"] += [{"resource": r} for r in capd]
    entry(child, "example")["birthDate"] = "2017-06-01"
    assert mapped(child).data["capd_score_by_day"] == [{"day": 3, "score": 11}]  # the highest
    adult = example_bundle()  # 61 years
    adult["entry"] += [{"resource": r} for r in capd]
    with pytest.raises(FhirInputError) as err:
        mapped(adult).to_patient()
    assert err.value.status == 422
    assert {i.resource for i in err.value.issues} == {f"Observation/{r['id']}" for r in capd}
    assert all("under 12 years" in i.rule for i in err.value.issues)


def test_a_daily_value_out_of_range_after_conversion_is_a_contract_error_naming_the_resource():
    bundle = example_bundle()
    hot = observation("temp-hot", (LOINC, "8310-5"), "2026-03-04T08:00:00+01:00", (115, "[degF]"))
    bundle["entry"].append({"resource": hot})
    m = mapped(bundle)
    assert m.data["temperature_max_c_by_day"][0]["value"] == pytest.approx((115 - 32) * 5 / 9)
    with pytest.raises(FhirInputError) as err:
        m.to_patient()
    assert err.value.status == 422
    (issue,) = err.value.issues
    assert issue.resource == "Observation/temp-hot"
    assert issue.expression == "temperature_max_c_by_day[0].value"
    assert issue.value == pytest.approx(46.111, abs=1e-3)
    assert "45" in issue.rule


def test_a_score_that_is_not_an_integer_is_malformed_fhir():
    bundle = with_daily()
    entry(bundle, "ice-d4-morning")["valueInteger"] = 9.5
    with pytest.raises(FhirInputError) as err:
        mapped(bundle)
    assert err.value.status == 400
    assert err.value.issues[0].resource == "Observation/ice-d4-morning"


# --------------------------------------------------------------------------------------------
# Second-line therapy of ICANS: anakinra (RxNorm 72435) and intrathecal therapy (any drug by
# the intrathecal route, SNOMED CT 72607000)
# --------------------------------------------------------------------------------------------

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"


def administration(rid: str, drug: str, when: str, route: str | None = None, mg=None) -> dict:
    """A completed MedicationAdministration of RxNorm ``drug`` for the example patient."""
    dosage: dict = {}
    if route is not None:
        dosage["route"] = {"coding": [{"system": SNOMED, "code": route}]}
    if mg is not None:
        dosage["dose"] = {"value": mg, "unit": "mg", "system": "http://unitsofmeasure.org"}
    resource = {
        "resourceType": "MedicationAdministration",
        "id": rid,
        "status": "completed",
        "subject": {"reference": "Patient/example"},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": drug}]},
        "effectiveDateTime": when,
    }
    return resource | ({"dosage": dosage} if dosage else {})


def with_resources(*resources: dict, bundle: dict | None = None) -> dict:
    out = copy.deepcopy(bundle or example_bundle())
    out["entry"] += [{"resource": r} for r in resources]
    return out


def test_anakinra_and_intrathecal_therapy_are_counted_per_day():
    """Anakinra twice on day 4 and once on day 5; intrathecal methotrexate on day 3 and
    intrathecal dexamethasone 12 mg on day 5 (counted as intrathecal therapy, not as
    corticosteroid mg: day 5 stays 17.5 mg); an intravenous dexamethasone 20 mg on day 3
    (SNOMED 47625008, intravenous route) is a corticosteroid dose as before. Each count names
    its resources."""
    bundle = with_resources(
        administration("anakinra-d4-am", "72435", "2026-03-06T08:00:00+01:00"),
        administration("anakinra-d4-pm", "72435", "2026-03-06T20:00:00+01:00"),
        administration("anakinra-d5", "72435", "2026-03-07T08:00:00+01:00"),
        administration("it-mtx-d3", "6851", "2026-03-05T11:00:00+01:00", route="72607000"),
        administration("it-dex-d5", "3264", "2026-03-07T09:00:00+01:00", "72607000", mg=12),
        administration("iv-dex-d3", "3264", "2026-03-05T09:00:00+01:00", "47625008", mg=20),
    )
    m = mapped(bundle)
    anakinra = [{"day": d, "doses": n} for d, n in enumerate([0, 0, 0, 0, 2, 1])]
    intrathecal = [{"day": d, "doses": n} for d, n in enumerate([0, 0, 0, 1, 0, 1])]
    mg = [{"day": d, "mg": v} for d, v in enumerate([0, 0, 0, 20.0, 10.0, 17.5])]
    assert m.data["anakinra_doses_by_day"] == anakinra
    assert m.data["intrathecal_doses_by_day"] == intrathecal
    assert m.data["dexamethasone_mg_by_day"] == mg
    assert m.sources["anakinra_doses_by_day[4].doses"] == (
        "MedicationAdministration/anakinra-d4-am, MedicationAdministration/anakinra-d4-pm"
    )
    assert m.sources["intrathecal_doses_by_day[5].doses"] == "MedicationAdministration/it-dex-d5"
    assert "MedicationAdministration/it-mtx-d3" in m.basis


def test_second_line_therapy_after_the_prediction_time_is_left_out():
    bundle = with_resources(
        administration("anakinra-d5-late", "72435", "2026-03-07T20:00:00+01:00"),
        administration("it-d6", "6851", "2026-03-08T09:00:00+01:00", route="72607000"),
    )
    m = mapped(bundle)
    assert m.data["anakinra_doses_by_day"] == EXPECTED["anakinra_doses_by_day"]
    assert m.data["intrathecal_doses_by_day"] == EXPECTED["intrathecal_doses_by_day"]
    for rid in ("anakinra-d5-late", "it-d6"):
        assert any(rid in w and "after the prediction time" in w for w in m.warnings), rid


def test_escalation_after_the_steroid_start_is_refused_naming_the_administration():
    """Dexamethasone 20 mg on day 4 with ICANS grade 1 that day: corticosteroids started for
    ICANS on day 4 (icans.steroids). Anakinra on day 5, after the start, is steroid-refractory
    ICANS, the outcome itself: 422, naming the anakinra administration. The same dose on the
    start day (day 4) counts for nothing, and the patient is mapped and accepted."""
    bundle = example_bundle()
    entry(bundle, "dexamethasone-d4")["dosage"]["dose"]["value"] = 20
    late = mapped(
        with_resources(administration("ana", "72435", "2026-03-07T08:00:00+01:00"), bundle=bundle)
    )
    with pytest.raises(FhirInputError) as err:
        late.to_patient()
    assert err.value.status == 422
    (issue,) = err.value.issues
    assert issue.resource == "MedicationAdministration/ana"
    assert issue.value == 1
    for words in ("steroid-refractory", "started on day 4", "anakinra was given on day 5"):
        assert words in issue.rule, issue.rule
    same_day = with_resources(
        administration("ana", "72435", "2026-03-06T18:00:00+01:00"), bundle=bundle
    )
    assert mapped(same_day).to_patient().anakinra_doses_by_day[4].doses == 1
