"""De-identification for research disclosure: pseudonymous patient and ids, identifiers and
free text removed, dates shifted per patient at their own precision, labelled PSEUDED.

Fixtures are the builders' own resources (variant Observation, report, study, analysis, data
files) for a patient with distinctive identifying values, and a hand-made Task, Provenance
and AuditEvent carrying what those resource types can carry.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fhir_report import full_context
from test_fhir_variant import build, context, parse, snv
from test_policy_labels import FOREIGN, concept_of, core_json

from adapter.errors import PolicyError
from adapter.fhir.identifiers import internal
from adapter.fhir.report import ReportBuilder
from adapter.model import AnalysisContext, PatientRef
from adapter.policy import Request, decide, default_policy, read_consent
from adapter.policy.audit import audit_event as audited
from adapter.policy.audit import provenance as disclosed
from adapter.policy.consent import Reference
from adapter.policy.deidentify import (
    ELEMENT_TYPES,
    LABEL_PSEUDONYMIZED,
    Deidentifier,
    shifted,
)
from adapter.policy.engine import Item
from adapter.validation import Validator

CONSENTS = Path(__file__).resolve().parent / "data" / "consent"
#: a version 8 UUID, the form of every pseudonymous id
UUID8 = "[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
PATIENT = PatientRef(id="pat-7Q")
BY_MRN = PatientRef(identifier_system="http://hospital.example/mrn", identifier_value="MRN-0042")
#: values that identify the patient in the fixtures; none may survive de-identification
IDENTIFYING = (
    "pat-7Q", "MRN-0042", "Jane Doe", "jane_doe", "spec-99", "ORD-5150", "555-0100",
    "192.0.2.10", "1234567893", "T-0001", "Main Street",
)  # fmt: skip
PSEUDED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "PSEUDED",
    "display": "pseudonymized",
}
NPI = "http://hl7.org/fhir/sid/us-npi"
AUTHOR_SIGNATURE = "1.2.840.10065.1.12.1.1"
NARRATIVE = {
    "status": "generated",
    "div": '<div xmlns="http://www.w3.org/1999/xhtml">Jane Doe, MRN-0042</div>',
}


# ---- fixtures --------------------------------------------------------------------------


def patient_context(**changes: Any) -> AnalysisContext:
    """The report context with the distinctive identifying values."""
    base = {
        "patient": PATIENT,
        "input_name": "jane_doe.vcf.gz",
        "specimen_id": "spec-99",
        "order_identifier": ("http://lab.example/orders", "ORD-5150"),
    }
    return full_context(**{**base, **changes})


def report_resources(ctx: AnalysisContext, results: list[dict[str, str]]) -> list[dict[str, Any]]:
    return list(ReportBuilder(ctx).build(results))


def observation(**changes: Any) -> dict[str, Any]:
    """The builders' variant Observation of the patient, with dates at each precision, a
    narrative, a note and a string that looks like a date."""
    obs = build(snv(), context(patient=PATIENT))
    code = {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]}
    added = [
        {"code": code, "valueDateTime": "2024-02"},
        {"code": code, "valuePeriod": {"start": "2024-02-29", "end": "2024-03-01T10:30:00-08:00"}},
        {"code": code, "valueString": "2024"},
    ]
    base = {
        "meta": {**obs["meta"], "lastUpdated": "2024-03-01T12:00:00.123+05:30"},
        "text": NARRATIVE,
        "effectiveDateTime": "2024",
        "note": [{"text": "Jane Doe called from 555-0100", "time": "2024-03-02"}],
        "component": [*obs["component"], *added],
    }
    return {**obs, **base, **changes}


def task() -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": "task-1",
        "text": NARRATIVE,
        "identifier": [{"system": "http://lab.example/tasks", "value": "T-0001"}],
        "extension": [
            {"url": "https://lab.example/received", "valueInstant": "2024-03-01T09:30:00.25Z"},
            {"url": "https://lab.example/label", "valueString": "2024-03-01"},
            {"url": "https://lab.example/contact", "valueHumanName": {"text": "Jane Doe"}},
        ],
        "status": "requested",
        "intent": "proposal",
        "for": {"reference": "Patient/pat-7Q", "display": "Jane Doe"},
        "executionPeriod": {"start": "2024-03", "end": "2025"},
        "authoredOn": "2024-03-01T12:00:00+01:00",
        "note": [{"text": "Jane Doe asks for a call", "time": "2024-03-02"}],
        "input": [
            {
                "type": {"text": "order"},
                "valueIdentifier": {"system": "http://lab.example/orders", "value": "ORD-5150"},
            },
            {
                "type": {"text": "prescriber"},
                "valueReference": {
                    "reference": "Practitioner/dr-1",
                    "identifier": {"system": NPI, "value": "1234567893"},
                    "display": "Dr. Jane Doe",
                },
            },
            {"type": {"text": "home"}, "valueAddress": {"line": ["1 Main Street"]}},
            {"type": {"text": "sample year"}, "valueString": "2024"},
            {"type": {"text": "due"}, "valueDate": "2024-04-01"},
        ],
    }  # fmt: skip


def provenance(target: str) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "id": "prov-1",
        "target": [{"reference": f"urn:uuid:{target}", "type": "Observation"}],
        "recorded": "2024-03-01T12:00:00Z",
        "agent": [{"who": {"reference": "Organization/lab", "display": "Jane Doe's lab"}}],
        "entity": [
            {
                "role": "source",
                "what": {
                    "type": "DocumentReference",
                    "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:T-0001"},
                },
            }
        ],
        "signature": [
            {
                "type": [{"system": "urn:iso-astm:E1762-95:2013", "code": AUTHOR_SIGNATURE}],
                "when": "2024-03-01T12:00:00Z",
                "who": {"reference": "Organization/lab"},
                "data": "c2lnbmVkIGZvciBKYW5lIERvZQ==",
            }
        ],
    }  # fmt: skip


def audit_event() -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "id": "audit-1",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110113"},
        "period": {"start": "2024-03-01T11:59:00Z", "end": "2024-03-01T12:00:00Z"},
        "recorded": "2024-03-01T12:00:00.5+00:00",
        "outcome": "0",
        "outcomeDesc": "permit Patient/pat-7Q: Jane Doe's consent permits",
        "agent": [
            {
                "who": {"reference": "RelatedPerson/mother", "display": "Jane Doe's mother"},
                "altId": "jane_doe",
                "name": "Jane Doe",
                "requestor": True,
                "network": {"address": "192.0.2.10", "type": "2"},
            }
        ],
        "source": {"observer": {"reference": "Device/adapter"}},
        "entity": [
            {
                "what": {"reference": "Patient/pat-7Q"},
                "name": "Jane Doe",
                "query": "cGF0aWVudD1wYXQtN1E=",
                "description": "the consent permits",
            }
        ],
    }


def everything() -> list[dict[str, Any]]:
    obs = observation()
    results = [internal("Observation", obs["id"])]
    return [obs, *report_resources(patient_context(), results), task(), provenance(obs["id"])]


def deidentifier(key: bytes = KEY, patient: PatientRef = PATIENT) -> Deidentifier:
    return Deidentifier(key, patient)


def keys_in(node: Any) -> set[str]:
    """Every JSON key in a tree."""
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in keys_in(v)}
    if isinstance(node, list):
        return {k for v in node for k in keys_in(v)}
    return set()


def day_shifted(value: str, days: int) -> str:
    """A day-precise value moved by ``days``, its time and zone kept: the expectation."""
    return (date.fromisoformat(value[:10]) + timedelta(days=days)).isoformat() + value[10:]


# ---- the patient's pseudonym and shift ---------------------------------------------------


def test_the_pseudonym_is_the_keyed_hash_of_the_patients_reference() -> None:
    digest = hmac.new(KEY, b"Patient/pat-7Q", hashlib.sha256).hexdigest()
    assert deidentifier().pseudonym == f"Patient/{digest}"


def test_the_same_patient_gets_the_same_pseudonym_and_shift_across_resources_and_runs() -> None:
    first, again = deidentifier(), deidentifier()  # two runs with the same key
    assert (first.pseudonym, first.offset) == (again.pseudonym, again.offset)
    assert 1 <= abs(first.offset) <= 365
    obs, task_ = observation(), task()
    found = [first.deidentified(obs), again.deidentified(task_)]
    assert found[0]["subject"] == {"reference": first.pseudonym}
    assert found[1]["for"] == {"reference": first.pseudonym}
    assert found[0]["issued"] == day_shifted(obs["issued"], first.offset)
    assert found[1]["authoredOn"] == day_shifted(task_["authoredOn"], first.offset)


def test_a_different_key_gives_a_different_pseudonym_and_ids() -> None:
    obs = observation()
    ours, theirs = deidentifier(), deidentifier(OTHER_KEY)
    assert ours.pseudonym != theirs.pseudonym
    assert ours.deidentified(obs)["id"] != theirs.deidentified(obs)["id"]


def test_a_patient_known_by_identifier_gets_the_hash_of_the_conditional_reference() -> None:
    obs = build(snv(), context(patient=BY_MRN))
    assert obs["subject"]["identifier"]["value"] == "MRN-0042"
    deid = deidentifier(patient=BY_MRN)
    reference = b"Patient?identifier=http://hospital.example/mrn|MRN-0042"
    digest = hmac.new(KEY, reference, hashlib.sha256).hexdigest()
    found = deid.deidentified(obs)
    assert found["subject"] == {"reference": f"Patient/{digest}", "type": "Patient"}
    assert "MRN-0042" not in json.dumps(found)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=64))
def test_every_offset_is_one_to_365_days_either_way(patient_id: str) -> None:
    assert 1 <= abs(deidentifier(patient=PatientRef(id=patient_id)).offset) <= 365


# ---- what is removed -------------------------------------------------------------------


def test_identifiers_are_removed_wherever_they_are_nested() -> None:
    deid = deidentifier()
    for resource in everything():
        found = deid.deidentified(resource)
        assert not keys_in(found) & {"identifier", "masterIdentifier", "valueIdentifier"}
    prov = deid.deidentified(provenance("x"))
    assert prov["entity"][0]["what"] == {"type": "DocumentReference"}
    inputs = deid.deidentified(task())["input"]
    assert [i["type"]["text"] for i in inputs] == ["prescriber", "sample year", "due"]


def test_narratives_notes_names_and_signatures_are_removed() -> None:
    deid = deidentifier()
    obs, task_ = deid.deidentified(observation()), deid.deidentified(task())
    assert not {"text", "note"} & (set(obs) | set(task_))
    assert [e["url"] for e in task_["extension"]] == [
        "https://lab.example/received",
        "https://lab.example/label",
    ]
    assert "signature" not in deid.deidentified(provenance("x"))
    prescriber = task_["input"][0]["valueReference"]
    assert set(prescriber) == {"reference"}


def test_audit_event_names_alternative_ids_addresses_and_queries_are_withheld() -> None:
    found = deidentifier().deidentified(audit_event())
    assert "outcomeDesc" not in found
    agent, entity = found["agent"][0], found["entity"][0]
    assert set(agent) == {"who", "requestor", "network"}
    assert agent["network"] == {"type": "2"}
    assert set(entity) == {"what", "description"}
    assert entity["what"] == {"reference": deidentifier().pseudonym}


@pytest.mark.parametrize("files", [True, False], ids=["data-files", "vcf-named"])
def test_no_identifying_value_survives(files: bool) -> None:
    deid = deidentifier()
    obs = observation()
    ctx = patient_context(include_document_reference=files)
    inputs = [obs, *report_resources(ctx, [internal("Observation", obs["id"])])]
    inputs += [task(), provenance(obs["id"]), audit_event()]
    text = json.dumps([deid.deidentified(r) for r in inputs])
    assert "jane_doe" in json.dumps(inputs)
    assert [v for v in IDENTIFYING if v in text] == []
    assert [r["id"] for r in inputs if r["id"] in text] == []


def test_attachments_keep_only_what_does_not_show_their_content() -> None:
    files = report_resources(patient_context(), [])[:3]
    assert files[0]["content"][0]["attachment"]["title"] == "jane_doe.vcf.gz"
    for doc in files:
        attachment = deidentifier().deidentified(doc)["content"][0]["attachment"]
        assert set(attachment) == {"contentType", "size"}


def test_the_audit_trail_of_a_disclosure_is_de_identified() -> None:
    """The AuditEvent and Provenance adapter.policy.audit makes of a real decision."""
    ctx = patient_context(patient=PatientRef(id="pat-1001"))
    consent = read_consent(CONSENTS / "r4_treatment_opt_in.json", patient=ctx.patient)
    at = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    request = Request("TREAT", at, actor=Reference("Practitioner/dr-1"))
    decision = decide(Item(), request, [consent], default_policy())
    result = internal("Observation", observation()["id"])
    trail = [audited(decision, request, result, ctx), disclosed([result], decision, request, ctx)]
    assert trail[1] is not None
    deid = deidentifier(patient=ctx.patient)
    found = [deid.deidentified(r) for r in trail if r is not None]
    originals = ["pat-1001", "dr-1", "treatment-opt-in", result["reference"].removeprefix("urn:")]
    assert all(o in json.dumps(trail) for o in originals)
    assert [o for o in originals if o in json.dumps(found)] == []
    consent_ref = found[1]["policy"][0]
    assert re.fullmatch(f"Consent/{UUID8}", consent_ref)
    assert consent_ref in [e["what"].get("reference") for e in found[0]["entity"]]
    for resource in found:
        parse(resource)


@pytest.mark.parametrize("files", [True, False], ids=["data-files", "vcf-named"])
def test_the_builders_resources_still_meet_their_profiles(
    files: bool, validator: Validator
) -> None:
    deid = deidentifier()
    obs = observation()
    ctx = patient_context(include_document_reference=files)
    for resource in [obs, *report_resources(ctx, [internal("Observation", obs["id"])])]:
        found = deid.deidentified(resource)
        assert found["meta"]["profile"] == resource["meta"]["profile"]
        assert [i for i in validator.validate(found) if i.severity == "error"] == []


# ---- references --------------------------------------------------------------------------


def test_links_between_the_disclosed_resources_still_resolve() -> None:
    deid = deidentifier()
    inputs = everything()
    found = [deid.deidentified(r) for r in inputs]
    ids = {f"urn:uuid:{r['id']}" for r in found}
    links = {ref for r in found for ref in re.findall(r'"(urn:uuid:[^"]+)"', json.dumps(r))}
    # the report, its study, analysis and three data files, and the Observation
    assert len(links) == 7 and links <= ids
    assert {r["id"] for r in found}.isdisjoint(r["id"] for r in inputs)


def test_literal_references_keep_their_type_and_lose_base_and_version() -> None:
    obs = observation(
        performer=[{"reference": "https://lab.example/fhir/Organization/lab/_history/3"}]
    )
    found = deidentifier().deidentified(obs)["performer"][0]["reference"]
    assert re.fullmatch(f"Organization/{UUID8}", found)


def test_a_reference_to_another_patient_is_refused() -> None:
    obs = observation(subject={"reference": "Patient/someone-else"})
    with pytest.raises(PolicyError) as raised:
        deidentifier().deidentified(obs)
    assert raised.value.field == "Observation.subject.reference"
    assert "someone-else" in raised.value.message


def test_an_unknown_resource_type_and_a_short_key_are_refused() -> None:
    with pytest.raises(PolicyError, match="cannot de-identify a Patient"):
        deidentifier().deidentified({"resourceType": "Patient", "id": "pat-7Q"})
    with pytest.raises(PolicyError) as raised:
        Deidentifier(b"short", PATIENT)
    assert raised.value.field == "key"


# ---- dates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("2024", 182, "2024"),
        ("2024", 183, "2025"),
        ("2024", -183, "2023"),
        ("2024-01", 15, "2024-01"),
        ("2024-01", 16, "2024-02"),
        ("2024-12", 20, "2025-01"),
        ("2024-01", -365, "2023-01"),
        ("2024-02-28", 1, "2024-02-29"),
        ("2023-02-28", 1, "2023-03-01"),
        ("2024-12-31T23:59:59.999+14:00", 1, "2025-01-01T23:59:59.999+14:00"),
        ("2024-03-01T00:00:00Z", -1, "2024-02-29T00:00:00Z"),
    ],
)
def test_a_shift_keeps_the_precision(value: str, days: int, expected: str) -> None:
    assert shifted(value, days) == expected


def test_every_date_element_is_shifted_at_its_precision() -> None:
    deid = deidentifier()
    days = deid.offset
    obs = observation()
    found = deid.deidentified(obs)
    assert found["effectiveDateTime"] == shifted("2024", days)
    assert re.fullmatch(r"\d{4}", found["effectiveDateTime"])
    month, period, text = found["component"][-3:]
    assert month["valueDateTime"] == shifted("2024-02", days)
    assert re.fullmatch(r"\d{4}-\d{2}", month["valueDateTime"])
    assert period["valuePeriod"] == {
        "start": day_shifted("2024-02-29", days),
        "end": day_shifted("2024-03-01T10:30:00-08:00", days),
    }
    assert found["meta"]["lastUpdated"] == day_shifted("2024-03-01T12:00:00.123+05:30", days)
    assert found["issued"] == day_shifted(obs["issued"], days)
    assert text == obs["component"][-1]


def test_strings_that_look_like_dates_are_untouched() -> None:
    deid = deidentifier()
    obs = deid.deidentified(observation(valueString="2024-03-01"))
    assert obs["valueString"] == "2024-03-01"
    assert obs["component"][-1]["valueString"] == "2024"
    task_ = deid.deidentified(task())
    assert task_["extension"][1]["valueString"] == "2024-03-01"
    assert task_["input"][1]["valueString"] == "2024"
    assert task_["input"][2]["valueDate"] == day_shifted("2024-04-01", deid.offset)
    assert task_["extension"][0]["valueInstant"] == day_shifted(
        "2024-03-01T09:30:00.25Z", deid.offset
    )


def test_a_primitives_extension_is_walked_and_its_dates_shifted() -> None:
    ext = {"extension": [{"url": "https://lab.example/seen", "valueDate": "2024-03-01"}]}
    found = deidentifier().deidentified(observation(_effectiveDateTime=ext))
    value = found["_effectiveDateTime"]["extension"][0]["valueDate"]
    assert value == day_shifted("2024-03-01", deidentifier().offset)


@pytest.mark.parametrize("value", ["2024-02-30", "2024-13", "0000", "24", "the calendar's edge"])
def test_a_date_that_cannot_be_shifted_is_refused_with_its_place(value: str) -> None:
    if value == "the calendar's edge":  # where the patient's shift leaves years 0001-9999
        value = "0001-01-01T00:00:00Z" if deidentifier().offset < 0 else "9999-12-31T23:00:00Z"
    with pytest.raises(PolicyError) as raised:
        deidentifier().deidentified(observation(component=[], issued=value))
    assert raised.value.field == "Observation.issued"
    assert value in raised.value.message


def test_a_contained_resource_is_de_identified_and_keeps_its_local_id() -> None:
    contained = {**task(), "id": "t1"}
    obs = observation(contained=[contained], focus=[{"reference": "#t1"}])
    found = deidentifier().deidentified(obs)
    assert found["focus"] == [{"reference": "#t1"}]
    assert found["contained"][0]["id"] == "t1"
    assert found["contained"][0]["for"] == {"reference": deidentifier().pseudonym}
    assert "identifier" not in found["contained"][0]
    with pytest.raises(PolicyError) as raised:
        deidentifier().deidentified(observation(contained=[{"resourceType": "Patient"}]))
    assert raised.value.field == "Observation.contained[0].resourceType"


@st.composite
def fhir_dates(draw: st.DrawFn) -> str:
    """A date, dateTime or instant at any precision, zone and fraction."""
    day = draw(st.dates(min_value=date(2, 1, 1), max_value=date(9998, 12, 31)))
    precision = draw(st.sampled_from(["year", "month", "day", "time"]))
    if precision == "year":
        return f"{day.year:04d}"
    if precision == "month":
        return f"{day.year:04d}-{day.month:02d}"
    if precision == "day":
        return day.isoformat()
    time = draw(st.times()).strftime("%H:%M:%S")
    fraction = draw(st.sampled_from(["", ".5", ".123", ".000001"]))
    zone = draw(st.sampled_from(["Z", "+00:00", "+05:30", "-08:00", "+14:00"]))
    return f"{day.isoformat()}T{time}{fraction}{zone}"


@given(fhir_dates(), st.integers(min_value=-365, max_value=365))
def test_shifting_back_by_the_opposite_gives_the_original(value: str, days: int) -> None:
    there = shifted(value, days)
    assert len(there) == len(value) and there[10:] == value[10:]
    assert shifted(there, -days) == value


# ---- output ------------------------------------------------------------------------------


def test_the_input_is_not_changed() -> None:
    deid = deidentifier()
    for resource in [*everything(), audit_event()]:
        before = copy.deepcopy(resource)
        found = deid.deidentified(resource)
        assert resource == before
        found["meta"]["security"].append({"code": "x"})
        assert resource == before


def test_the_label_is_added_and_earlier_labels_kept() -> None:
    obs = observation(meta={"security": [FOREIGN]})
    found = deidentifier().deidentified(obs)
    assert found["meta"]["security"] == [FOREIGN, PSEUDED]
    assert deidentifier().deidentified(audit_event())["meta"] == {"security": [PSEUDED]}


def test_every_output_is_a_valid_r4_resource() -> None:
    deid = deidentifier()
    for resource in [*everything(), audit_event()]:
        parse(deid.deidentified(resource))


def test_pseudonymized_is_a_security_integrity_label_of_the_r4_core_package() -> None:
    system, concept, above = concept_of("CodeSystem-v3-ObservationValue.json", "PSEUDED")
    label = LABEL_PSEUDONYMIZED
    assert (system, concept["display"]) == (label.system, label.display)
    assert "_SECINTOBV" in above  # v3-SecurityIntegrityObservationValue, in security-labels
    assert "Custodian may retain a key to relink data" in concept["definition"]


# ---- the element table, against the R4 StructureDefinitions ------------------------------

#: the types the de-identifier rewrites or removes: the table stops at them
STOP = frozenset(
    {"date", "dateTime", "instant", "Reference", "Identifier", "Narrative", "Annotation"}
    | {"HumanName", "Address", "ContactPoint", "Signature"}
)
ROOTS = ("Observation", "DiagnosticReport", "Procedure", "DocumentReference", "Task")
ROOTS += ("Provenance", "AuditEvent", "Extension")
GENERIC = frozenset({"id", "extension", "modifierExtension", "contained"})


@cache
def children(owner: str) -> dict[str, tuple[str, ...]]:
    """The R4 elements of a type or backbone element, by name, with their types."""
    definition = core_json(f"StructureDefinition-{owner.split('.', maxsplit=1)[0]}.json")
    found = {}
    for element in definition["snapshot"]["element"]:
        parent, _, name = element["path"].rpartition(".")
        if parent != owner or name in GENERIC:
            continue
        if "contentReference" in element:
            found[name] = (element["contentReference"].removeprefix("#"),)
            continue
        backbone = ("BackboneElement", "Element")
        types = [element["path"] if t["code"] in backbone else t["code"] for t in element["type"]]
        found[name] = tuple(types)
    return found


def reaches(kind: str, seen: frozenset[str] = frozenset()) -> bool:
    """Whether ``kind`` is, or holds at some depth, a type the de-identifier acts on."""
    if kind in STOP:
        return True
    if kind in seen or not kind[0].isupper():  # a primitive, or a FHIRPath system type
        return False
    return any(reaches(t, seen | {kind}) for types in children(kind).values() for t in types)


def derived() -> dict[str, dict[str, frozenset[str]]]:
    """The table, from the StructureDefinitions: from each root, the elements on the way."""
    found: dict[str, dict[str, frozenset[str]]] = {}
    todo = list(ROOTS)
    while todo:
        owner = todo.pop()
        if owner in found or owner in STOP:
            continue
        kept = {n: frozenset(t for t in ts if reaches(t)) for n, ts in children(owner).items()}
        found[owner] = {n: ts for n, ts in kept.items() if ts}
        todo += [t for ts in found[owner].values() for t in ts]
    return found


def test_the_element_table_is_what_the_r4_structure_definitions_give() -> None:
    table = {
        owner: {name: frozenset(types.split("|")) for name, types in elements.items()}
        for owner, elements in ELEMENT_TYPES.items()
    }
    assert table == derived()
