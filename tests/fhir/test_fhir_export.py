"""The FHIR R4 export (docs/fhir.md) checked from outside the project.

scripts/fhir-test.sh runs the demo, exports its clinic's records with
`katctl clinic fhir` (with and without the shared journal) and runs this
file with KATCORE_FHIR_DIR naming the two directories' parent. Every bundle
must parse as FHIR R4 4.0.1 with the `fhir.resources` models (types,
cardinalities, required elements, value sets of required bindings), and
pass the mapping's own checks below (LOINC codes, UCUM units, references
that resolve, the blood-pressure profile's requirements). The last tests
break a correct bundle in the ways a wrong mapping would and require that
those checks notice.
"""

import copy
import glob
import json
import os
import re

import pytest
from fhir.resources import __fhir_version__ as FHIR_VERSION
from fhir.resources.bundle import Bundle
from pydantic import ValidationError

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
BP_PROFILE = "http://hl7.org/fhir/StructureDefinition/bp"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ANSWER_VALUES = {"LA6568-5": 0, "LA6569-3": 1, "LA6570-1": 2, "LA6571-9": 3}
PHQ9_ITEMS = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
GAD7_ITEMS = ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"]
PANELS = {"http://loinc.org/q/44249-1": ("44261-6", PHQ9_ITEMS), "http://loinc.org/q/69737-5": ("70274-6", GAD7_ITEMS)}
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def bundles(variant):
    root = os.environ.get("KATCORE_FHIR_DIR")
    assert root, "KATCORE_FHIR_DIR names the exports (scripts/fhir-test.sh)"
    files = sorted(glob.glob(os.path.join(root, variant, "*.json")))
    assert files, f"no export in {root}/{variant}"
    return [json.load(open(f, encoding="utf-8")) for f in files]


def codes(concept):
    return {(c.get("system"), c.get("code")) for c in (concept or {}).get("coding", [])}


def check(bundle):
    """The mapping's rules; returns what a bundle breaks (empty when none)."""
    errors = []
    entries = bundle.get("entry", [])
    by_url = {}
    for entry in entries:
        url = entry.get("fullUrl", "")
        if not url.startswith("urn:uuid:") or url in by_url:
            errors.append(f"fullUrl missing, not a urn:uuid or repeated: {url}")
        by_url[url] = entry.get("resource", {})
        resource = entry.get("resource", {})
        kind, rid = resource.get("resourceType"), resource.get("id", "")
        if not FHIR_ID.match(rid):
            errors.append(f"{kind} id {rid!r} is not a FHIR id")
        if entry.get("request") != {"method": "PUT", "url": f"{kind}/{rid}"}:
            errors.append(f"{kind}/{rid}: the request must be PUT {kind}/{rid} (stable ids)")

    def resolves(reference):
        return isinstance(reference, dict) and reference.get("reference") in by_url

    def walk(value, path):
        if isinstance(value, dict):
            if "reference" in value and not resolves(value):
                errors.append(f"{path}: reference {value.get('reference')} is not in the bundle")
            for key, inner in value.items():
                walk(inner, f"{path}.{key}")
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                walk(inner, f"{path}[{index}]")

    patients = [r for r in by_url.values() if r.get("resourceType") == "Patient"]
    if len(patients) != 1:
        errors.append(f"{len(patients)} Patient resources, expected 1")
    for resource in by_url.values():
        walk(resource, f"{resource.get('resourceType')}/{resource.get('id')}")
        if resource.get("resourceType") != "Patient" and not resolves(resource.get("subject")):
            errors.append(f"{resource.get('resourceType')}/{resource.get('id')}: no subject in the bundle")

    observations = [r for r in by_url.values() if r.get("resourceType") == "Observation"]
    for bp in (o for o in observations if (LOINC, "85354-9") in codes(o.get("code"))):
        name = f"Observation/{bp['id']}"
        if BP_PROFILE not in bp.get("meta", {}).get("profile", []):
            errors.append(f"{name}: not declared of the blood-pressure profile")
        if not any((CATEGORY, "vital-signs") in codes(c) for c in bp.get("category", [])):
            errors.append(f"{name}: not in the vital-signs category")
        if not bp.get("effectiveDateTime"):
            errors.append(f"{name}: no effective time")
        components = {code: c for c in bp.get("component", []) for (system, code) in codes(c.get("code")) if system == LOINC}
        for code in ("8480-6", "8462-4"):
            quantity = components.get(code, {}).get("valueQuantity")
            if not quantity:
                errors.append(f"{name}: no component {code} with a value")
                continue
            if quantity.get("system") != UCUM or quantity.get("code") != "mm[Hg]":
                errors.append(f"{name}: component {code} is not in UCUM mm[Hg]")
            if not isinstance(quantity.get("value"), (int, float)) or not 20 <= quantity["value"] <= 300:
                errors.append(f"{name}: component {code} has no plausible value")

    responses = {url: r for url, r in by_url.items() if r.get("resourceType") == "QuestionnaireResponse"}
    for url, response in responses.items():
        name = f"QuestionnaireResponse/{response['id']}"
        panel = PANELS.get(response.get("questionnaire"))
        if not panel:
            errors.append(f"{name}: questionnaire {response.get('questionnaire')} is not PHQ-9 or GAD-7 by LOINC")
            continue
        total_code, items = panel
        links = [i.get("linkId") for i in response.get("item", [])]
        if links != items:
            errors.append(f"{name}: items {links} are not the LOINC items in order")
        values = []
        for item in response.get("item", []):
            coding = (item.get("answer") or [{}])[0].get("valueCoding", {})
            if coding.get("system") != LOINC or coding.get("code") not in ANSWER_VALUES:
                errors.append(f"{name}: item {item.get('linkId')} has no LOINC answer")
            values.append(ANSWER_VALUES.get(coding.get("code"), 0))
        derived = [o for o in observations if {"reference": url} in o.get("derivedFrom", [])]
        totals = [o for o in derived if (LOINC, total_code) in codes(o.get("code"))]
        if len(totals) != 1:
            errors.append(f"{name}: {len(totals)} total-score observations ({total_code}) derived from it")
        elif totals[0].get("valueInteger") != sum(values):
            errors.append(f"{name}: total {totals[0].get('valueInteger')} is not the sum {sum(values)}")
        elif not any((CATEGORY, "survey") in codes(c) for c in totals[0].get("category", [])):
            errors.append(f"{name}: the total is not in the survey category")
        if total_code == "44261-6":
            item9 = [o for o in derived if (LOINC, "44260-8") in codes(o.get("code"))]
            answered = {ANSWER_VALUES.get(c.get("code")) for o in item9 for c in o.get("valueCodeableConcept", {}).get("coding", [])}
            if len(item9) != 1 or answered != {values[8] if len(values) == 9 else None}:
                errors.append(f"{name}: PHQ-9 item 9 is not visible on its own (44260-8) with its answer")

    for event in (r for r in by_url.values() if r.get("resourceType") == "AdverseEvent"):
        severity = codes(event.get("severity"))
        if not severity or not {c for _, c in severity} <= {"mild", "moderate", "severe"}:
            errors.append(f"AdverseEvent/{event['id']}: no mild/moderate/severe severity")
    procedures = {url for url, r in by_url.items() if r.get("resourceType") == "Procedure"}
    for decision in (o for o in observations if ("urn:katcore:fhir:code", "readiness-decision") in codes(o.get("code"))):
        if not any(p.get("reference") in procedures for p in decision.get("partOf", [])):
            errors.append(f"Observation/{decision['id']}: a readiness decision that is part of no session")
    return errors


def test_the_validator_is_fhir_r4():
    assert FHIR_VERSION == "4.0.1"


@pytest.mark.parametrize("variant", ["default", "journal"])
def test_every_export_is_valid_fhir_r4(variant):
    for bundle in bundles(variant):
        parsed = Bundle.parse_obj(bundle)
        assert parsed.type == "transaction"
        kinds = {type(e.resource).__name__ for e in parsed.entry}
        assert {"Patient", "Observation", "QuestionnaireResponse", "Procedure", "AdverseEvent", "DocumentReference"} <= kinds


@pytest.mark.parametrize("variant", ["default", "journal"])
def test_every_export_follows_the_mapping(variant):
    for bundle in bundles(variant):
        assert check(bundle) == []


def test_the_journal_is_exported_only_when_asked_for():
    def journal_entries(bundle):
        return [e for e in bundle["entry"] if ("urn:katcore:fhir:code", "shared-journal-entry") in codes(e["resource"].get("type"))]

    assert all(journal_entries(b) == [] for b in bundles("default"))
    assert any(journal_entries(b) for b in bundles("journal"))


def test_the_demo_record_has_every_kind_of_entry():
    bundle = bundles("default")[0]
    all_codes = set().union(*(codes(e["resource"].get("code")) for e in bundle["entry"]))
    for code in ("85354-9", "44261-6", "70274-6", "44260-8"):
        assert (LOINC, code) in all_codes, code


def broken(mutate):
    bundle = copy.deepcopy(bundles("default")[0])
    mutate(bundle)
    return bundle


def first(bundle, predicate):
    return next(e["resource"] for e in bundle["entry"] if predicate(e["resource"]))


def is_bp(resource):
    return (LOINC, "85354-9") in codes(resource.get("code"))


def test_a_wrong_code_is_caught():
    def wrong_code(bundle):
        first(bundle, is_bp)["component"][0]["code"]["coding"][0]["code"] = "8480-7"

    assert any("8480-6" in e for e in check(broken(wrong_code)))


def test_a_missing_unit_is_caught():
    def no_unit(bundle):
        del first(bundle, is_bp)["component"][1]["valueQuantity"]["code"]

    assert any("mm[Hg]" in e for e in check(broken(no_unit)))


def test_a_bad_reference_is_caught():
    def dangling(bundle):
        first(bundle, lambda r: r["resourceType"] == "AdverseEvent")["subject"] = {"reference": "urn:uuid:00000000-0000-5000-8000-000000000000"}

    assert any("not in the bundle" in e for e in check(broken(dangling)))


def test_a_wrong_total_or_hidden_item_9_is_caught():
    def hide_item_9(bundle):
        bundle["entry"] = [e for e in bundle["entry"] if (LOINC, "44260-8") not in codes(e["resource"].get("code"))]

    assert any("item 9" in e for e in check(broken(hide_item_9)))


def test_an_invalid_resource_is_refused_by_the_r4_models():
    def no_status(bundle):
        del first(bundle, is_bp)["status"]

    def text_for_a_number(bundle):
        first(bundle, is_bp)["component"][0]["valueQuantity"]["value"] = "high"

    def unknown_element(bundle):
        first(bundle, lambda r: r["resourceType"] == "Procedure")["performedWhen"] = "2026-12-01"

    for mutate in (no_status, text_for_a_number, unknown_element):
        with pytest.raises(ValidationError):
            Bundle.parse_obj(broken(mutate))
