"""A patient's FHIR Consent, R4 (4.0.1) or R5 (5.0.0), read into one typed model.

Specs: https://hl7.org/fhir/R4/consent.html and https://hl7.org/fhir/R5/consent.html. The policy
engine decides what may be disclosed on this model, so a Consent that cannot be read with
certainty is a :class:`~adapter.errors.ConsentError`, never a default that would permit.

**Version.** ``fhir_version``, when the caller gives it, decides. Otherwise the version the
resource declares: a core profile in ``meta.profile``, e.g.
``http://hl7.org/fhir/StructureDefinition/Consent|4.0.1`` or
``http://hl7.org/fhir/5.0/StructureDefinition/Consent``, or a top-level ``fhirVersion`` as some
exports add. Otherwise the elements present: R5's ``decision``,
``subject``, ``grantor``, ``grantee``, ``period``, ``date``, ``policyBasis``, ``policyText``,
``regulatoryBasis``, ``manager``, ``controller`` or a ``provision`` array, against R4's ``scope``,
``patient``, ``performer``, ``dateTime``, ``organization``, ``policy``, ``policyRule`` or a
``provision`` object; both kinds, or neither, is an error. R4B (4.3) has R4's Consent and is read
as R4. R3 (3.0) or earlier, declared or recognised by STU3's own elements (``except``,
``consentingParty``, a root ``actor``...), is refused in every case: its Consent has another shape.

**Mapping** (R4 element / R5 element -> model):

- ``patient`` / ``subject`` -> :attr:`Consent.patient`; ``dateTime`` / ``date`` ->
  :attr:`Consent.date`, as written.
- The root provision. R4's one ``provision`` is the root :class:`ConsentProvision` as written;
  its ``type`` is the consent's decision and its ``period`` the consent's period. R4 defines
  ``type`` as "not permitted in root rule", yet IHE PCF (R4) requires it there as the decision
  (https://profiles.ihe.net/ITI/PCF/StructureDefinition-IHE.PCF.consentBasic.html) and the engine
  needs one, so it is required here. R5 has no root provision: its root is made of ``decision``
  (type), ``period`` and the ``provision`` array (children), with no conditions of its own.
  :attr:`Consent.decision` and :attr:`Consent.period` read the root.
- Nested provision types. R4 requires ``type`` on each ("required in all nested rules"). R5
  provisions have none: ``decision`` "Sets the base decision for Consent to be either permit or
  deny, with provisions assumed to be a negation of the previous level" (Consent.decision,
  https://hl7.org/fhir/R5/consent.html). So each R5 provision is the opposite of its parent, the
  first level the opposite of ``decision``; R5's ``decision`` is 0..1, but without it no type can
  be derived, so it is required here.
- ``performer`` / ``grantor`` -> :attr:`Consent.grantors`. R4 defines ``performer`` as "either the
  Grantor ... or the Grantee" and comments that it is commonly the patient or e.g. a legal
  guardian, as IHE PCF uses it; it is read as the grantor. ``grantee`` (R5 only; R4 names the
  grantees as provision actors) -> :attr:`Consent.grantees`.
- ``policy[]`` (authority, uri) / ``policyBasis`` (url as uri, reference) ->
  :attr:`Consent.policies`; ``policyRule`` (R4) -> :attr:`Consent.policy_rule`; ``policyText``
  (R5) -> :attr:`Consent.policy_texts`.
- ``class`` (R4) / ``documentType`` and ``resourceType`` (R5): resource-type codings
  (http://hl7.org/fhir/resource-types in R4, http://hl7.org/fhir/fhir-types in R5) become
  resource-type names in :attr:`ConsentProvision.resource_types`, the other codings
  :attr:`ConsentProvision.document_types`.
- A list of CodeableConcepts (``action``, ``code``) is kept as the codings of all of them: the
  concepts of a list, and the codings of a concept, are alternatives alike.
- Known and not read, as no decision depends on them: R4 ``organization``, ``source[x]``; R5
  ``manager``, ``controller``, ``sourceAttachment``, ``sourceReference``, ``regulatoryBasis``.

**Periods.** ``start`` is inclusive from its first instant; ``end`` is inclusive to its last: "The
high value includes any matching date/time" (Period.end,
https://hl7.org/fhir/R4/datatypes.html#Period), so ``end: 2026-12-31`` runs to the end of that
day. A date without a time is read in UTC. An end before the start (per-1) is an error. A
consent is in force at an instant when its status is ``active`` and the instant is inside its root
period (no period: no time limit).

**Refused**, because skipping them could widen what is permitted: a ``modifierExtension`` or
``implicitRules`` (they change the meaning), an element this reader does not know (an element of
the other version included), R5 ``provision.expression`` (not evaluated here), a CodeableConcept
without a coding (text cannot be matched), a coding without system or code, a Reference naming
nothing, duplicate JSON keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..errors import ConsentError
from ..model import PatientRef

__all__ = [
    "Coding",
    "Consent",
    "ConsentPolicy",
    "ConsentProvision",
    "ConsentStatus",
    "ConsentVerification",
    "DataMeaning",
    "FhirVersion",
    "Period",
    "ProvisionActor",
    "ProvisionData",
    "ProvisionType",
    "Reference",
    "consent_from_dict",
    "consent_from_json",
    "read_consent",
]


class FhirVersion(StrEnum):
    """The FHIR release whose Consent shape was read."""

    R4 = "R4"
    R5 = "R5"


class ConsentStatus(StrEnum):
    """Consent.status, as found (consent-state-codes of R4 and R5)."""

    DRAFT = "draft"
    PROPOSED = "proposed"  # R4 only
    ACTIVE = "active"
    REJECTED = "rejected"  # R4 only
    INACTIVE = "inactive"
    NOT_DONE = "not-done"  # R5 only
    ENTERED_IN_ERROR = "entered-in-error"
    UNKNOWN = "unknown"  # R5 only


class ProvisionType(StrEnum):
    """Whether a provision permits or denies the actions it matches."""

    PERMIT = "permit"
    DENY = "deny"

    @property
    def opposite(self) -> ProvisionType:
        """The type of an R5 provision nested under one of this type."""
        return ProvisionType.DENY if self is ProvisionType.PERMIT else ProvisionType.PERMIT


class DataMeaning(StrEnum):
    """How a provision's data reference is matched (consent-data-meaning)."""

    INSTANCE = "instance"
    RELATED = "related"
    DEPENDENTS = "dependents"
    AUTHORED_BY = "authoredby"


@dataclass(frozen=True, slots=True)
class Coding:
    """A code in its system; the display is for people and takes no part in equality."""

    system: str
    code: str
    display: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Reference:
    """A FHIR Reference: literal (``Patient/123``), logical (an identifier) or both."""

    reference: str | None = None
    type: str | None = None
    identifier_system: str | None = None
    identifier_value: str | None = None
    display: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Period:
    """A FHIR Period as instants: ``start`` is the first instant inside, ``end_exclusive`` the
    first instant after (the day after an ``end`` written as a date); None is open."""

    start: datetime | None = None
    end_exclusive: datetime | None = None

    def contains(self, at: datetime) -> bool:
        """Whether the instant ``at`` (timezone-aware) is inside the period."""
        if at.utcoffset() is None:
            raise ValueError("the instant needs a timezone, e.g. datetime.now(UTC)")
        after_start = self.start is None or self.start <= at
        return after_start and (self.end_exclusive is None or at < self.end_exclusive)


@dataclass(frozen=True, slots=True)
class ProvisionActor:
    """Who a provision controls: a role, a reference, or both (R4 requires both)."""

    role: tuple[Coding, ...]
    reference: Reference | None


@dataclass(frozen=True, slots=True)
class ProvisionData:
    """A resource a provision controls, and how the reference is matched."""

    meaning: DataMeaning
    reference: Reference


@dataclass(frozen=True, slots=True)
class ConsentProvision:
    """A rule: it permits or denies what matches all its conditions; nested rules are its
    exceptions. Empty conditions match everything."""

    type: ProvisionType
    period: Period | None = None
    actors: tuple[ProvisionActor, ...] = ()
    actions: tuple[Coding, ...] = ()
    security_labels: tuple[Coding, ...] = ()
    purposes: tuple[Coding, ...] = ()
    document_types: tuple[Coding, ...] = ()  # R4 class (not a resource type), R5 documentType
    resource_types: tuple[str, ...] = ()  # e.g. "Observation"
    codes: tuple[Coding, ...] = ()
    data_period: Period | None = None
    data: tuple[ProvisionData, ...] = ()
    provisions: tuple[ConsentProvision, ...] = ()


@dataclass(frozen=True, slots=True)
class ConsentPolicy:
    """A policy the consent is given under: R4 ``policy[]``, R5 ``policyBasis``."""

    uri: str | None = None
    authority: str | None = None  # R4 only
    reference: Reference | None = None  # R5 only


@dataclass(frozen=True, slots=True)
class ConsentVerification:
    """That someone confirmed the consent with the patient or their representative."""

    verified: bool
    verified_with: Reference | None = None
    verified_by: Reference | None = None  # R5 only
    type: tuple[Coding, ...] = ()  # R5 verificationType
    dates: tuple[str, ...] = ()  # as written; R4 has one, R5 any number


@dataclass(frozen=True, slots=True)
class Consent:
    """One patient's consent, the same whichever FHIR version it was read from."""

    id: str | None
    status: ConsentStatus
    fhir_version: FhirVersion
    patient: Reference | None
    date: str | None  # when agreed, as written (R4 dateTime, R5 date)
    scope: tuple[Coding, ...]  # R4 only (consentscope)
    categories: tuple[Coding, ...]
    grantors: tuple[Reference, ...]
    grantees: tuple[Reference, ...]  # R5 only
    policies: tuple[ConsentPolicy, ...]
    policy_rule: tuple[Coding, ...]  # R4 only
    policy_texts: tuple[Reference, ...]  # R5 only
    verifications: tuple[ConsentVerification, ...]
    provision: ConsentProvision  # the root: the decision, the period, the exceptions

    @property
    def decision(self) -> ProvisionType:
        """The base decision: R4 root ``provision.type``, R5 ``decision``."""
        return self.provision.type

    @property
    def period(self) -> Period | None:
        """When the consent applies: R4 root ``provision.period``, R5 ``period``."""
        return self.provision.period

    @property
    def agreed_at(self) -> datetime | None:
        """When the consent was agreed (``date``) as its first instant; None if not given."""
        found = _DATE_TIME.fullmatch(self.date or "")
        return _instants(found)[0] if found else None

    def in_force(self, at: datetime) -> bool:
        """Whether the consent binds at the instant ``at``: active, and ``at`` in its period."""
        inside = self.period is None or self.period.contains(at)
        return self.status is ConsentStatus.ACTIVE and inside

    def is_for(self, patient: PatientRef) -> bool:
        """Whether the consent names ``patient``: by its id, or by its business identifier."""
        named = self.patient
        if named is None:
            return False
        wanted = patient.id.removeprefix("Patient/") if patient.id is not None else None
        if wanted is not None and _patient_id(named) == wanted:
            return True
        return patient.identifier_value is not None and (
            named.identifier_system,
            named.identifier_value,
        ) == (patient.identifier_system, patient.identifier_value)


# -- what each version holds ----------------------------------------------------------------

_STATUSES = {
    FhirVersion.R4: ("draft", "proposed", "active", "rejected", "inactive", "entered-in-error"),
    FhirVersion.R5: ("draft", "active", "inactive", "not-done", "entered-in-error", "unknown"),
}
_R4_MARKERS = ("scope", "patient", "performer", "dateTime", "organization", "policy", "policyRule")
_R5_MARKERS = (
    "decision",
    "subject",
    "grantor",
    "grantee",
    "period",
    "date",
    "policyBasis",
    "policyText",
    "regulatoryBasis",
    "manager",
    "controller",
)
_STU3_MARKERS = (
    "except",
    "consentingParty",
    "actor",
    "action",
    "securityLabel",
    "purpose",
    "dataPeriod",
    "data",
    "sourceIdentifier",
)
_CONSENT_ELEMENTS = frozenset(
    {
        "resourceType",
        "meta",
        "language",
        "text",
        "contained",
        "identifier",
        "fhirVersion",
        "status",
        "category",
        "verification",
        "provision",
        "sourceAttachment",
        "sourceReference",
    }
)
_ROOT = {
    FhirVersion.R4: _CONSENT_ELEMENTS | set(_R4_MARKERS),
    FhirVersion.R5: _CONSENT_ELEMENTS | set(_R5_MARKERS),
}
_PROVISION_ELEMENTS = frozenset(
    {
        "period",
        "actor",
        "action",
        "securityLabel",
        "purpose",
        "code",
        "dataPeriod",
        "data",
        "provision",
    }
)
_PROVISION = {
    FhirVersion.R4: _PROVISION_ELEMENTS | {"type", "class"},
    FhirVersion.R5: _PROVISION_ELEMENTS | {"documentType", "resourceType"},
}
_VERIFICATION = {
    FhirVersion.R4: frozenset({"verified", "verifiedWith", "verificationDate"}),
    FhirVersion.R5: frozenset(
        {"verified", "verifiedWith", "verifiedBy", "verificationType", "verificationDate"}
    ),
}
_CODING = frozenset({"system", "version", "code", "display", "userSelected"})
_CONCEPT = frozenset({"coding", "text"})
_REFERENCE = frozenset({"reference", "type", "identifier", "display"})
_IDENTIFIER = frozenset({"use", "type", "system", "value", "period", "assigner"})
_PERIOD = frozenset({"start", "end"})
#: elements refused wherever they appear, and why
_REFUSED = {
    "modifierExtension": "a modifier extension changes the meaning of its element and is not "
    "understood here: remove it, or resolve it into standard elements",
    "implicitRules": "implicitRules changes the meaning of the resource and is not understood "
    "here: give the Consent without it",
    "expression": "a computable expression of what the provision controls is not evaluated "
    "here: state it with actor, action, purpose, class or data instead",
}
_RESOURCE_TYPE_SYSTEMS = frozenset(
    {"http://hl7.org/fhir/resource-types", "http://hl7.org/fhir/fhir-types"}
)
_CORE_PROFILE = re.compile(
    r"http://hl7\.org/fhir/(?:(?P<short>\d+\.\d+)/)?StructureDefinition/[A-Za-z]+(?:\|(?P<full>\S+))?"
)
_VERSION_NAMES = {"R4": FhirVersion.R4, "R4B": FhirVersion.R4, "R5": FhirVersion.R5}
_OLD_VERSION_NAMES = frozenset({"R3", "STU3", "R2", "DSTU2", "R1", "DSTU1"})
_RELEASES = {(4, 0): FhirVersion.R4, (4, 3): FhirVersion.R4, (5, 0): FhirVersion.R5}
_NUMBERED = re.compile(r"(\d+)\.(\d+)(?:\.\d+)?(?:-[\w.]+)?")
_DATE_TIME = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<time>\d{2}:\d{2}:\d{2})(?P<fraction>\.\d+)?(?P<zone>Z|[+-]\d{2}:\d{2}))?)?)?"
)
_PATIENT_ID = re.compile(r"(?:.*/)?Patient/([A-Za-z0-9.\-]{1,64})(?:/_history/[^/]+)?")
#: nesting deeper than this is refused rather than recursed into
_MAX_DEPTH = 32


# -- public readers ------------------------------------------------------------------------


def read_consent(
    path: Path, *, fhir_version: FhirVersion | str | None = None, patient: PatientRef | None = None
) -> Consent:
    """The Consent in the JSON file ``path``; errors name the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConsentError(f"cannot read the file: {exc.strerror}", source=str(path)) from exc
    return consent_from_json(data, source=str(path), fhir_version=fhir_version, patient=patient)


def consent_from_json(
    data: str | bytes,
    *,
    source: str | None = None,
    fhir_version: FhirVersion | str | None = None,
    patient: PatientRef | None = None,
) -> Consent:
    """The Consent in JSON text or bytes; see :func:`consent_from_dict`."""
    try:
        resource = json.loads(data, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise ConsentError(
            f"not valid JSON ({exc.msg}, column {exc.colno}): give a FHIR Consent as JSON",
            source=source or "Consent",
            line=exc.lineno,
        ) from exc
    except (ValueError, RecursionError) as exc:  # bad UTF-8, a duplicate key, absurd nesting
        raise ConsentError(
            f"not readable JSON ({exc}): give a FHIR Consent as UTF-8 JSON",
            source=source or "Consent",
        ) from exc
    return consent_from_dict(resource, source=source, fhir_version=fhir_version, patient=patient)


def consent_from_dict(
    resource: Any,
    *,
    source: str | None = None,
    fhir_version: FhirVersion | str | None = None,
    patient: PatientRef | None = None,
) -> Consent:
    """The Consent in a parsed JSON resource, R4 or R5 (detected unless ``fhir_version`` says).

    With ``patient``, a Consent that does not name that patient is refused. Errors name
    ``source`` (a file), else the Consent by its id.
    """
    named = source or _name(resource)
    kind = (
        resource.get("resourceType") if isinstance(resource, Mapping) else type(resource).__name__
    )
    if kind != "Consent":
        raise ConsentError(
            f"not a Consent (resourceType {kind!r}): give a FHIR Consent resource",
            source=named,
            field="resourceType",
        )
    reader = _Reader(named, _version(named, resource, fhir_version))
    consent = reader.consent(resource)
    if patient is not None:
        reader.check_patient(consent, patient)
    return consent


# -- version -------------------------------------------------------------------------------


def _version(source: str, resource: Mapping[str, Any], requested: str | None) -> FhirVersion:
    """The version to read: the caller's, else the declared one, else the detected one."""
    declared = _declared(source, resource)
    if requested is not None:
        return _release(source, str(requested), "fhir_version")
    return declared or _detected(source, resource)


def _declared(source: str, resource: Mapping[str, Any]) -> FhirVersion | None:
    """The version named by a core profile in meta.profile or by fhirVersion, if any."""
    claims = []
    meta = resource.get("meta")
    profiles = meta.get("profile") if isinstance(meta, Mapping) else None
    for index, canonical in enumerate(profiles if isinstance(profiles, list) else []):
        found = _CORE_PROFILE.fullmatch(canonical) if isinstance(canonical, str) else None
        if found and (found["short"] or found["full"]):
            claims.append((f"Consent.meta.profile[{index}]", found["short"] or found["full"]))
    if "fhirVersion" in resource:
        claims.append(("Consent.fhirVersion", str(resource["fhirVersion"])))
    versions = {_release(source, text, where) for where, text in claims}
    if len(versions) > 1:
        raise ConsentError(
            "declares both R4 and R5: keep the profile of the version it is written in",
            source=source,
            field=claims[0][0],
        )
    return versions.pop() if versions else None


def _release(source: str, text: str, where: str) -> FhirVersion:
    """R4 or R5 from a version as written ("4.0.1", "R5"); anything else is refused."""
    name = text.strip().upper()
    numbered = _NUMBERED.fullmatch(name)
    release = (int(numbered[1]), int(numbered[2])) if numbered else None
    found = _VERSION_NAMES.get(name) or _RELEASES.get(release or (0, 0))
    if found is not None:
        return found
    old = name in _OLD_VERSION_NAMES or (release is not None and release[0] < 4)
    why = "is R3 or earlier, whose Consent has another shape" if old else "is not known here"
    raise ConsentError(
        f"FHIR version {text!r} {why}: only R4 (4.0.1; R4B 4.3.0) and R5 (5.0.0) Consents are "
        "read, so convert it to one of them",
        source=source,
        field=where,
    )


def _detected(source: str, resource: Mapping[str, Any]) -> FhirVersion:
    """R4 or R5 by the elements present; STU3 elements, both versions' or neither's refused."""
    stu3 = [key for key in _STU3_MARKERS if key in resource]
    if stu3:
        raise ConsentError(
            f"has STU3 elements ({', '.join(stu3)}): R3 Consents are not read, so convert it to "
            "R4 or R5",
            source=source,
            field=f"Consent.{stu3[0]}",
        )
    r4 = [key for key in _R4_MARKERS if key in resource]
    r5 = [key for key in _R5_MARKERS if key in resource]
    if isinstance(resource.get("provision"), Mapping):
        r4.append("provision")
    elif "provision" in resource:
        r5.append("provision")
    if r4 and r5:
        raise ConsentError(
            f"mixes R4 elements ({', '.join(r4)}) with R5 elements ({', '.join(r5)}): write it "
            "in one version, or pass fhir_version",
            source=source,
            field=f"Consent.{r5[0]}",
        )
    if not r4 and not r5:
        raise ConsentError(
            "cannot tell R4 from R5: it has none of R4's elements (scope, patient, performer...) "
            "nor R5's (decision, subject, grantor...); pass fhir_version",
            source=source,
            field="Consent",
        )
    return FhirVersion.R4 if r4 else FhirVersion.R5


# -- the reader ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reader:
    """Reads one Consent of a known version; every error names the source and the element."""

    source: str
    version: FhirVersion

    def error(self, where: str, message: str) -> ConsentError:
        """A ConsentError at the element ``where``."""
        return ConsentError(message, source=self.source, field=where)

    @property
    def r4(self) -> bool:
        """Whether the R4 shape is read."""
        return self.version is FhirVersion.R4

    # -- the resource --

    def consent(self, node: Mapping[str, Any]) -> Consent:
        """The whole resource."""
        self.elements(node, "Consent", _ROOT[self.version])
        patient = "patient" if self.r4 else "subject"
        grantor = "performer" if self.r4 else "grantor"
        return Consent(
            id=self.text(node, "id", "Consent"),
            status=self.status(node),
            fhir_version=self.version,
            patient=self.reference(node.get(patient), f"Consent.{patient}"),
            date=self.date(node),
            scope=self.required_concept(node, "scope", "Consent") if self.r4 else (),
            categories=self.categories(node),
            grantors=self.references(node, grantor, "Consent"),
            grantees=self.references(node, "grantee", "Consent"),
            policies=self.policies(node),
            policy_rule=self.concept(node.get("policyRule"), "Consent.policyRule"),
            policy_texts=self.references(node, "policyText", "Consent"),
            verifications=tuple(
                self.verification(item, f"Consent.verification[{index}]")
                for index, item in enumerate(self.array(node, "verification", "Consent"))
            ),
            provision=self.r4_root(node) if self.r4 else self.r5_root(node),
        )

    def status(self, node: Mapping[str, Any]) -> ConsentStatus:
        """Consent.status, required and one of the version's codes."""
        value = self.text(node, "status", "Consent")
        allowed = _STATUSES[self.version]
        if value is None:
            raise self.error(
                "Consent.status", f"the Consent has no status: state one of {', '.join(allowed)}"
            )
        if value not in allowed:
            raise self.error(
                "Consent.status",
                f"unknown status {value!r} for an {self.version} Consent: use one of "
                f"{', '.join(allowed)}",
            )
        return ConsentStatus(value)

    def date(self, node: Mapping[str, Any]) -> str | None:
        """R4 dateTime or R5 date, checked and kept as written."""
        key = "dateTime" if self.r4 else "date"
        value = self.text(node, key, "Consent")
        if value is not None:
            self.instants(value, f"Consent.{key}", date_only=not self.r4)
        return value

    def categories(self, node: Mapping[str, Any]) -> tuple[Coding, ...]:
        """Consent.category; R4 requires at least one."""
        found = self.concepts(node, "category", "Consent")
        if self.r4 and not found:
            raise self.error(
                "Consent.category",
                "an R4 Consent needs a category (1..*), e.g. LOINC 59284-0 Patient Consent",
            )
        return found

    def policies(self, node: Mapping[str, Any]) -> tuple[ConsentPolicy, ...]:
        """R4 policy[] or R5 policyBasis, each naming a policy."""
        if self.r4:
            items = [
                (item, f"Consent.policy[{index}]")
                for index, item in enumerate(self.array(node, "policy", "Consent"))
            ]
        else:
            items = [(node["policyBasis"], "Consent.policyBasis")] if "policyBasis" in node else []
        return tuple(self.policy(item, where) for item, where in items)

    def policy(self, node: Any, where: str) -> ConsentPolicy:
        """One policy: R4 (authority, uri) or R5 (url, reference)."""
        item = self.object(node, where)
        known = {"authority", "uri"} if self.r4 else {"url", "reference"}
        self.elements(item, where, frozenset(known))
        found = ConsentPolicy(
            uri=self.text(item, "uri" if self.r4 else "url", where),
            authority=self.text(item, "authority", where),
            reference=self.reference(item.get("reference"), f"{where}.reference"),
        )
        if found == ConsentPolicy():
            raise self.error(where, "names no policy: give its uri (R4) or url (R5)")
        return found

    def verification(self, node: Any, where: str) -> ConsentVerification:
        """One Consent.verification."""
        item = self.object(node, where)
        self.elements(item, where, _VERIFICATION[self.version])
        verified = item.get("verified")
        if not isinstance(verified, bool):
            raise self.error(f"{where}.verified", "verified must be true or false (1..1)")
        written = item.get("verificationDate")
        dates = (
            [written]
            if self.r4 and written is not None
            else self.array(item, "verificationDate", where)
        )
        for index, value in enumerate(dates):
            at = f"{where}.verificationDate" + ("" if self.r4 else f"[{index}]")
            if not isinstance(value, str):
                raise self.error(at, "a verification date must be a dateTime string")
            self.instants(value, at)
        return ConsentVerification(
            verified=verified,
            verified_with=self.reference(item.get("verifiedWith"), f"{where}.verifiedWith"),
            verified_by=self.reference(item.get("verifiedBy"), f"{where}.verifiedBy"),
            type=self.concept(item.get("verificationType"), f"{where}.verificationType"),
            dates=tuple(dates),
        )

    # -- provisions --

    def r4_root(self, node: Mapping[str, Any]) -> ConsentProvision:
        """R4's one provision, which must state the decision in its type."""
        if "provision" not in node:
            raise self.error(
                "Consent.provision",
                "the Consent has no provision, so no decision: give provision.type permit or deny",
            )
        return self.provision(node["provision"], "Consent.provision", None, 0)

    def r5_root(self, node: Mapping[str, Any]) -> ConsentProvision:
        """R5's decision, period and provisions, as one root provision."""
        value = self.text(node, "decision", "Consent")
        if value is None:
            raise self.error(
                "Consent.decision",
                "the Consent has no decision, so neither it nor its provisions can be read as "
                "permit or deny: give decision permit or deny",
            )
        decision = self.provision_type(value, "Consent.decision")
        return ConsentProvision(
            type=decision,
            period=self.period(node, "period", "Consent"),
            provisions=self.children(node, "Consent", decision, 0),
        )

    def provision(
        self, node: Any, where: str, implied: ProvisionType | None, depth: int
    ) -> ConsentProvision:
        """One provision and its exceptions; ``implied`` is the type R5 derives from the parent."""
        item = self.object(node, where)
        if depth > _MAX_DEPTH:
            raise self.error(where, f"provisions nest deeper than {_MAX_DEPTH} levels")
        self.elements(item, where, _PROVISION[self.version])
        kind = implied or self.provision_type(self.text(item, "type", where), f"{where}.type")
        classes = [*self.codings(item, "class", where), *self.codings(item, "documentType", where)]
        return ConsentProvision(
            type=kind,
            period=self.period(item, "period", where),
            actors=tuple(
                self.actor(actor, f"{where}.actor[{index}]")
                for index, actor in enumerate(self.array(item, "actor", where))
            ),
            actions=self.concepts(item, "action", where),
            security_labels=self.codings(item, "securityLabel", where),
            purposes=self.codings(item, "purpose", where),
            document_types=tuple(c for c in classes if c.system not in _RESOURCE_TYPE_SYSTEMS),
            resource_types=self.resource_types(item, classes, where),
            codes=self.concepts(item, "code", where),
            data_period=self.period(item, "dataPeriod", where),
            data=tuple(
                self.data(data, f"{where}.data[{index}]")
                for index, data in enumerate(self.array(item, "data", where))
            ),
            provisions=self.children(item, where, kind, depth),
        )

    def children(
        self, node: Mapping[str, Any], where: str, parent: ProvisionType, depth: int
    ) -> tuple[ConsentProvision, ...]:
        """The nested provisions; in R5 each is the opposite of ``parent``."""
        implied = None if self.r4 else parent.opposite
        return tuple(
            self.provision(child, f"{where}.provision[{index}]", implied, depth + 1)
            for index, child in enumerate(self.array(node, "provision", where))
        )

    def provision_type(self, value: str | None, where: str) -> ProvisionType:
        """permit or deny; a missing or other value is refused."""
        if value is None:
            raise self.error(where, "the provision has no type: state permit or deny")
        try:
            return ProvisionType(value)
        except ValueError:
            raise self.error(where, f"type {value!r} is neither 'permit' nor 'deny'") from None

    def resource_types(
        self, node: Mapping[str, Any], classes: list[Coding], where: str
    ) -> tuple[str, ...]:
        """Resource-type names from R4 class or R5 resourceType codings."""
        typed = self.codings(node, "resourceType", where)
        for index, coding in enumerate(typed):
            if coding.system not in _RESOURCE_TYPE_SYSTEMS:
                raise self.error(
                    f"{where}.resourceType[{index}]",
                    f"resource type from system {coding.system!r}: use "
                    "http://hl7.org/fhir/fhir-types",
                )
        found = [*classes, *typed]
        return tuple(c.code for c in found if c.system in _RESOURCE_TYPE_SYSTEMS)

    def actor(self, node: Any, where: str) -> ProvisionActor:
        """One provision.actor; R4 requires role and reference, R5 at least one."""
        item = self.object(node, where)
        self.elements(item, where, frozenset({"role", "reference"}))
        role = self.concept(item.get("role"), f"{where}.role")
        reference = self.reference(item.get("reference"), f"{where}.reference")
        if self.r4 and not role:
            raise self.error(f"{where}.role", "the actor has no role: code how it is involved")
        if self.r4 and reference is None:
            raise self.error(f"{where}.reference", "the actor has no reference: say who it is")
        if not role and reference is None:
            raise self.error(where, "the actor names neither a role nor a reference")
        return ProvisionActor(role, reference)

    def data(self, node: Any, where: str) -> ProvisionData:
        """One provision.data: a meaning and a reference, both required."""
        item = self.object(node, where)
        self.elements(item, where, frozenset({"meaning", "reference"}))
        meaning = self.text(item, "meaning", where)
        reference = self.reference(item.get("reference"), f"{where}.reference")
        if meaning is None:
            raise self.error(f"{where}.meaning", "the data has no meaning: say how it matches")
        if meaning not in {m.value for m in DataMeaning}:
            raise self.error(
                f"{where}.meaning",
                f"meaning {meaning!r} is not one of {', '.join(m.value for m in DataMeaning)}",
            )
        if reference is None:
            raise self.error(f"{where}.reference", "the data has no reference: name the resource")
        return ProvisionData(DataMeaning(meaning), reference)

    # -- data types --

    def period(self, node: Mapping[str, Any], key: str, where: str) -> Period | None:
        """A Period as instants; an end before the start is refused."""
        if key not in node:
            return None
        at = f"{where}.{key}"
        item = self.object(node[key], at)
        self.elements(item, at, _PERIOD)
        start, end = (self.text(item, edge, at) for edge in ("start", "end"))
        first = self.instants(start, f"{at}.start")[0] if start is not None else None
        after = self.instants(end, f"{at}.end")[1] if end is not None else None
        if first is not None and after is not None and first >= after:
            raise self.error(at, f"the period ends ({end}) before it starts ({start}): correct it")
        return Period(first, after)

    def instants(
        self, text: str, where: str, *, date_only: bool = False
    ) -> tuple[datetime, datetime]:
        """A FHIR date or dateTime as its first instant and the first instant after it."""
        found = _DATE_TIME.fullmatch(text)
        if found is None or (date_only and found["time"]):
            form = "YYYY, YYYY-MM or YYYY-MM-DD" + ("" if date_only else ", or with a time zone")
            raise self.error(
                where, f"{text!r} is not a FHIR {'date' if date_only else 'dateTime'} ({form})"
            )
        try:
            return _instants(found)
        except ValueError as exc:
            raise self.error(where, f"{text!r} is not a valid date: {exc}") from exc

    def references(self, node: Mapping[str, Any], key: str, where: str) -> tuple[Reference, ...]:
        """A list of References; each must name something."""
        found = (
            self.reference(item, f"{where}.{key}[{index}]")
            for index, item in enumerate(self.array(node, key, where))
        )
        return tuple(r for r in found if r is not None)

    def reference(self, node: Any, where: str) -> Reference | None:
        """A Reference (None when absent) naming a resource literally or by identifier."""
        if node is None:
            return None
        item = self.object(node, where)
        self.elements(item, where, _REFERENCE)
        system = value = None
        if "identifier" in item:
            identifier = self.object(item["identifier"], f"{where}.identifier")
            self.elements(identifier, f"{where}.identifier", _IDENTIFIER)
            system = self.text(identifier, "system", f"{where}.identifier")
            value = self.text(identifier, "value", f"{where}.identifier")
        literal = self.text(item, "reference", where)
        if literal is None and (system is None or value is None):
            raise self.error(where, "the reference names nothing: give reference or identifier")
        return Reference(
            literal,
            self.text(item, "type", where),
            system,
            value,
            self.text(item, "display", where),
        )

    def required_concept(self, node: Mapping[str, Any], key: str, where: str) -> tuple[Coding, ...]:
        """A CodeableConcept the version requires."""
        if key not in node:
            raise self.error(f"{where}.{key}", f"the {self.version} Consent has no {key} (1..1)")
        return self.concept(node[key], f"{where}.{key}")

    def concepts(self, node: Mapping[str, Any], key: str, where: str) -> tuple[Coding, ...]:
        """The codings of a list of CodeableConcepts."""
        return tuple(
            coding
            for index, item in enumerate(self.array(node, key, where))
            for coding in self.concept(item, f"{where}.{key}[{index}]")
        )

    def concept(self, node: Any, where: str) -> tuple[Coding, ...]:
        """The codings of one CodeableConcept (none when absent); text alone is refused."""
        if node is None:
            return ()
        item = self.object(node, where)
        self.elements(item, where, _CONCEPT)
        found = self.codings(item, "coding", where)
        if not found:
            raise self.error(where, "has no coding, and text cannot be matched: add a coding")
        return found

    def codings(self, node: Mapping[str, Any], key: str, where: str) -> tuple[Coding, ...]:
        """A list of Codings, each with a system and a code."""
        return tuple(
            self.coding(item, f"{where}.{key}[{index}]")
            for index, item in enumerate(self.array(node, key, where))
        )

    def coding(self, node: Any, where: str) -> Coding:
        """One Coding."""
        item = self.object(node, where)
        self.elements(item, where, _CODING)
        system, code = self.text(item, "system", where), self.text(item, "code", where)
        if not system or not code:
            raise self.error(where, "a coding needs both system and code")
        return Coding(system, code, self.text(item, "display", where))

    # -- JSON shapes --

    def elements(self, node: Mapping[str, Any], where: str, known: frozenset[str]) -> None:
        """Refuse what reading would skip: modifier elements and unknown ones."""
        for key in node:
            name = key.removeprefix("_")
            if name in _REFUSED:
                raise self.error(f"{where}.{name}", _REFUSED[name])
            if name not in known and name not in {"id", "extension"}:
                other = FhirVersion.R5 if self.r4 else FhirVersion.R4
                hint = f" (an {other} element)" if _is_element_of(other, where, name) else ""
                raise self.error(
                    f"{where}.{key}",
                    f"unknown element {key!r}{hint} in an {self.version} Consent: remove it, or "
                    "pass the fhir_version it is written in",
                )

    def object(self, node: Any, where: str) -> Mapping[str, Any]:
        """A JSON object."""
        if not isinstance(node, Mapping):
            raise self.error(where, f"expected a JSON object, found {type(node).__name__}")
        return node

    def array(self, node: Mapping[str, Any], key: str, where: str) -> list[Any]:
        """A JSON array (empty when absent)."""
        value = node.get(key, [])
        if not isinstance(value, list):
            raise self.error(f"{where}.{key}", f"expected a JSON array for {key}")
        return value

    def text(self, node: Mapping[str, Any], key: str, where: str) -> str | None:
        """A JSON string (None when absent)."""
        value = node.get(key)
        if value is not None and not isinstance(value, str):
            raise self.error(f"{where}.{key}", f"expected a string for {key}")
        return value

    # -- the patient --

    def check_patient(self, consent: Consent, expected: PatientRef) -> None:
        """Refuse a Consent that does not name the expected patient."""
        where = "Consent.patient" if self.r4 else "Consent.subject"
        wanted = expected.id or f"{expected.identifier_system}|{expected.identifier_value}"
        named = consent.patient
        if named is None:
            raise self.error(where, f"the Consent names no patient, so not {wanted}")
        if not consent.is_for(expected):
            shown = named.reference or f"{named.identifier_system}|{named.identifier_value}"
            raise self.error(
                where, f"the Consent is for {shown}, not {wanted}: give this patient's Consent"
            )


def _is_element_of(version: FhirVersion, where: str, name: str) -> bool:
    """Whether ``name`` is an element of ``version`` at the place ``where``."""
    if where == "Consent":
        return name in _ROOT[version]
    if where.rsplit(".", 1)[-1].startswith("provision"):
        return name in _PROVISION[version]
    return False


def _instants(found: re.Match[str]) -> tuple[datetime, datetime]:
    """First instant of a parsed date or dateTime, and the first instant after its precision."""
    year, month, day = (int(found[part] or 1) for part in ("year", "month", "day"))
    if found["time"]:
        fraction = (found["fraction"] or "")[:7]
        zone = "+00:00" if found["zone"] == "Z" else found["zone"]
        first = datetime.fromisoformat(
            f"{year:04d}-{month:02d}-{day:02d}T{found['time']}{fraction}{zone}"
        )
        step = timedelta(seconds=10.0 ** -max(len(fraction) - 1, 0))
        return first, first + max(step, timedelta(microseconds=1))
    first = datetime(year, month, day, tzinfo=UTC)
    if found["day"]:
        return first, first + timedelta(days=1)
    if found["month"]:
        return first, first.replace(year=year + month // 12, month=month % 12 + 1)
    return first, first.replace(year=year + 1)


def _patient_id(named: Reference) -> str | None:
    """The Patient id of a literal reference (relative or absolute), else None."""
    found = _PATIENT_ID.fullmatch(named.reference or "")
    return found[1] if found else None


def _name(resource: Any) -> str:
    """The Consent as errors name it when no file is known."""
    rid = resource.get("id") if isinstance(resource, Mapping) else None
    return f"Consent/{rid}" if isinstance(rid, str) else "Consent"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a key given twice is refused (JSON parsers differ on which wins)."""
    found = dict(pairs)
    if len(found) != len(pairs):
        keys = [key for key, _ in pairs]
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return found
