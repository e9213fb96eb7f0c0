"""FHIR Consent, R4 and R5, read into one model: the fixtures of both versions, the errors that
refuse a Consent (each naming its element), the in-force check at frozen instants, and random R5
provision trees that keep their shape and their permit/deny alternation."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.consent import Consent as FhirR5Consent
from fhir.resources.R4B.consent import Consent as FhirR4Consent
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.errors import ConsentError
from adapter.model import PatientRef
from adapter.policy.consent import (
    Coding,
    Consent,
    ConsentPolicy,
    ConsentProvision,
    ConsentStatus,
    ConsentVerification,
    DataMeaning,
    FhirVersion,
    Period,
    ProvisionActor,
    ProvisionData,
    ProvisionType,
    Reference,
    consent_from_dict,
    consent_from_json,
    read_consent,
)

DATA = Path(__file__).resolve().parent / "data" / "consent"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
LOINC = "http://loinc.org"
PERMIT, DENY = ProvisionType.PERMIT, ProvisionType.DENY
VALID = {
    "r4_treatment_opt_in.json": FhirVersion.R4,
    "r5_treatment_opt_in.json": FhirVersion.R5,
    "r4_research.json": FhirVersion.R4,
    "r4_expired.json": FhirVersion.R4,
    "r5_inactive.json": FhirVersion.R5,
    "r4_rejected.json": FhirVersion.R4,
    "r4_minor_guardian.json": FhirVersion.R4,
}


def load(name: str) -> dict[str, Any]:
    """A fixture as parsed JSON, to change in a test."""
    found: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return found


def at(text: str) -> datetime:
    """A frozen instant."""
    return datetime.fromisoformat(text)


def day(year: int, month: int, date: int) -> datetime:
    """Midnight UTC, where a period written as dates starts or stops."""
    return datetime(year, month, date, tzinfo=UTC)


# -- the fixtures ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "version"), VALID.items())
def test_each_fixture_is_read_in_its_version(name: str, version: FhirVersion) -> None:
    consent = read_consent(DATA / name)
    assert consent.fhir_version is version
    assert consent.id == load(name)["id"]


@pytest.mark.parametrize(("name", "version"), VALID.items())
def test_each_fixture_is_valid_fhir_to_an_independent_parser(
    name: str, version: FhirVersion
) -> None:
    parser = FhirR4Consent if version is FhirVersion.R4 else FhirR5Consent
    parsed = parser.model_validate(load(name))
    assert parsed.status == load(name)["status"]


def test_the_r4_and_r5_treatment_consents_read_alike() -> None:
    r4 = read_consent(DATA / "r4_treatment_opt_in.json")
    r5 = read_consent(DATA / "r5_treatment_opt_in.json")
    assert r4.scope == (Coding(CONSENT_SCOPE, "treatment"),)
    assert r4.policy_rule == (Coding(ACT_CODE, "OPTIN"),)
    assert r5.grantees == (Reference("Organization/lab-1"),)
    assert (r5.scope, r5.policy_rule, r4.grantees) == ((), (), ())
    # everything else, the provision tree included, is the same consent
    r5_as_r4 = replace(
        r5, fhir_version=FhirVersion.R4, scope=r4.scope, policy_rule=r4.policy_rule, grantees=()
    )
    assert r5_as_r4 == r4


def test_the_treatment_consent_in_detail() -> None:
    consent = read_consent(DATA / "r5_treatment_opt_in.json")
    assert consent.status is ConsentStatus.ACTIVE
    assert consent.patient == Reference("Patient/pat-1001")
    assert consent.patient is not None and consent.patient.display == "Alex Example"
    assert consent.date == "2024-03-01"
    assert consent.categories == (Coding(LOINC, "59284-0"),)
    assert consent.grantors == (Reference("Patient/pat-1001"),)
    assert consent.policies == (
        ConsentPolicy(uri="https://lab.example.org/policies/genomic-testing-consent-v3"),
    )
    assert consent.verifications == (
        ConsentVerification(
            verified=True,
            verified_with=Reference("Patient/pat-1001"),
            dates=("2024-03-01T09:45:00+01:00",),
        ),
    )
    assert consent.decision is PERMIT
    assert consent.period == Period(day(2024, 3, 1), day(2027, 1, 1))
    assert consent.provision.provisions == (
        ConsentProvision(
            type=DENY,  # R5 states no type: the opposite of the permit decision
            actors=(
                ProvisionActor(
                    (Coding(PARTICIPATION, "IRCP"),), Reference("Organization/insurer-7")
                ),
            ),
            actions=(Coding(CONSENT_ACTION, "disclose"),),
            purposes=(Coding(ACT_REASON, "HMARKT"),),
        ),
    )


def test_the_research_consent_keeps_every_provision_element() -> None:
    consent = read_consent(DATA / "r4_research.json")  # declared 4.0.1 in meta.profile
    root = consent.provision
    assert consent.scope == (Coding(CONSENT_SCOPE, "research"),)
    assert consent.categories == (Coding(LOINC, "59284-0"), Coding(ACT_CODE, "RESEARCH"))
    assert consent.date == "2023-09-12T14:05:00Z"
    assert consent.policies == (
        ConsentPolicy(
            uri="https://irb.example.org/protocols/GEN-2023-17",
            authority="https://irb.example.org",
        ),
    )
    assert root.type is PERMIT
    assert root.purposes == (Coding(ACT_REASON, "HRESCH"),)
    assert root.actions == (Coding(CONSENT_ACTION, "collect"), Coding(CONSENT_ACTION, "use"))
    assert root.security_labels == (Coding(ACT_CODE, "GDIS"),)
    assert root.actors == (
        ProvisionActor((Coding(PARTICIPATION, "IRCP"),), Reference("Organization/biobank-1")),
    )
    assert root.resource_types == ("Observation", "DiagnosticReport")
    assert root.document_types == (Coding("urn:ietf:bcp:13", "application/hl7-cda+xml"),)
    assert root.codes == (Coding(LOINC, "51969-4"),)
    assert root.data_period == Period(day(2023, 1, 1), None)
    assert root.data == (
        ProvisionData(DataMeaning.RELATED, Reference("DiagnosticReport/genomic-report-2002")),
        ProvisionData(DataMeaning.DEPENDENTS, Reference("Specimen/blood-2002")),
    )
    restricted, marketing = root.provisions
    assert restricted.type is DENY and marketing.type is DENY
    assert restricted.security_labels == (
        Coding("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R"),
    )
    assert marketing.purposes == (Coding(ACT_REASON, "HMARKT"),)


def test_r4_nested_provisions_state_their_own_types() -> None:
    resource = load("r4_research.json")
    resource["provision"]["provision"][1]["type"] = "permit"  # R4 need not alternate
    consent = consent_from_dict(resource)
    assert [p.type for p in consent.provision.provisions] == [DENY, PERMIT]


def test_r5_resource_types_read_as_names_like_r4_class() -> None:
    resource = load("r5_treatment_opt_in.json")
    resource["provision"][0]["resourceType"] = [
        {"system": "http://hl7.org/fhir/fhir-types", "code": "Observation"}
    ]
    resource["provision"][0]["documentType"] = [
        {"system": "urn:ietf:bcp:13", "code": "application/hl7-cda+xml"}
    ]
    provision = consent_from_dict(resource).provision.provisions[0]
    assert provision.resource_types == ("Observation",)
    assert provision.document_types == (Coding("urn:ietf:bcp:13", "application/hl7-cda+xml"),)


def test_a_minor_consent_signed_by_a_guardian() -> None:
    consent = read_consent(DATA / "r4_minor_guardian.json", patient=PatientRef(id="child-4004"))
    guardian = Reference("#guardian")
    assert consent.patient == Reference("Patient/child-4004")
    assert consent.grantors == (guardian,)
    assert consent.grantors[0].display == "Jordan Example, legal guardian"
    assert consent.verifications[0].verified_with == guardian
    assert consent.provision.actors == (ProvisionActor((Coding(ROLE_CODE, "GUARD"),), guardian),)
    (research,) = consent.provision.provisions
    assert research.type is DENY
    assert research.purposes == (Coding(ACT_REASON, "HRESCH"),)


def test_an_inactive_r5_opt_out_with_an_emergency_exception() -> None:
    consent = read_consent(DATA / "r5_inactive.json")
    assert consent.status is ConsentStatus.INACTIVE
    assert consent.decision is DENY
    (emergency,) = consent.provision.provisions
    assert emergency.type is PERMIT
    assert emergency.purposes == (Coding(ACT_REASON, "ETREAT"),)


def test_a_rejected_r4_consent() -> None:
    consent = read_consent(DATA / "r4_rejected.json")
    assert consent.status is ConsentStatus.REJECTED
    assert consent.period is None


def test_text_and_bytes_read_alike() -> None:
    text = (DATA / "r5_treatment_opt_in.json").read_text(encoding="utf-8")
    assert consent_from_json(text) == consent_from_json(text.encode("utf-8"))


# -- the version ---------------------------------------------------------------------------


def test_a_declared_r4b_consent_reads_as_r4() -> None:
    resource = load("r4_treatment_opt_in.json")
    resource["meta"] = {"profile": ["http://hl7.org/fhir/StructureDefinition/Consent|4.3.0"]}
    assert consent_from_dict(resource).fhir_version is FhirVersion.R4


def test_the_fhir_version_argument_overrides_the_declaration() -> None:
    resource = load("r5_treatment_opt_in.json")
    resource["meta"] = {"profile": ["http://hl7.org/fhir/StructureDefinition/Consent|4.0.1"]}
    with pytest.raises(ConsentError) as refused:
        consent_from_dict(resource)
    assert refused.value.field == "Consent.subject"
    assert "an R5 element" in refused.value.message
    read = consent_from_dict(resource, fhir_version="5.0.0")
    assert read.fhir_version is FhirVersion.R5


def test_the_fhir_version_argument_overrides_the_elements() -> None:
    resource = {"resourceType": "Consent", "status": "active", "decision": "deny"}
    assert consent_from_dict(resource).decision is DENY
    with pytest.raises(ConsentError) as refused:
        consent_from_dict(resource, fhir_version=FhirVersion.R4)
    assert refused.value.field == "Consent.decision"


# -- the patient ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expected",
    [PatientRef(id="pat-1001"), PatientRef(id="Patient/pat-1001")],
)
def test_the_expected_patient_is_accepted(expected: PatientRef) -> None:
    for name in ("r4_treatment_opt_in.json", "r5_treatment_opt_in.json"):
        assert read_consent(DATA / name, patient=expected).patient == Reference("Patient/pat-1001")


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("r4_treatment_opt_in.json", "Consent.patient"),
        ("r5_treatment_opt_in.json", "Consent.subject"),
    ],
)
def test_a_consent_for_another_patient_is_refused(name: str, where: str) -> None:
    with pytest.raises(ConsentError) as refused:
        read_consent(DATA / name, patient=PatientRef(id="pat-9999"))
    assert refused.value.field == where
    assert refused.value.source == str(DATA / name)
    assert "Patient/pat-1001" in refused.value.message and "pat-9999" in refused.value.message


def test_a_patient_is_matched_by_absolute_url_or_identifier() -> None:
    resource = load("r4_treatment_opt_in.json")
    resource["patient"] = {"reference": "https://fhir.example.org/Patient/pat-1001/_history/3"}
    assert consent_from_dict(resource, patient=PatientRef(id="pat-1001")).patient is not None
    resource["patient"] = {
        "identifier": {"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-7"}
    }
    same = PatientRef(identifier_system="urn:oid:1.2.36.146.595.217.0.1", identifier_value="MRN-7")
    assert consent_from_dict(resource, patient=same).patient == Reference(
        identifier_system="urn:oid:1.2.36.146.595.217.0.1", identifier_value="MRN-7"
    )
    with pytest.raises(ConsentError, match="not pat-1001"):
        consent_from_dict(resource, patient=PatientRef(id="pat-1001"))


def test_a_consent_naming_no_patient_is_refused_when_one_is_expected() -> None:
    resource = load("r5_inactive.json")
    del resource["subject"]
    assert consent_from_dict(resource).patient is None
    with pytest.raises(ConsentError) as refused:
        consent_from_dict(resource, patient=PatientRef(id="pat-5005"))
    assert refused.value.field == "Consent.subject"


# -- in force at frozen instants -------------------------------------------------------------


@pytest.mark.parametrize("name", ["r4_treatment_opt_in.json", "r5_treatment_opt_in.json"])
@pytest.mark.parametrize(
    ("instant", "in_force"),
    [
        ("2024-02-29T23:59:59+00:00", False),  # before the start
        ("2024-03-01T00:00:00+00:00", True),  # the start is inclusive
        ("2025-07-15T12:00:00+02:00", True),
        ("2026-12-31T23:59:59.999999+00:00", True),  # the end day is inclusive to its last instant
        ("2027-01-01T00:00:00+00:00", False),  # after the end
        ("2026-12-31T23:30:00-05:00", False),  # 2027-01-01T04:30Z
    ],
)
def test_in_force_inside_the_period_only(name: str, instant: str, in_force: bool) -> None:
    assert read_consent(DATA / name).in_force(at(instant)) is in_force


def test_an_expired_consent_is_not_in_force() -> None:
    consent = read_consent(DATA / "r4_expired.json")
    assert consent.status is ConsentStatus.ACTIVE
    assert consent.in_force(at("2023-06-30T23:59:59+00:00"))
    assert not consent.in_force(at("2023-07-01T00:00:00+00:00"))
    assert not consent.in_force(at("2025-01-01T00:00:00+00:00"))


@pytest.mark.parametrize("name", ["r5_inactive.json", "r4_rejected.json"])
def test_a_consent_not_active_is_never_in_force(name: str) -> None:
    consent = read_consent(DATA / name)
    instant = at("2024-12-01T00:00:00+00:00")
    assert consent.period is None or consent.period.contains(instant)
    assert not consent.in_force(instant)
    assert replace(consent, status=ConsentStatus.ACTIVE).in_force(instant)


def test_a_period_with_times_includes_its_last_second() -> None:
    resource = load("r5_inactive.json")
    resource["status"] = "active"
    resource["period"] = {"start": "2025-01-01T08:00:00+01:00", "end": "2025-01-01T12:00:00Z"}
    consent = consent_from_dict(resource)
    assert not consent.in_force(at("2025-01-01T06:59:59+00:00"))
    assert consent.in_force(at("2025-01-01T07:00:00+00:00"))
    assert consent.in_force(at("2025-01-01T12:00:00.5+00:00"))
    assert not consent.in_force(at("2025-01-01T12:00:01+00:00"))


def test_a_month_end_runs_to_the_months_last_instant() -> None:
    resource = load("r5_inactive.json")
    resource["status"] = "active"
    resource["period"] = {"start": "2024", "end": "2024-12"}
    consent = consent_from_dict(resource)
    assert consent.period == Period(day(2024, 1, 1), day(2025, 1, 1))
    assert consent.in_force(day(2025, 1, 1) - timedelta(microseconds=1))


def test_the_instant_needs_a_timezone() -> None:
    consent = read_consent(DATA / "r4_treatment_opt_in.json")
    with pytest.raises(ValueError, match="timezone"):
        consent.in_force(datetime(2025, 1, 1))  # naive
    assert consent.in_force(datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=9))))


# -- refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("not_json.json", None),
        ("not_a_consent.json", "resourceType"),
        ("no_status.json", "Consent.status"),
        ("unknown_status.json", "Consent.status"),
        ("bad_provision_type.json", "Consent.provision.provision[1].type"),
        ("inverted_period.json", "Consent.period"),
        ("stu3_consent.json", "Consent.meta.profile[0]"),
    ],
)
def test_each_bad_fixture_is_refused_naming_the_element(name: str, where: str | None) -> None:
    with pytest.raises(ConsentError) as refused:
        read_consent(DATA / name)
    assert refused.value.source == str(DATA / name)
    assert refused.value.field == where


def test_not_json_names_the_line() -> None:
    with pytest.raises(ConsentError) as refused:
        read_consent(DATA / "not_json.json")
    assert refused.value.line == 1


def _set(path: list[str | int], value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to a fixture: the element at ``path`` set to ``value`` (None removes it)."""

    def change(resource: dict[str, Any]) -> None:
        node: Any = resource
        for step in path[:-1]:
            node = node[step]
        if value is None:
            del node[path[-1]]
        else:
            node[path[-1]] = copy.deepcopy(value)

    return change


R4, R5, RESEARCH = "r4_treatment_opt_in.json", "r5_treatment_opt_in.json", "r4_research.json"
NESTED: list[str | int] = ["provision", "provision", 0]
TEXT_ONLY = [{"text": "disclose"}]


@pytest.mark.parametrize(
    ("name", "change", "where"),
    [
        (R4, _set(["scope"], None), "Consent.scope"),
        (R4, _set(["category"], None), "Consent.category"),
        (R4, _set(["status"], "not-done"), "Consent.status"),  # an R5 code
        (R5, _set(["status"], "proposed"), "Consent.status"),  # an R4 code
        (R4, _set(["provision"], None), "Consent.provision"),
        (R4, _set(["provision", "type"], None), "Consent.provision.type"),
        (R4, _set([*NESTED, "type"], None), "Consent.provision.provision[0].type"),
        (R5, _set(["decision"], None), "Consent.decision"),
        (R5, _set(["decision"], "maybe"), "Consent.decision"),
        (R5, _set(["provision", 0, "type"], "deny"), "Consent.provision[0].type"),
        (R4, _set(["decision"], "permit"), "Consent.decision"),  # mixes R4 and R5
        (
            R5,
            _set(["provision", 0, "modifierExtension"], [{"url": "x"}]),
            "Consent.provision[0].modifierExtension",
        ),
        (R4, _set(["implicitRules"], "https://example.org/rules"), "Consent.implicitRules"),
        (
            R5,
            _set(["provision", 0, "expression"], {"language": "text/fhirpath"}),
            "Consent.provision[0].expression",
        ),
        (R4, _set([*NESTED, "action"], TEXT_ONLY), "Consent.provision.provision[0].action[0]"),
        (
            R4,
            _set([*NESTED, "purpose", 0, "system"], None),
            "Consent.provision.provision[0].purpose[0]",
        ),
        (
            R4,
            _set([*NESTED, "actor", 0, "reference"], None),
            "Consent.provision.provision[0].actor[0].reference",
        ),
        (
            R4,
            _set([*NESTED, "actor", 0, "role"], None),
            "Consent.provision.provision[0].actor[0].role",
        ),
        (R5, _set(["provision", 0, "actor", 0], {}), "Consent.provision[0].actor[0]"),
        (R4, _set(["provision", "period", "stat"], "2024-01-01"), "Consent.provision.period.stat"),
        (R4, _set(["patient"], {"display": "Alex Example"}), "Consent.patient"),
        (R4, _set(["dateTime"], "2024-13-01"), "Consent.dateTime"),
        (R4, _set(["dateTime"], "2024-03-01T09:30:00"), "Consent.dateTime"),  # no time zone
        (R5, _set(["date"], "2024-03-01T09:30:00Z"), "Consent.date"),  # R5 date has no time
        (R5, _set(["verification", 0, "verified"], "yes"), "Consent.verification[0].verified"),
        (R4, _set(["policy", 0], {}), "Consent.policy[0]"),
        (
            RESEARCH,
            _set(["provision", "data", 0, "meaning"], "everything"),
            "Consent.provision.data[0].meaning",
        ),
        (
            RESEARCH,
            _set(["provision", "dataPeriod"], {"start": "2024-02", "end": "2024-01-31"}),
            "Consent.provision.dataPeriod",
        ),
        (RESEARCH, _set(["provision", "category"], []), "Consent.provision.category"),
        (
            R5,
            _set(["provision", 0, "resourceType"], [{"system": "urn:x", "code": "Observation"}]),
            "Consent.provision[0].resourceType[0]",
        ),
        (R5, _set(["fhirVersion"], "3.0.2"), "Consent.fhirVersion"),
        (R5, _set(["fhirVersion"], "6.0.0"), "Consent.fhirVersion"),
        (
            R5,
            _set(["grantor"], {"reference": "Patient/pat-1001"}),
            "Consent.grantor",
        ),  # not an array
    ],
)
def test_a_changed_fixture_is_refused_naming_the_element(
    name: str, change: Callable[[dict[str, Any]], None], where: str
) -> None:
    resource = load(name)
    change(resource)
    with pytest.raises(ConsentError) as refused:
        consent_from_dict(resource)
    assert refused.value.field == where
    assert refused.value.source == f"Consent/{resource['id']}"


@pytest.mark.parametrize(
    ("name", "change", "reason"),
    [
        (R5, _set(["provision", 0, "modifierExtension"], [{"url": "x"}]), "modifier extension"),
        (R4, _set(["implicitRules"], "https://example.org/rules"), "changes the meaning"),
        (R5, _set(["provision", 0, "expression"], {"language": "text/fhirpath"}), "not evaluated"),
    ],
)
def test_elements_that_change_the_meaning_are_refused_as_such(
    name: str, change: Callable[[dict[str, Any]], None], reason: str
) -> None:
    resource = load(name)
    change(resource)
    with pytest.raises(ConsentError, match=reason):
        consent_from_dict(resource)


def test_a_declared_r5_consent_written_as_r4_is_refused() -> None:
    resource = load(R4)
    resource["fhirVersion"] = "5.0.0"
    with pytest.raises(ConsentError) as refused:
        consent_from_dict(resource)
    assert refused.value.field == "Consent.scope"
    assert "an R4 element" in refused.value.message


def test_a_consent_of_neither_version_is_refused() -> None:
    resource = {"resourceType": "Consent", "id": "bare", "status": "active"}
    with pytest.raises(ConsentError, match="pass fhir_version") as refused:
        consent_from_dict(resource)
    assert (refused.value.field, refused.value.source) == ("Consent", "Consent/bare")


def test_stu3_elements_are_refused_without_a_declaration() -> None:
    resource = load("stu3_consent.json")
    del resource["meta"]
    with pytest.raises(ConsentError, match="STU3") as refused:
        consent_from_dict(resource)
    assert refused.value.field == "Consent.except"


@pytest.mark.parametrize("version", ["STU3", "3.0.2", "R2", "6.0.0-ballot3"])
def test_an_unsupported_fhir_version_argument_is_refused(version: str) -> None:
    with pytest.raises(ConsentError) as refused:
        read_consent(DATA / R5, fhir_version=version)
    assert refused.value.field == "fhir_version"
    old = version != "6.0.0-ballot3"
    assert ("R3 or earlier" in refused.value.message) is old


def test_conflicting_declarations_are_refused() -> None:
    resource = load(R4)
    resource["meta"] = {"profile": ["http://hl7.org/fhir/StructureDefinition/Consent|4.0.1"]}
    resource["fhirVersion"] = "5.0.0"
    with pytest.raises(ConsentError, match="both R4 and R5") as refused:
        consent_from_dict(resource)
    assert refused.value.field == "Consent.meta.profile[0]"


def test_duplicate_json_keys_are_refused() -> None:
    text = (
        '{"resourceType": "Consent", "status": "active", "decision": "deny", "decision": "permit"}'
    )
    with pytest.raises(ConsentError, match="duplicate key 'decision'") as refused:
        consent_from_json(text, source="upload.json")
    assert refused.value.source == "upload.json"


def test_provisions_nested_too_deep_are_refused() -> None:
    provision: dict[str, Any] = {}
    for _ in range(40):
        provision = {"provision": [provision]}
    resource = {"resourceType": "Consent", "status": "active", "decision": "deny", **provision}
    with pytest.raises(ConsentError, match="deeper than 32") as refused:
        consent_from_dict(resource)
    assert refused.value.field is not None
    assert refused.value.field.count("provision") == 33


def test_the_error_is_an_operation_outcome_naming_the_element() -> None:
    with pytest.raises(ConsentError) as refused:
        read_consent(DATA / "bad_provision_type.json")
    outcome = refused.value.to_operation_outcome()
    assert outcome["issue"][0]["expression"] == ["Consent.provision.provision[1].type"]


# -- random R5 provision trees ---------------------------------------------------------------

PURPOSES = ("TREAT", "ETREAT", "HRESCH", "HMARKT", "HOPERAT", "HPAYMT")


def provision_trees(depth: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    """R5 provisions as JSON, nested at most ``depth`` levels, each with a few purposes."""
    purposes = st.lists(st.sampled_from(PURPOSES), max_size=2, unique=True)
    children = st.just([]) if depth == 1 else provision_trees(depth - 1)

    def provision(codes: list[str], nested: list[dict[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {"purpose": [{"system": ACT_REASON, "code": c} for c in codes]}
        return found | ({"provision": nested} if nested else {})

    return st.lists(st.builds(provision, purposes, children), max_size=3)


def json_shape(provisions: list[dict[str, Any]]) -> tuple[Any, ...]:
    """The tree's shape and content as written."""
    return tuple(
        (tuple(p["code"] for p in item["purpose"]), json_shape(item.get("provision", [])))
        for item in provisions
    )


def model_shape(provisions: tuple[ConsentProvision, ...]) -> tuple[Any, ...]:
    """The tree's shape and content as read."""
    return tuple((tuple(c.code for c in p.purposes), model_shape(p.provisions)) for p in provisions)


def alternates(parent: ConsentProvision) -> bool:
    """Whether every provision below ``parent`` is the opposite of its own parent."""
    return all(c.type is parent.type.opposite and alternates(c) for c in parent.provisions)


def as_r4(provisions: list[dict[str, Any]], parent: str) -> list[dict[str, Any]]:
    """The same R5 tree with R4's explicit, alternating types."""
    kind = "deny" if parent == "permit" else "permit"
    return [
        item | {"type": kind, "provision": as_r4(item.get("provision", []), kind)}
        for item in provisions
    ]


@settings(deadline=None)
@given(tree=provision_trees(4), decision=st.sampled_from(["permit", "deny"]))
def test_random_r5_trees_keep_their_shape_and_alternate(
    tree: list[dict[str, Any]], decision: str
) -> None:
    resource = {
        "resourceType": "Consent",
        "status": "active",
        "subject": {"reference": "Patient/pat-1001"},
        "decision": decision,
        "provision": tree,
    }
    consent: Consent = consent_from_json(json.dumps(resource))
    assert consent.decision is ProvisionType(decision)
    assert model_shape(consent.provision.provisions) == json_shape(tree)
    assert alternates(consent.provision)
    r4 = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "treatment"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": {"reference": "Patient/pat-1001"},
        "provision": {"type": decision, "provision": as_r4(tree, decision)},
    }
    assert consent_from_dict(r4).provision == consent.provision
