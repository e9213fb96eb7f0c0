"""The audit trail of disclosure decisions, made by the real engine at a frozen instant: the
AuditEvent of each decision (IHE BALP AuthZconsent, checked against BALP's rules as its FSH
states them), the Provenance of each disclosure, break-glass marking, and replay-stable ids."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.provenance import Provenance

from adapter.model import AnalysisContext, GenomeBuild, PatientRef
from adapter.policy import Decision, Item, Request, consent_from_dict, decide, default_policy
from adapter.policy.audit import audit_event, provenance
from adapter.policy.consent import Reference, read_consent
from adapter.policy.engine import SECONDARY_FINDINGS
from adapter.policy.secondary import Category
from adapter.validation import Validator

DATA = Path(__file__).resolve().parent / "data" / "consent"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RECORDED = "2026-11-22T12:00:00+00:00"
POLICY = default_policy()
CTX = AnalysisContext(PatientRef(id="pat-1001"), GenomeBuild.GRCH38, "S1", report_key="report-1")
DOCTOR = Reference("Practitioner/dr-1")
PRIMARY = Item()
BRCA1 = Item(secondary=Category.CANCER, adult_onset=True)
VARIANT = {"reference": "urn:uuid:5b7e4c1a-0d2f-5a3e-9c61-2f4d8e1b7a90", "type": "Observation"}
OTHER = {"reference": "urn:uuid:0c9d3f6e-41b8-5e27-8a05-c3e7d2f19b64", "type": "Observation"}

# verified against the BALP FSH (IHE/ITI.BasicAudit input/fsh/AuthZ.fsh) and R4 core 4.0.1
BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.AuthZconsent"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
CLIENT = (DCM, "110150")
USER = ("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP")
USER_ORG = ("http://terminology.hl7.org/CodeSystem/v3-RoleClass", "PROV")
AUTHORIZER = ("http://terminology.hl7.org/CodeSystem/extra-security-role-type", "authserver")
PATIENT_ENTITY = ("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1")
CONSENT_ENTITY = ("http://hl7.org/fhir/resource-types", "Consent")
ADAPTER = {"type": "Device", "display": "fhir-genomics-adapter"}
UNKNOWN = {"extension": [{"url": ABSENT, "valueCode": "unknown"}]}

TREATMENT = read_consent(DATA / "r4_treatment_opt_in.json", patient=CTX.patient)


def _sf_consent(rid: str, kind: str) -> Any:
    """An R4 Consent of pat-1001: a base permit, and a nested provision on secondary findings."""
    code = {"coding": [{"system": SECONDARY_FINDINGS.system, "code": SECONDARY_FINDINGS.code}]}
    return consent_from_dict(
        {
            "resourceType": "Consent",
            "id": rid,
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "treatment",
                    }
                ]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/pat-1001"},
            "dateTime": "2025-01-10T09:00:00Z",
            "provision": {"type": "permit", "provision": [{"type": kind, "code": [code]}]},
        }
    )


SF_OPT_IN = _sf_consent("sf-opt-in", "permit")
SF_OPT_OUT = _sf_consent("sf-opt-out", "deny")


def treat(**changes: Any) -> Request:
    return replace(Request("TREAT", NOW, date(1980, 3, 1), DOCTOR), **changes)


def agent(event: dict[str, Any], kind: tuple[str, str]) -> dict[str, Any]:
    """The one agent of BALP's slice ``kind`` (its type's system and code)."""
    found = [a for a in event["agent"] if _codes(a["type"]["coding"]) == [kind]]
    assert len(found) == 1, f"{kind}: {len(found)} agents"
    return found[0]


def entities(event: dict[str, Any], kind: tuple[str, str]) -> list[dict[str, Any]]:
    return [e for e in event["entity"] if (e["type"]["system"], e["type"]["code"]) == kind]


def purposes(concepts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [c for concept in concepts for c in _codes(concept["coding"])]


def _codes(codings: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in codings]


def balp_violations(event: dict[str, Any]) -> list[str]:
    """What of IHE.BasicAudit.AuthZconsent's rules (AuthZ.fsh) the event breaks."""
    found = []
    if (event["type"]["system"], event["type"]["code"]) != (DCM, "110113"):
        found.append("type is not DCM#110113")
    if [(s["system"], s["code"]) for s in event["subtype"]] != [
        ("https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType", "AuthZ-Consent")
    ]:
        found.append("subtype is not AuthZ-Consent")
    if event.get("action") != "E" or "outcome" not in event:
        found.append("action E and an outcome are required")
    slices = {CLIENT: False, USER: True, USER_ORG: False, AUTHORIZER: False}
    for kind, requestor in slices.items():
        one = agent(event, kind)
        if "who" not in one or one["requestor"] is not requestor:
            found.append(f"agent {kind[1]}: who 1..1, requestor {requestor}")
    if "network" not in agent(event, CLIENT):
        found.append("agent[client].network 1..1")
    if agent(event, AUTHORIZER)["who"] != event["source"]["observer"]:
        found.append("val-audit-source: the authorizer is not the source's observer")
    patients, consents = entities(event, PATIENT_ENTITY), entities(event, CONSENT_ENTITY)
    if len(patients) != 1 or not patients[0]["what"].get("reference", "").startswith("Patient/"):
        found.append("entity[patient] 1..1, a Reference(Patient)")
    if not consents or any("what" not in c for c in consents):
        found.append("entity[consent] 1..*, each with what")
    if len(patients) + len(consents) != len(event["entity"]):
        found.append("entity slicing is closed: patient, consent, token")
    return found


# ---- the AuditEvent ----------------------------------------------------------------------


def test_a_permit_by_a_consent_is_audited_field_by_field() -> None:
    decision = decide(PRIMARY, treat(), [TREATMENT], POLICY)
    event = audit_event(decision, treat(), VARIANT, CTX)

    assert event["resourceType"] == "AuditEvent"
    assert event["meta"] == {"profile": [BALP]}
    assert event["recorded"] == RECORDED
    assert event["outcome"] == "0"
    assert event["outcomeDesc"] == (
        f"permit Observation {VARIANT['reference']}: consent: the consent's base decision permits"
    )
    assert purposes(event["purposeOfEvent"]) == [(ACT_REASON, "TREAT")]
    user = agent(event, USER)
    assert user["who"] == {"reference": "Practitioner/dr-1"}
    assert purposes(user["purposeOfUse"]) == [(ACT_REASON, "TREAT")]
    assert agent(event, AUTHORIZER)["who"] == ADAPTER == event["source"]["observer"]
    assert agent(event, CLIENT)["who"] == agent(event, CLIENT)["network"] == UNKNOWN
    assert agent(event, USER_ORG)["who"] == UNKNOWN
    (patient,) = entities(event, PATIENT_ENTITY)
    assert patient["what"] == {"reference": "Patient/pat-1001"}
    assert (patient["role"]["system"], patient["role"]["code"]) == (
        "http://terminology.hl7.org/CodeSystem/object-role",
        "1",
    )
    (consent,) = entities(event, CONSENT_ENTITY)
    assert consent["what"] == {"reference": "Consent/treatment-opt-in"}
    assert consent["detail"] == [{"type": "provision", "valueString": "provision"}]
    assert consent["description"] == "the consent's base decision permits"
    assert balp_violations(event) == []


def test_the_consent_that_decided_is_named_with_its_provision() -> None:
    """Of two Consents in force, the one whose provision decided is the entity."""
    decision = decide(BRCA1, treat(), [TREATMENT, SF_OPT_IN], POLICY)
    assert decision.permitted
    event = audit_event(decision, treat(), VARIANT, CTX)
    (consent,) = entities(event, CONSENT_ENTITY)
    assert consent["what"] == {"reference": "Consent/sf-opt-in"}
    assert consent["detail"] == [{"type": "provision", "valueString": "provision.provision[0]"}]
    assert event["outcomeDesc"].endswith(
        "consent: the consent's provision permits; secondary-finding: permitted"
    )
    assert balp_violations(event) == []


def test_a_deny_by_a_consent_is_a_failure() -> None:
    decision = decide(BRCA1, treat(), [SF_OPT_OUT], POLICY)
    event = audit_event(decision, treat(), VARIANT, CTX)
    assert event["outcome"] == "8"
    (reason,) = decision.reasons
    assert reason.text == "the consent's provision denies"
    assert (
        event["outcomeDesc"] == f"deny Observation {VARIANT['reference']}: consent: {reason.text}"
    )
    (consent,) = entities(event, CONSENT_ENTITY)
    assert consent["what"] == {"reference": "Consent/sf-opt-out"}
    assert consent["detail"] == [{"type": "provision", "valueString": "provision.provision[0]"}]
    assert balp_violations(event) == []


def test_a_decision_without_a_consent_claims_no_balp_profile() -> None:
    """BALP requires the Consent that decided; the policy's own refusal has none."""
    marketing = treat(purpose="HMARKT")
    decision = decide(PRIMARY, marketing, [TREATMENT], POLICY)
    event = audit_event(decision, marketing, VARIANT, CTX)
    assert "meta" not in event
    assert event["outcome"] == "8"
    assert entities(event, CONSENT_ENTITY) == []
    assert "policy.never: nothing is disclosed for HMARKT" in event["outcomeDesc"]
    assert balp_violations(event) == ["entity[consent] 1..*, each with what"]


def test_an_unnamed_requester_is_unknown_and_a_patient_may_be_named_by_identifier() -> None:
    anonymous = treat(actor=None)
    by_mrn = replace(CTX, patient=PatientRef(None, "https://lab.example.org/mrn", "M-1001"))
    event = audit_event(decide(PRIMARY, anonymous, [], POLICY), anonymous, VARIANT, by_mrn)
    assert agent(event, USER)["who"] == UNKNOWN
    (patient,) = entities(event, PATIENT_ENTITY)
    assert patient["what"] == {
        "type": "Patient",
        "identifier": {"system": "https://lab.example.org/mrn", "value": "M-1001"},
    }


# ---- break-glass -------------------------------------------------------------------------


def test_break_glass_is_marked_on_the_event_and_the_provenance() -> None:
    emergency = treat(purpose="ETREAT", break_glass=True)
    decision = decide(PRIMARY, emergency, [TREATMENT], POLICY)
    assert decision.permitted
    marked = [(ACT_REASON, "ETREAT"), (ACT_REASON, "BTG")]
    event = audit_event(decision, emergency, VARIANT, CTX)
    assert purposes(event["purposeOfEvent"]) == marked
    assert purposes(agent(event, USER)["purposeOfUse"]) == marked
    record = provenance([VARIANT], decision, emergency, CTX)
    assert record is not None and purposes(record["reason"]) == marked


def test_a_break_glass_deny_is_audited_and_marked() -> None:
    emergency = treat(purpose="ETREAT", break_glass=True)
    decision = decide(BRCA1, emergency, [SF_OPT_IN], POLICY)
    event = audit_event(decision, emergency, VARIANT, CTX)
    assert event["outcome"] == "8"
    assert (ACT_REASON, "BTG") in purposes(event["purposeOfEvent"])
    assert "break-glass: break-glass access never discloses" in event["outcomeDesc"]
    assert provenance([VARIANT], decision, emergency, CTX) is None


def test_without_break_glass_there_is_no_btg() -> None:
    event = audit_event(decide(PRIMARY, treat(), [], POLICY), treat(), VARIANT, CTX)
    assert (ACT_REASON, "BTG") not in purposes(event["purposeOfEvent"])


# ---- the Provenance ----------------------------------------------------------------------


def test_a_disclosure_has_a_provenance_field_by_field() -> None:
    decision = decide(BRCA1, treat(), [TREATMENT, SF_OPT_IN], POLICY)
    record = provenance([VARIANT, OTHER], decision, treat(), CTX)
    assert record is not None
    assert record["resourceType"] == "Provenance"
    assert record["target"] == [VARIANT, OTHER]
    assert record["recorded"] == RECORDED
    assert record["policy"] == ["Consent/sf-opt-in"]
    assert purposes(record["reason"]) == [(ACT_REASON, "TREAT")]
    assert _codes(record["activity"]["coding"]) == [
        ("http://terminology.hl7.org/CodeSystem/consentaction", "disclose")
    ]
    performer, recipient = record["agent"]
    assert _codes(performer["type"]["coding"]) == [
        ("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "performer")
    ]
    assert performer["who"] == ADAPTER
    assert _codes(recipient["type"]["coding"]) == [USER]
    assert recipient["who"] == {"reference": "Practitioner/dr-1"}
    assert "entity" not in record


def test_a_permit_without_a_consent_or_a_requester_has_no_policy_and_one_agent() -> None:
    anonymous = treat(actor=None)
    decision = decide(PRIMARY, anonymous, [], POLICY)
    record = provenance([VARIANT], decision, anonymous, CTX)
    assert record is not None
    assert "policy" not in record
    assert [a["who"] for a in record["agent"]] == [ADAPTER]


@pytest.mark.parametrize(
    ("item", "request_", "consents"),
    [
        (BRCA1, treat(), [SF_OPT_OUT]),  # a Consent denies
        (PRIMARY, treat(purpose="HMARKT"), [TREATMENT]),  # the policy never permits
        (BRCA1, treat(), []),  # no Consent in force
    ],
    ids=["consent-deny", "policy-never", "no-consent"],
)
def test_a_deny_has_an_audit_event_and_no_provenance(
    item: Item, request_: Request, consents: list[Any]
) -> None:
    decision = decide(item, request_, consents, POLICY)
    assert not decision.permitted
    assert audit_event(decision, request_, VARIANT, CTX)["outcome"] == "8"
    assert provenance([VARIANT], decision, request_, CTX) is None


def test_nothing_disclosed_has_no_provenance() -> None:
    assert provenance([], decide(PRIMARY, treat(), [], POLICY), treat(), CTX) is None


# ---- ids ---------------------------------------------------------------------------------


def test_a_replayed_decision_has_the_same_ids() -> None:
    first, again = (decide(BRCA1, treat(), [TREATMENT, SF_OPT_IN], POLICY) for _ in range(2))
    assert audit_event(first, treat(), VARIANT, CTX) == audit_event(again, treat(), VARIANT, CTX)
    assert provenance([VARIANT], first, treat(), CTX) == provenance([VARIANT], again, treat(), CTX)


def test_ids_differ_between_decisions() -> None:
    permit = decide(PRIMARY, treat(), [TREATMENT], POLICY)
    deny = decide(BRCA1, treat(), [SF_OPT_OUT], POLICY)
    later = treat(at=NOW + timedelta(seconds=1))
    events = [
        audit_event(permit, treat(), VARIANT, CTX),
        audit_event(permit, treat(), OTHER, CTX),  # another result
        audit_event(deny, treat(), VARIANT, CTX),  # another decision
        audit_event(permit, later, VARIANT, CTX),  # another instant
        audit_event(permit, treat(), VARIANT, replace(CTX, report_key="report-2")),
    ]
    records = [
        provenance([VARIANT], permit, treat(), CTX),
        provenance([OTHER], permit, treat(), CTX),
    ]
    ids = [r["id"] for r in [*events, *records] if r is not None]
    assert len(ids) == len(set(ids)) == len(events) + len(records)


def test_a_disclosure_decided_again_later_keeps_its_provenance_id() -> None:
    """Regression: a send retried decides again, at a later instant; its Provenance must
    update the first one on the server, not add a second (the AuditEvent is a new act)."""
    permit = decide(PRIMARY, treat(), [TREATMENT], POLICY)
    later = treat(at=NOW + timedelta(hours=1))
    first, again = (provenance([VARIANT], permit, r, CTX) for r in (treat(), later))
    assert first is not None and again is not None
    assert first["id"] == again["id"]
    assert first["recorded"] != again["recorded"]
    events = (audit_event(permit, r, VARIANT, CTX) for r in (treat(), later))
    assert len({e["id"] for e in events}) == 2


# ---- FHIR validity -----------------------------------------------------------------------

SCENARIOS = {
    "consent-permit": (BRCA1, treat(), [TREATMENT, SF_OPT_IN]),
    "consent-deny": (BRCA1, treat(), [SF_OPT_OUT]),
    "policy-deny": (PRIMARY, treat(purpose="HMARKT"), [TREATMENT]),
    "no-consent-permit": (PRIMARY, treat(actor=None), []),
    "break-glass": (PRIMARY, treat(purpose="ETREAT", break_glass=True), [TREATMENT]),
}


def _audited(name: str) -> tuple[Decision, dict[str, Any], dict[str, Any] | None]:
    item, request_, consents = SCENARIOS[name]
    decision = decide(item, request_, consents, POLICY)
    event = audit_event(decision, request_, VARIANT, CTX)
    return decision, event, provenance([VARIANT], decision, request_, CTX)


@pytest.mark.parametrize("name", SCENARIOS)
def test_both_are_valid_r4_resources(name: str, validator: Validator) -> None:
    """Parsed by the fhir.resources R4B models, and checked against the R4 core definitions."""
    decision, event, record = _audited(name)
    assert AuditEvent.model_validate(event).id == event["id"]
    core = "http://hl7.org/fhir/StructureDefinition/"
    assert [
        i for i in validator.validate(event, core + "AuditEvent") if i.severity == "error"
    ] == []
    assert (record is not None) is decision.permitted
    if record is not None:
        assert Provenance.model_validate(record).id == record["id"]
        errors = validator.validate(record, core + "Provenance")
        assert [i for i in errors if i.severity == "error"] == []
