"""De-identified copies of one patient's resources, for a research disclosure (purpose HRESCH).

Policy decided here, after the identifiers HIPAA's Safe Harbor method lists
(45 CFR 164.514(b)(2), https://www.ecfr.gov/current/title-45/part-164/section-164.514):

* **The patient becomes a pseudonym**: ``Patient/`` and the HMAC-SHA256 (hex) of the
  patient's reference under the deployment's secret key, the same for the patient in every
  resource and every run with that key. A reference to any other Patient is refused.
* **Every other id is pseudonymous too.** The adapter's ids are UUIDv5 of a public namespace and
  the report key, which names the patient (:mod:`adapter.fhir.identifiers`), so they could be
  recomputed from a guess. Resource ids and the ids in references (``urn:uuid:``, ``Type/id``)
  become UUIDs (version 8, RFC 9562 §5.8) of the HMAC of the id: links between the disclosed
  resources still resolve. A literal reference loses its base URL and version.
* **Removed, by R4 type:** Identifier (164.514(b)(2)(i)(G)-(M), (R)), Narrative (``text``),
  Annotation (``note``), HumanName, Address, ContactPoint (names, places, phone, fax, e-mail)
  and Signature (made over the identified content), wherever the type puts them; a Reference's
  ``display`` (a name); an Attachment's data, URL, title and hash (a rendered report, a file
  name); an AuditEvent's outcome description (it names the result by its original id), its
  agents' names, alternative ids and network addresses (IP addresses), and its entities' names
  and queries. An extension left without a value goes too. Provenance.policy, a uri naming
  the authorizing Consent, is made pseudonymous like a reference.
* **Dates are shifted**, not removed, by a per-patient offset of 1 to 365 days either way, from
  an HMAC of its own (so the disclosed pseudonym does not give it away). Each value keeps its
  precision: a day-precise value moves by the offset (its time and zone kept), a month by the
  offset in whole months, a year in whole years (both rounded to nearest), so the shift is
  undone by the opposite offset.
* **The dates are known by type, not shape.** :data:`ELEMENT_TYPES` gives, for each resource
  type the adapter emits (Observation, DiagnosticReport, Procedure, DocumentReference, Task,
  Provenance, AuditEvent) and the types within them, the R4 type of every element on the way
  to a date, dateTime, instant, Reference, Attachment or a removed type. It was derived from
  the StructureDefinitions of the R4 core package 4.0.1 and is checked against them by the
  tests; ``extension`` and ``modifierExtension`` are walked everywhere, ``value[x]`` typed by
  its JSON name. A resource type not in the table is refused.
* **The result is labelled** v3 ObservationValue ``PSEUDED`` "pseudonymized" (a
  SecurityIntegrityObservationValue of the R4 ``security-labels`` binding): the key holder can
  re-identify. The input's labels stay.

This is **not** Safe Harbor de-identification: Safe Harbor removes every element of a date but
the year (164.514(b)(2)(i)(C)), and its re-identification code must not be derived from
information about the individual (164.514(c)), which a keyed hash of the patient's reference
is. The output fits an expert determination (164.514(b)(1)) or a limited data set with a data
use agreement (164.514(e)); the deployment decides which. Free text the adapter writes
(e.g. ``DiagnosticReport.conclusion``, the regions' description with the BED file names) is
kept, and variant data identify a person by themselves.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Final

from ..errors import PolicyError
from ..fhir.identifiers import patient_reference
from ..model import PatientRef
from .consent import Coding
from .labels import relabelled

__all__ = [
    "ELEMENT_TYPES",
    "LABEL_PSEUDONYMIZED",
    "OBSERVATION_VALUE",
    "Deidentifier",
    "shifted",
]

OBSERVATION_VALUE: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
LABEL_PSEUDONYMIZED: Final = Coding(OBSERVATION_VALUE, "PSEUDED", "pseudonymized")

_ANY_VALUE: Final = (
    "date|dateTime|instant|Address|Annotation|Attachment|ContactPoint|HumanName|Identifier|"
    "Period|Reference|Signature|Timing|ContactDetail|Contributor|DataRequirement|"
    "RelatedArtifact|TriggerDefinition|UsageContext|Dosage|Meta"
)
#: R4 types of the elements on the way to the types rewritten here, by owner (a type or a
#: backbone element's path); choices as ``name[x]`` with their types joined by ``|``
ELEMENT_TYPES: Final[Mapping[str, Mapping[str, str]]] = {
    "Observation": {
        "meta": "Meta", "text": "Narrative", "identifier": "Identifier", "basedOn": "Reference",
        "partOf": "Reference", "subject": "Reference", "focus": "Reference",
        "encounter": "Reference", "effective[x]": "dateTime|Period|Timing|instant",
        "issued": "instant", "performer": "Reference", "value[x]": "dateTime|Period",
        "note": "Annotation", "specimen": "Reference", "device": "Reference",
        "hasMember": "Reference", "derivedFrom": "Reference", "component": "Observation.component",
    },
    "Observation.component": {"value[x]": "dateTime|Period"},
    "DiagnosticReport": {
        "meta": "Meta", "text": "Narrative", "identifier": "Identifier", "basedOn": "Reference",
        "subject": "Reference", "encounter": "Reference", "effective[x]": "dateTime|Period",
        "issued": "instant", "performer": "Reference", "resultsInterpreter": "Reference",
        "specimen": "Reference", "result": "Reference", "imagingStudy": "Reference",
        "media": "DiagnosticReport.media", "presentedForm": "Attachment",
    },
    "DiagnosticReport.media": {"link": "Reference"},
    "Procedure": {
        "meta": "Meta", "text": "Narrative", "identifier": "Identifier", "basedOn": "Reference",
        "partOf": "Reference", "subject": "Reference", "encounter": "Reference",
        "performed[x]": "dateTime|Period", "recorder": "Reference", "asserter": "Reference",
        "performer": "Procedure.performer", "location": "Reference",
        "reasonReference": "Reference", "report": "Reference", "complicationDetail": "Reference",
        "note": "Annotation", "focalDevice": "Procedure.focalDevice", "usedReference": "Reference",
    },
    "Procedure.performer": {"actor": "Reference", "onBehalfOf": "Reference"},
    "Procedure.focalDevice": {"manipulated": "Reference"},
    "DocumentReference": {
        "meta": "Meta", "text": "Narrative", "masterIdentifier": "Identifier",
        "identifier": "Identifier", "subject": "Reference", "date": "instant",
        "author": "Reference", "authenticator": "Reference", "custodian": "Reference",
        "relatesTo": "DocumentReference.relatesTo", "content": "DocumentReference.content",
        "context": "DocumentReference.context",
    },
    "DocumentReference.relatesTo": {"target": "Reference"},
    "DocumentReference.content": {"attachment": "Attachment"},
    "DocumentReference.context": {
        "encounter": "Reference", "period": "Period", "sourcePatientInfo": "Reference",
        "related": "Reference",
    },
    "Task": {
        "meta": "Meta", "text": "Narrative", "identifier": "Identifier", "basedOn": "Reference",
        "groupIdentifier": "Identifier", "partOf": "Reference", "focus": "Reference",
        "for": "Reference", "encounter": "Reference", "executionPeriod": "Period",
        "authoredOn": "dateTime", "lastModified": "dateTime", "requester": "Reference",
        "owner": "Reference", "location": "Reference", "reasonReference": "Reference",
        "insurance": "Reference", "note": "Annotation", "relevantHistory": "Reference",
        "restriction": "Task.restriction", "input": "Task.input", "output": "Task.output",
    },
    "Task.restriction": {"period": "Period", "recipient": "Reference"},
    "Task.input": {"value[x]": _ANY_VALUE},
    "Task.output": {"value[x]": _ANY_VALUE},
    "Provenance": {
        "meta": "Meta", "text": "Narrative", "target": "Reference",
        "occurred[x]": "Period|dateTime", "recorded": "instant", "location": "Reference",
        "agent": "Provenance.agent", "entity": "Provenance.entity", "signature": "Signature",
    },
    "Provenance.agent": {"who": "Reference", "onBehalfOf": "Reference"},
    "Provenance.entity": {"what": "Reference", "agent": "Provenance.agent"},
    "AuditEvent": {
        "meta": "Meta", "text": "Narrative", "period": "Period", "recorded": "instant",
        "agent": "AuditEvent.agent", "source": "AuditEvent.source", "entity": "AuditEvent.entity",
    },
    "AuditEvent.agent": {"who": "Reference", "location": "Reference"},
    "AuditEvent.source": {"observer": "Reference"},
    "AuditEvent.entity": {"what": "Reference"},
    "Extension": {"value[x]": _ANY_VALUE},
    "Meta": {"lastUpdated": "instant"},
    "Attachment": {"creation": "dateTime"},
    "Period": {"start": "dateTime", "end": "dateTime"},
    "Timing": {"event": "dateTime", "repeat": "Timing.repeat"},
    "Timing.repeat": {"bounds[x]": "Period"},
    "ContactDetail": {"telecom": "ContactPoint"},
    "Contributor": {"contact": "ContactDetail"},
    "DataRequirement": {"subject[x]": "Reference", "dateFilter": "DataRequirement.dateFilter"},
    "DataRequirement.dateFilter": {"value[x]": "dateTime|Period"},
    "RelatedArtifact": {"document": "Attachment"},
    "TriggerDefinition": {"timing[x]": "Timing|Reference|date|dateTime", "data": "DataRequirement"},
    "UsageContext": {"value[x]": "Reference"},
    "Dosage": {"timing": "Timing"},
}  # fmt: skip
#: the resource types de-identified here: those the adapter emits
_RESOURCES: Final = (
    "AuditEvent", "DiagnosticReport", "DocumentReference", "Observation", "Procedure",
    "Provenance", "Task",
)  # fmt: skip
_DATES: Final = frozenset({"date", "dateTime", "instant"})
_REMOVED: Final = frozenset(
    {"Identifier", "Narrative", "Annotation", "HumanName", "Address", "ContactPoint", "Signature"}
)
#: elements of other types withheld: names, alternative ids, network addresses, queries, and
#: the outcome's description (audit.py names the result there by its original reference)
_WITHHELD: Final = {
    "AuditEvent": frozenset({"outcomeDesc"}),
    "AuditEvent.agent": frozenset({"altId", "name"}),
    "AuditEvent.agent.network": frozenset({"address"}),
    "AuditEvent.entity": frozenset({"name", "query"}),
}
#: uri elements that may hold a reference, pseudonymous like one (the authorizing Consent)
_REFERENCE_URIS: Final = {"Provenance": frozenset({"policy"})}
_EXTENSIONS: Final = frozenset({"extension", "modifierExtension"})
#: elements typed alike wherever they are (a primitive's ``_name`` is an Element)
_GENERIC: Final = {
    "extension": "Extension",
    "modifierExtension": "Extension",
    "contained": "Resource",
}
#: what an Attachment keeps: nothing that shows or locates its content
_ATTACHMENT_KEPT: Final = ("extension", "contentType", "language", "size", "creation")


def _json_keys(elements: Mapping[str, str]) -> dict[str, str]:
    """Each element's JSON names and types: a choice ``value[x]`` as ``valueDateTime`` …"""
    found = {}
    for name, types in elements.items():
        for kind in types.split("|"):
            stem = name.removesuffix("[x]")
            found[stem if stem == name else stem + kind[0].upper() + kind[1:]] = kind
    return found


_KEYS: Final = {owner: _json_keys(elements) for owner, elements in ELEMENT_TYPES.items()}
_LITERAL: Final = re.compile(
    r"(?:https?://\S+/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/\S+)?"
)
_UUID_REF: Final = "urn:uuid:"
_DATE: Final = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})(?P<rest>T.+)?)?)?"
)
_DAYS_A_YEAR: Final = 365.2425  # Gregorian mean
_MAX_OFFSET: Final = 365


def shifted(value: str, days: int, where: str | None = None) -> str:
    """A FHIR date, dateTime or instant moved by ``days``, at its own precision: a year by
    the whole years nearest ``days``, a month by the whole months nearest, a day (with its
    time and zone as they were) by ``days``. ``where`` names the element in errors."""
    found = _DATE.fullmatch(value)
    first = _first_day(found) if found is not None else None
    if found is None or first is None:
        raise PolicyError(f"{value!r} is not a FHIR date, dateTime or instant", field=where)
    if found["month"] is None:
        return _year(first.year + round(days / _DAYS_A_YEAR), value, where)
    if found["day"] is None:
        months = first.year * 12 + first.month - 1 + round(days * 12 / _DAYS_A_YEAR)
        return f"{_year(months // 12, value, where)}-{months % 12 + 1:02d}"
    try:
        moved = first + timedelta(days=days)
    except OverflowError as exc:
        raise PolicyError(f"{value!r} shifted leaves FHIR's years 0001-9999", field=where) from exc
    return f"{moved.isoformat()}{found['rest'] or ''}"


def _first_day(found: re.Match[str]) -> date | None:
    """The first day a parsed value covers; None when it names no day of the calendar."""
    try:
        return date(int(found["year"]), int(found["month"] or 1), int(found["day"] or 1))
    except ValueError:
        return None


def _year(year: int, value: str, where: str | None) -> str:
    if not 1 <= year <= 9999:
        raise PolicyError(f"{value!r} shifted leaves FHIR's years 0001-9999", field=where)
    return f"{year:04d}"


class Deidentifier:
    """Pseudonymous, date-shifted copies of one patient's resources, under a secret key.

    ``key`` is the deployment's secret: at least 32 random bytes, the length of HMAC-SHA256's
    output, below which RFC 2104 §3 discourages keys. Whoever holds it can re-identify; with
    another key every pseudonym and offset changes.
    """

    def __init__(self, key: bytes, patient: PatientRef) -> None:
        if len(key) < 32:
            raise PolicyError(
                f"the de-identification key has {len(key)} bytes; give at least 32 random bytes",
                field="key",
            )
        self._key = key
        self._patient = patient
        reference = _patient_key(patient)
        #: the patient's pseudonymous reference, ``Patient/`` and 64 hex digits
        self.pseudonym: Final = f"Patient/{self._mac(reference).hex()}"
        #: the patient's date shift in days, 1 to 365 either way
        self.offset: Final = _offset(self._mac(f"date-shift|{reference}"))

    def deidentified(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """The de-identified copy of ``resource``, labelled pseudonymized; the input is kept."""
        found = self._resource(resource, None)
        if isinstance(resource.get("id"), str):
            found["id"] = self._id(resource["id"])
        return relabelled(found, (LABEL_PSEUDONYMIZED,), (LABEL_PSEUDONYMIZED,))

    def _resource(self, resource: Any, where: str | None) -> dict[str, Any]:
        """A resource (or a contained one, its id kept for its ``#id`` references) rewritten;
        ``where`` is a contained one's path."""
        kind = resource.get("resourceType") if isinstance(resource, Mapping) else None
        if kind not in _RESOURCES:
            raise PolicyError(
                f"cannot de-identify a {kind}: its identifying elements are not known here; "
                f"only {', '.join(_RESOURCES)} are",
                field=f"{where or kind}.resourceType",
            )
        return self._element(resource, kind, where or kind) or {}

    # ---- hashing ---------------------------------------------------------------------------

    def _mac(self, text: str) -> bytes:
        return hmac.new(self._key, text.encode(), hashlib.sha256).digest()

    def _id(self, rid: str) -> str:
        """The pseudonymous id of ``rid``, as a version 8 UUID."""
        n = int.from_bytes(self._mac(rid)[:16], "big")
        n = (n & ~(0xF << 76)) | (0x8 << 76)  # version 8
        n = (n & ~(0x3 << 62)) | (0x2 << 62)  # variant RFC 9562
        return str(uuid.UUID(int=n))

    # ---- the walk --------------------------------------------------------------------------

    def _element(self, node: Any, owner: str, where: str) -> dict[str, Any] | None:
        """A complex element of type ``owner`` rewritten; None when nothing is left of it."""
        if not isinstance(node, Mapping):
            raise PolicyError(f"expected a JSON object at {where}", field=where)
        withheld = _WITHHELD.get(owner, frozenset())
        found: dict[str, Any] = {}
        for key, value in node.items():
            kind = _type_of(owner, key)
            if kind in _REMOVED or key.removeprefix("_") in withheld:
                continue
            rewritten = self._each(value, kind, f"{where}.{key}") if kind else copy.deepcopy(value)
            if rewritten not in (None, [], {}):
                found[key] = rewritten
        return None if _valueless(node, found, owner) else found or None

    def _each(self, value: Any, kind: str, where: str) -> Any:
        """One value of type ``kind``, or each of a list (gaps of a primitive's ``_`` list kept)."""
        if not isinstance(value, list):
            return self._value(value, kind, where)
        items = [
            None if v is None else self._value(v, kind, f"{where}[{i}]")
            for i, v in enumerate(value)
        ]
        return items if kind == "Element" else [v for v in items if v is not None]

    def _value(self, value: Any, kind: str, where: str) -> Any:
        if kind in _DATES:
            if not isinstance(value, str):
                raise PolicyError(f"expected a {kind} string at {where}", field=where)
            return shifted(value, self.offset, where)
        if kind == "Reference":
            return self._reference(value, where)
        if kind == "uri":
            return self._uri(value, where)
        if kind == "Resource":
            return self._resource(value, where)
        if kind == "Attachment" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k in _ATTACHMENT_KEPT}
        return self._element(value, kind, where)

    # ---- references ------------------------------------------------------------------------

    def _reference(self, node: Any, where: str) -> dict[str, Any] | None:
        """Its pseudonymous target, type and extensions; its identifier and display go."""
        if not isinstance(node, Mapping):
            raise PolicyError(f"expected a Reference at {where}", field=where)
        found = self._element({k: v for k, v in node.items() if k in _EXTENSIONS}, "", where) or {}
        if (target := self._target(node, where)) is not None:
            found["reference"] = target
        if "type" in node:
            found["type"] = node["type"]
        return found or None

    def _uri(self, value: Any, where: str) -> Any:
        """A uri that is a literal reference or ``urn:uuid:``, as a Reference's would be; any
        other (a policy's URL) as it is."""
        if isinstance(value, str) and (_LITERAL.fullmatch(value) or value.startswith(_UUID_REF)):
            return self._target({"reference": value}, where)
        return value

    def _target(self, node: Mapping[str, Any], where: str) -> str | None:
        text = node.get("reference")
        literal = _LITERAL.fullmatch(text) if isinstance(text, str) else None
        named = node.get("type") if literal is None else literal["type"]
        if named == "Patient":
            if not self._names_patient(node, literal):
                shown = text or node.get("identifier") or "a Patient"
                raise PolicyError(
                    f"{shown} is not the patient these resources are de-identified for; "
                    "de-identify each patient's resources with their own Deidentifier",
                    field=f"{where}.reference",
                )
            return self.pseudonym
        if text is None or text.startswith("#"):
            return text
        if text.startswith(_UUID_REF):
            return _UUID_REF + self._id(text.removeprefix(_UUID_REF))
        if literal is not None:
            return f"{literal['type']}/{self._id(literal['id'])}"
        raise PolicyError(
            f"the reference {text!r} is neither literal (Type/id), urn:uuid: nor contained (#id): "
            "it cannot be made pseudonymous",
            field=f"{where}.reference",
        )

    def _names_patient(self, node: Mapping[str, Any], literal: re.Match[str] | None) -> bool:
        patient = self._patient
        if literal is not None:
            return patient.id is not None and literal["id"] == patient.id
        ident = node.get("identifier")
        return (
            isinstance(ident, Mapping)
            and patient.identifier_value is not None
            and (ident.get("system"), ident.get("value"))
            == (patient.identifier_system, patient.identifier_value)
        )


def _type_of(owner: str, key: str) -> str | None:
    """The type element ``key`` of ``owner`` is walked as; None: it is copied as it is."""
    if key in _GENERIC:
        return _GENERIC[key]
    if (kind := _KEYS.get(owner, {}).get(key)) is not None:
        return kind
    if key in _REFERENCE_URIS.get(owner, ()):
        return "uri"
    if (inner := f"{owner}.{key}") in _WITHHELD:
        return inner  # a backbone element only some of whose elements are withheld
    return "Element" if key.startswith("_") else None


def _valueless(node: Mapping[str, Any], found: Mapping[str, Any], owner: str) -> bool:
    """Whether an element lost its ``value[x]`` (Task.input's is 1..1), or an extension is
    left with neither value nor extensions (ext-1): neither is valid, so it goes."""
    has = any(_is_value(k) for k in found)
    if owner == "Extension":
        return not has and "extension" not in found
    return not has and any(_is_value(k) for k in node)


def _is_value(key: str) -> bool:
    """A ``value[x]`` in JSON: ``value`` and a type name."""
    return key.startswith("value") and key[5:6].isupper()


def _patient_key(patient: PatientRef) -> str:
    """The patient's reference as hashed: ``Patient/<id>``, else the conditional reference
    ``Patient?identifier=<system>|<value>``."""
    found = patient_reference(patient)
    if "reference" in found:
        return str(found["reference"])
    ident = found["identifier"]
    return f"Patient?identifier={ident['system']}|{ident['value']}"


def _offset(mac: bytes) -> int:
    """A shift of 1 to 365 days either way, never 0 (that would disclose the dates)."""
    n = int.from_bytes(mac[:8], "big") % (2 * _MAX_OFFSET)
    return n - _MAX_OFFSET if n < _MAX_OFFSET else n - _MAX_OFFSET + 1
