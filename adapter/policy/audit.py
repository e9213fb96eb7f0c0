"""The audit trail of disclosure decisions: an AuditEvent for every decision, a Provenance for
every disclosure.

Policy decided here:

* **Every decision is audited**, permit or deny, as one FHIR R4 AuditEvent
  (https://hl7.org/fhir/R4/auditevent.html) in IHE BALP's Consent Authorized Decision pattern
  (BALP 1.1.x, section 3:5.7.6), profile ``IHE.BasicAudit.AuthZconsent``
  (https://profiles.ihe.net/ITI/BALP/StructureDefinition-IHE.BasicAudit.AuthZconsent.html):
  type DICOM ``110113`` Security Alert, subtype ``AuthZ-Consent``, action ``E``. A permit is
  outcome ``0`` (success); a deny is ``8`` (serious failure): BALP says "Failure would indicate
  that Deny was returned" and its deny example codes it ``8``.
* **Purpose.** ``purposeOfEvent``, and the requester's ``purposeOfUse``, carry the request's v3
  ActReason code. A break-glass request adds ``BTG`` ("break the glass", a specialisation of
  ``ETREAT`` in v3-ActReason of the R4 core package 4.0.1), so every break-glass decision is
  marked, whatever its outcome.
* **Agents** are BALP's four: the requester (``Request.actor``) as the user, an information
  recipient (``IRCP``) and the one who asked; the adapter as the authorizer (``authserver``) and
  the source's observer, which BALP's ``val-audit-source`` requires to be the same. BALP requires
  the client application with its network address and the user's organization too (1..1); the
  adapter is not told them, so they are present with data-absent-reason ``unknown``, as is the
  user when the request names no actor.
* **Entities** are BALP's: the patient, and each Consent that decided, its provision path as a
  ``detail`` and its reason as the ``description``. BALP's entity slicing is closed (patient,
  consent, token), so the result decided on is named in ``outcomeDesc``, before every rule
  applied as ``rule: text``; when disclosed, it is the Provenance's target.
* **Profile claimed only when met.** ``meta.profile`` names BALP's profile when a Consent
  decided: BALP requires one (``entity[consent] 1..*``), and a decision the policy made alone
  (no Consent in force, a purpose refused) has none to name.
* **Provenance of a disclosure** (https://hl7.org/fhir/R4/provenance.html): one per permitted
  decision that disclosed resources, none for a deny. Its targets are the disclosed resources;
  the authorizing Consents are its ``policy`` ("Policy or plan the activity was defined by ...
  such as patient consent"), not an ``entity``, whose roles (derivation, revision, quotation,
  source, removal) all say the target was derived from it, which a Consent is not. Its activity
  is ``disclose`` (consentaction, the action a Consent provision controls), its reason the
  purpose (and ``BTG``), its agents the adapter (``performer``) and the requester (``IRCP``).
* **Ids and times.** ``recorded`` is the request's instant. The id is the conversion's UUIDv5
  (:class:`~adapter.fhir.identifiers.IdFactory`) of the decision, the request and what it was
  about, so replaying a decision yields the same id and a server keeps one copy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any, Final

from ..fhir.codes import instant
from ..fhir.identifiers import IdFactory, patient_reference
from ..model import AnalysisContext
from .consent import Reference
from .engine import Decision, Effect, Reason, Request
from .rules import ACT_REASON

__all__ = ["BALP_AUTHZ_CONSENT", "audit_event", "provenance"]

#: IHE BALP's profile of an authorization decision based on a Consent
BALP_AUTHZ_CONSENT: Final = (
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.AuthZconsent"
)
_AUTHZ_SUBTYPE: Final = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType"
_DCM: Final = "http://dicom.nema.org/resources/ontology/DCM"
_PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_ROLE_CLASS: Final = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
_SECURITY_ROLE: Final = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
_SOURCE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/security-source-type"
_ENTITY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE: Final = "http://terminology.hl7.org/CodeSystem/object-role"
_RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"
_PROVENANCE_AGENT: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_CONSENT_ACTION: Final = "http://terminology.hl7.org/CodeSystem/consentaction"
_ABSENT: Final = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
#: v3-ActReason "break the glass"
_BREAK_GLASS: Final = "BTG"
#: audit-event-outcome: 0 Success, 8 Serious failure (BALP's code for a deny)
_OUTCOME: Final = {Effect.PERMIT: "0", Effect.DENY: "8"}


def audit_event(
    decision: Decision, request: Request, item_ref: Mapping[str, Any], ctx: AnalysisContext
) -> dict[str, Any]:
    """The AuditEvent of ``decision`` on the result ``item_ref`` of ``ctx``'s patient."""
    consents = _deciding(decision.reasons)
    event = {
        "resourceType": "AuditEvent",
        "meta": {"profile": [BALP_AUTHZ_CONSENT]} if consents else None,
        "type": _coding(_DCM, "110113", "Security Alert"),
        "subtype": [
            _coding(
                _AUTHZ_SUBTYPE, "AuthZ-Consent", "Authorization Decision using Roles and Consent"
            )
        ],
        "action": "E",
        "recorded": instant(request.at),
        "outcome": _OUTCOME[decision.effect],
        "outcomeDesc": _explained(decision, item_ref),
        "purposeOfEvent": _purposes(request) or None,
        "agent": _audit_agents(request),
        "source": {
            "observer": _adapter(),
            "type": [_coding(_SOURCE_TYPE, "4", "Application Server")],
        },
        "entity": [_patient(ctx), *(_consent(name, rules) for name, rules in consents.items())],
    }
    return _identified(event, ctx, decision, request, item_ref)


def provenance(
    targets: Sequence[Mapping[str, Any]],
    decision: Decision,
    request: Request,
    ctx: AnalysisContext,
) -> dict[str, Any] | None:
    """The Provenance of ``targets`` disclosed under ``decision``; None when it denies or
    nothing was disclosed."""
    if not decision.permitted or not targets:
        return None
    agents = [{"type": _concept(_PROVENANCE_AGENT, "performer", "Performer"), "who": _adapter()}]
    if request.actor is not None:
        recipient = _concept(_PARTICIPATION, "IRCP", "information recipient")
        agents.append({"type": recipient, "who": _reference(request.actor)})
    record = {
        "resourceType": "Provenance",
        "target": [dict(t) for t in targets],
        "recorded": instant(request.at),
        "policy": list(_deciding(decision.reasons)) or None,
        "reason": _purposes(request) or None,
        "activity": _concept(_CONSENT_ACTION, "disclose", "Disclose"),
        "agent": agents,
    }
    return _identified(record, ctx, decision, request, list(targets), timeless=True)


# ---- parts -----------------------------------------------------------------------------


def _deciding(reasons: Sequence[Reason]) -> dict[str, list[Reason]]:
    """The Consents named by the reasons, in order, with the reasons that name each."""
    found: dict[str, list[Reason]] = {}
    for reason in reasons:
        if reason.consent is not None:
            found.setdefault(reason.consent, []).append(reason)
    return found


def _explained(decision: Decision, item_ref: Mapping[str, Any]) -> str:
    """What was decided on, the effect, and each rule applied, for the person reading the log."""
    rules = "; ".join(f"{r.rule}: {r.text}" for r in decision.reasons)
    return f"{decision.effect} {_named(item_ref)}: {rules}"


def _named(reference: Mapping[str, Any]) -> str:
    """A FHIR Reference as text: its type, then its literal reference or its identifier, then
    its display."""
    ident = reference.get("identifier") or {}
    what = reference.get("reference") or f"{ident.get('system')}|{ident.get('value')}"
    kind, display = reference.get("type"), reference.get("display")
    named = f"{kind} {what}" if kind else str(what)
    return f"{named} ({display})" if display else named


def _purposes(request: Request) -> list[dict[str, Any]]:
    """The request's purpose of use, and BTG when it breaks the glass."""
    codes = [request.purpose] if request.purpose is not None else []
    if request.break_glass and _BREAK_GLASS not in codes:
        codes.append(_BREAK_GLASS)
    return [{"coding": [{"system": ACT_REASON, "code": code}]} for code in codes]


def _audit_agents(request: Request) -> list[dict[str, Any]]:
    """BALP's client, user, user organization and authorizer, in that order."""
    user: dict[str, Any] = {
        "type": _concept(_PARTICIPATION, "IRCP", "information recipient"),
        "who": _unknown() if request.actor is None else _reference(request.actor),
        "requestor": True,
    }
    if purposes := _purposes(request):
        user["purposeOfUse"] = purposes
    return [
        {
            "type": _concept(_DCM, "110150", "Application"),
            "who": _unknown(),
            "requestor": False,
            "network": _unknown(),
        },
        user,
        {
            "type": _concept(_ROLE_CLASS, "PROV", "healthcare provider"),
            "who": _unknown(),
            "requestor": False,
        },
        {
            "type": _concept(_SECURITY_ROLE, "authserver", "authorization server"),
            "who": _adapter(),
            "requestor": False,
        },
    ]


def _patient(ctx: AnalysisContext) -> dict[str, Any]:
    return {
        "what": patient_reference(ctx.patient),
        "type": _coding(_ENTITY_TYPE, "1", "Person"),
        "role": _coding(_OBJECT_ROLE, "1", "Patient"),
    }


def _consent(name: str, reasons: list[Reason]) -> dict[str, Any]:
    """A Consent that decided: what it said, and at which provision."""
    found: dict[str, Any] = {
        "what": {"reference": name},
        "type": _coding(_RESOURCE_TYPES, "Consent", "Consent"),
        "description": "; ".join(r.text for r in reasons),
    }
    paths = dict.fromkeys(r.provision for r in reasons if r.provision is not None)
    if paths:
        found["detail"] = [{"type": "provision", "valueString": path} for path in paths]
    return found


def _adapter() -> dict[str, Any]:
    """The adapter, which decides, records and discloses."""
    return {"type": "Device", "display": "fhir-genomics-adapter"}


def _unknown() -> dict[str, Any]:
    """An element required but not known to the adapter."""
    return {"extension": [{"url": _ABSENT, "valueCode": "unknown"}]}


def _reference(ref: Reference) -> dict[str, Any]:
    """A policy-model Reference as FHIR JSON."""
    found: dict[str, Any] = {"reference": ref.reference, "type": ref.type}
    if ref.identifier_system is not None or ref.identifier_value is not None:
        found["identifier"] = {
            k: v
            for k, v in (("system", ref.identifier_system), ("value", ref.identifier_value))
            if v is not None
        }
    found["display"] = ref.display
    return {k: v for k, v in found.items() if v is not None}


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [_coding(system, code, display)]}


def _identified(
    resource: dict[str, Any],
    ctx: AnalysisContext,
    decision: Decision,
    request: Request,
    about: Any,
    *,
    timeless: bool = False,
) -> dict[str, Any]:
    """``resource`` without its empty elements, with the id of what it records: the same
    decision on the same thing gets the same id. An AuditEvent records one act, at its time;
    a Provenance (``timeless``) records what was disclosed on what grounds, so a disclosure
    decided again later (a send retried) updates it instead of adding a second."""
    facts = asdict(request)
    if timeless:
        del facts["at"]
    content = json.dumps(
        [asdict(decision), facts, about], sort_keys=True, default=str, ensure_ascii=False
    )
    kind = resource["resourceType"]
    rid = IdFactory(ctx).resource(f"{kind}|{content}")
    body = {k: v for k, v in resource.items() if v is not None and k != "resourceType"}
    return {"resourceType": kind, "id": rid, **body}
