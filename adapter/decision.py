"""The disclosure decision on a Bundle of one patient's genomic results, already converted.

:mod:`adapter.disclosure` decides while a VCF is converted; this module decides on a FHIR R4
Bundle (https://hl7.org/fhir/R4/bundle.html) of the Genomics Reporting IG 3.0.0
(http://hl7.org/fhir/uv/genomics-reporting/STU3/), as ``POST /v1/consent/decide`` and
``fhir-genomics decide`` are given one, with the same rules (:func:`report_decision`,
:func:`rule_genes`). Policy decided here:

* **Strict input.** A ``transaction``, ``batch``, ``collection`` or ``searchset`` Bundle whose
  every entry holds a resource named by a fullUrl or an id, no two alike, all of one patient
  (every ``subject``, ``patient`` and Task ``for`` the same Reference, every Patient entry
  that patient), with Consents naming that patient. Anything else is a
  :class:`~adapter.errors.PolicyError` naming the element (``Bundle.entry[3].resource.subject``),
  never a guess: what cannot be read cannot be withheld with certainty.
* **The report is one decision**; a deny returns no Bundle at all, and is audited.
* **A Variant is held** (profile ``variant`` or LOINC 69548-6) when one of its genes (HGNC
  coding display, the gene of an HGNC id on the ACMG list, or text, in its gene-studied
  components, 48018-6) is on the ACMG secondary-findings list and none is in the order's
  indication; it is held under the first listed one. A Variant that names no gene is a primary
  result, as in a conversion. Its ACMG candidate is read from its allelic state (53034-5),
  representative c. and p.HGVS (48004-6, 48005-3), the clinical significance (53037-8) of the
  Observations derived from it, and the Sequence Ontology terms of its molecular consequences
  on its representative transcript (51958-7; all of them when it names none). Two different
  classes or allelic states of one Variant are an error. Phase comes from
  sequence-phase-relationship Observations (82120-7) derived from two held Variants of one gene:
  Trans when one says Trans, else Cis; Indeterminate and Unknown say nothing.
* **Withheld leaves no trace.** A held Variant its gene's ruling does not disclose is removed
  with every resource that depends on it, transitively: what refers to it from ``derivedFrom``,
  ``hasMember``, ``focus``, a ``component``, a Provenance's ``target`` or ``entity``, or from any
  element that holds one reference (Task ``reasonReference``). Elsewhere, in lists (a
  DiagnosticReport's ``result``, an extension), the item holding the reference goes, and a list
  left empty with it. References are resolved as FHIR resolves them in a Bundle (fullUrl,
  ``Type/id``, absolute URLs, ``_history``) and by identifier (conditional and logical
  references). When anything is withheld, the report's free text goes too (DiagnosticReport
  ``text``, ``conclusion``, ``conclusionCode``, ``presentedForm``; Procedure ``text`` and
  ``note``, where the analysis counts its implications), and so does a searchset's ``total``.
  A Bundle ``signature`` never survives the filter.
* **Labels are recomputed** on every resource kept (:func:`adapter.policy.labelled`): R and
  GDIS, and ``secondary-finding`` on a disclosed secondary finding and what depends on it.
* **Provenance of each disclosure**, appended to the Bundle: the report's (its DiagnosticReports,
  else every primary resource) and each disclosed gene's (its resources). In a transaction or
  batch it is ``PUT Provenance/<id>``: R4 Provenance has no identifier to update on
  conditionally (https://hl7.org/fhir/R4/provenance.html), and its id is the decision's UUIDv5,
  so replaying creates nothing twice. A searchset marks it ``include``.
* **Audit.** One AuditEvent per decision (the report's; each held gene's, about
  :attr:`GeneRuling.first`, as in a conversion) in :attr:`BundleDecision.audit_events` and
  appended to the Disclosure's audit log, never in the Bundle. Their ids derive from the
  Bundle's SHA-256, so replaying a decision yields the same ids. The obligations and ``genes``
  name what was withheld: they are for the caller and its audit, not for the recipient of
  :attr:`BundleDecision.bundle`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, Literal, NamedTuple, TypeVar

import orjson

from .disclosure import (
    Disclosure,
    GeneRuling,
    audited,
    phase_of,
    report_decision,
    rule_genes,
)
from .errors import ConsentError, PackageError, PolicyError
from .fhir.codes import HGNC, coding, profile, slices
from .fhir.identifiers import URI_SYSTEM
from .fhir.implication import LOINC
from .model import AnalysisContext, ClinicalSignificance, GenomeBuild, PatientRef, Sex, Zygosity
from .phasing import Relation
from .policy import (
    CandidateAllele,
    Consent,
    Decision,
    Item,
    Reason,
    acmg_sf_list,
    audit_event,
    labelled,
    provenance,
)
from .policy.consent import Coding, Reference
from .policy.labels import LABEL_SECONDARY_FINDING
from .readers.annotations import significance_tier

__all__ = ["BundleDecision", "Obligation", "decide_bundle", "decision_json"]

#: the Bundle types whose entries are resources of one patient to decide on
BUNDLE_TYPES: Final = frozenset({"transaction", "batch", "collection", "searchset"})
#: elements whose references make a resource depend on what they refer to
_DEPENDENT: Final = frozenset(
    {"derivedFrom", "hasMember", "focus", "component", "target", "entity"}
)
#: elements that name the patient a resource is about
_SUBJECTS: Final = ("subject", "patient", "for")
#: free text summing up the whole report, by resource type
_FREE_TEXT: Final = {
    "DiagnosticReport": ("text", "conclusion", "conclusionCode", "presentedForm"),
    "Procedure": ("text", "note"),
}
_ID: Final = r"[A-Za-z0-9\-.]{1,64}"
_LITERAL: Final = re.compile(rf"(?:.*/)?([A-Z][A-Za-z]+)/({_ID})(?:/_history/{_ID})?")
_CONDITIONAL: Final = re.compile(r"Patient\?identifier=([^|&]*)\|([^&]+)")
_GONE: Final = object()  # a node that refers to a removed resource
_EMPTY: Final = object()  # a list whose every item went
_T = TypeVar("_T")
_Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Obligation:
    """What the policy did to one resource of the Bundle (its free text redacted), or asks of
    whoever holds it (a label to keep)."""

    action: Literal["redact", "label"]
    target: str  # the resource as the Bundle refers to it: its fullUrl, else Type/id
    reason: str
    label: Coding | None = None  # the label to keep, for "label"


@dataclass(frozen=True, slots=True)
class BundleDecision:
    """The decision on a Bundle: the report's, each held gene's, and what follows from them."""

    decision: Decision  # on the report's primary results
    genes: dict[str, GeneRuling]
    obligations: tuple[Obligation, ...]
    bundle: dict[str, Any] | None  # the Bundle filtered and labelled; None when denied
    audit_events: tuple[dict[str, Any], ...]


def decide_bundle(
    bundle: Mapping[str, Any], disclosure: Disclosure, *, sex: Sex = Sex.UNKNOWN
) -> BundleDecision:
    """What of ``bundle`` may be disclosed under ``disclosure``, and the Bundle that discloses it.
    ``sex`` is the patient's, for the X-linked rules of the ACMG list."""
    graph = _Graph.read(bundle)
    patient = _patient(graph)
    _check_consents(disclosure.consents, patient)
    digest = _digest(bundle)
    ctx = AnalysisContext(
        patient,
        GenomeBuild.GRCH38,  # required by the model; the audit trail reads only patient and key
        sample="",
        sex=sex,
        report_key=f"bundle|{digest.hex()}",
    )
    request = disclosure.request
    report = report_decision(disclosure)
    events = [audit_event(report, request, _report_reference(graph, digest), ctx)]
    if not report.permitted:
        audited(disclosure.audit_log, events)
        return BundleDecision(report, {}, (), None, tuple(events))
    held = _held(graph, disclosure)
    rulings = rule_genes(held, _phases(graph, held), sex, disclosure)
    for ruling in rulings.values():
        first = {
            "reference": ruling.first,
            "type": "Observation",
            "display": f"{ruling.gene}, held",
        }
        events.append(audit_event(ruling.decision, request, first, ctx))
    filtered = _Filter(graph, held, rulings)
    entries = filtered.entries()
    for record in filtered.provenances(report, disclosure, ctx):
        entries.append(_entry_of(graph.type, labelled(record, Item())))
    audited(disclosure.audit_log, events)
    return BundleDecision(
        report, rulings, tuple(filtered.obligations), filtered.bundle(entries), tuple(events)
    )


def decision_json(result: BundleDecision) -> dict[str, Any]:
    """The decision as ``POST /v1/consent/decide`` and ``fhir-genomics decide`` report it:
    the effect and reasons of the report's and of each held gene's, and the obligations."""
    return {
        "decision": result.decision.effect.value,
        "reasons": [_reason_json(r) for r in result.decision.reasons],
        "genes": {
            gene: {
                "decision": ruling.decision.effect.value,
                "reasons": [_reason_json(r) for r in ruling.decision.reasons],
                "disclosed": sorted(ruling.disclosed),
            }
            for gene, ruling in result.genes.items()
        },
        "obligations": [_obligation_json(o) for o in result.obligations],
    }


def _reason_json(reason: Reason) -> dict[str, str]:
    found = {"rule": reason.rule, "text": reason.text}
    if reason.consent is not None:
        found["consent"] = reason.consent
    if reason.provision is not None:
        found["provision"] = reason.provision
    return found


def _obligation_json(obligation: Obligation) -> dict[str, Any]:
    found: dict[str, Any] = {
        "action": obligation.action,
        "target": obligation.target,
        "reason": obligation.reason,
    }
    if obligation.label is not None:
        found["label"] = {"system": obligation.label.system, "code": obligation.label.code}
    return found


# ---- the Bundle as entries and references ------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    index: int
    name: str  # how the Bundle refers to it: its fullUrl, else Type/id
    resource: Mapping[str, Any]
    entry: Mapping[str, Any]

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}].resource"


class _Graph:
    """A Bundle's entries, and which of them each one refers to, and where."""

    def __init__(self, bundle: Mapping[str, Any], kind: str, entries: list[_Entry]) -> None:
        self.bundle, self.type, self.entries = bundle, kind, entries
        self.keys: dict[str, int] = {}
        for entry in entries:
            for key, field in _keys(entry):
                if (other := self.keys.setdefault(key, entry.index)) != entry.index:
                    raise PolicyError(
                        f"entries {other} and {entry.index} are both {key}: a reference to it "
                        "could mean either; give each resource once",
                        field=f"Bundle.entry[{entry.index}].{field}",
                    )
        #: per entry, the references that resolve to another entry: (path, its index)
        self.links = [
            [
                (path, j)
                for path, ref in _references(e.resource)
                if (j := self.resolve(ref)) is not None and j != e.index
            ]
            for e in entries
        ]

    @classmethod
    def read(cls, bundle: Any) -> _Graph:
        """The Bundle checked: its type, and each entry's resource and name."""
        kind = bundle.get("type") if isinstance(bundle, Mapping) else None
        if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
            what = bundle.get("resourceType") if isinstance(bundle, Mapping) else type(bundle)
            raise PolicyError(
                f"not a Bundle ({what!r}): give a FHIR R4 Bundle of the patient's results",
                field="Bundle.resourceType",
            )
        if kind not in BUNDLE_TYPES:
            raise PolicyError(
                f"a {kind!r} Bundle is not decided on; give one of type "
                f"{', '.join(sorted(BUNDLE_TYPES))}",
                field="Bundle.type",
            )
        items = bundle.get("entry", [])
        if not isinstance(items, list):
            raise PolicyError("Bundle.entry must be a list of entries", field="Bundle.entry")
        return cls(bundle, kind, [_entry(i, item) for i, item in enumerate(items)])

    def resolve(self, reference: str) -> int | None:
        """The entry a reference names, as FHIR resolves it in a Bundle: by fullUrl, by
        ``Type/id`` (relative, absolute, versioned), or by identifier."""
        found = self.keys.get(reference)
        if found is None and (literal := _LITERAL.fullmatch(reference)) is not None:
            found = self.keys.get(f"{literal[1]}/{literal[2]}")
        return found

    def dependents(self) -> list[set[int]]:
        """Per entry, the entries that depend on it."""
        found: list[set[int]] = [set() for _ in self.entries]
        for i, links in enumerate(self.links):
            for path, j in links:
                if path[0] in _DEPENDENT or not any(isinstance(p, int) for p in path):
                    found[j].add(i)
        return found


def _entry(index: int, item: Any) -> _Entry:
    resource = item.get("resource") if isinstance(item, Mapping) else None
    if not isinstance(resource, Mapping) or not isinstance(resource.get("resourceType"), str):
        raise PolicyError(
            "an entry without a resource cannot be decided on: give each entry its resource",
            field=f"Bundle.entry[{index}].resource",
        )
    full_url, rid = item.get("fullUrl"), resource.get("id")
    name = ""
    if isinstance(full_url, str):
        name = full_url
    elif isinstance(rid, str) and rid:
        name = f"{resource['resourceType']}/{rid}"
    if not name:
        raise PolicyError(
            "the entry has neither a fullUrl nor a resource id, so what refers to it cannot be "
            "found: give it a fullUrl",
            field=f"Bundle.entry[{index}].fullUrl",
        )
    return _Entry(index, name, resource, item)


def _keys(entry: _Entry) -> Iterator[tuple[str, str]]:
    """What a reference to the entry may say, and the element each comes from."""
    kind, resource = entry.resource["resourceType"], entry.resource
    yield entry.name, "fullUrl"
    literal = _LITERAL.fullmatch(entry.name)
    if literal is not None and literal[1] == kind:
        yield f"{kind}/{literal[2]}", "fullUrl"
    if isinstance(rid := resource.get("id"), str) and f"{kind}/{rid}" != entry.name:
        yield f"{kind}/{rid}", "resource.id"
    identifiers = resource.get("identifier")
    for i, ident in enumerate(identifiers if isinstance(identifiers, list) else ()):
        if isinstance(ident, Mapping) and ident.get("system") and ident.get("value"):
            query = f"identifier={ident['system']}|{ident['value']}"
            yield f"{kind}?{query}", f"resource.identifier[{i}]"
            yield query, f"resource.identifier[{i}]"


def _references(node: Any, path: _Path = ()) -> Iterator[tuple[_Path, str]]:
    """Every reference in ``node`` (a resource's elements, not the resource): literal,
    conditional, and logical (by identifier) ones. Resources are parsed JSON, so only dicts
    and lists are descended into (a Mapping check is several times slower, on every node)."""
    if isinstance(node, dict):
        if path and isinstance(ref := node.get("reference"), str):
            yield path, ref
        elif path and (logical := _logical(node)) is not None:
            yield path, logical
        for key, value in node.items():
            if isinstance(value, dict | list):
                yield from _references(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, dict | list):
                yield from _references(value, (*path, i))


def _logical(node: Mapping[str, Any]) -> str | None:
    """A logical reference's key: its type (when stated) and identifier."""
    ident = node.get("identifier")
    if not isinstance(ident, Mapping) or not (ident.get("system") and ident.get("value")):
        return None
    query = f"identifier={ident['system']}|{ident['value']}"
    return f"{node['type']}?{query}" if isinstance(node.get("type"), str) else query


def _closure(start: Iterable[int], dependents: Sequence[set[int]]) -> set[int]:
    """``start`` and everything that depends on it, transitively."""
    found, todo = set(start), list(start)
    while todo:
        for i in dependents[todo.pop()] - found:
            found.add(i)
            todo.append(i)
    return found


def _digest(bundle: Mapping[str, Any]) -> bytes:
    """The SHA-256 of the Bundle's canonical JSON (keys sorted)."""
    try:
        data = orjson.dumps(bundle, option=orjson.OPT_SORT_KEYS, default=_plain)
    except TypeError as e:  # orjson.JSONEncodeError is one
        raise PolicyError(f"the Bundle is not JSON: {e}", field="Bundle") from e
    return hashlib.sha256(data).digest()


def _plain(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _report_reference(graph: _Graph, digest: bytes) -> dict[str, Any]:
    """What the report's decision is about: its DiagnosticReport, else the Bundle itself by
    its digest (an RFC 6920 ``ni`` URI, as the VCF's DocumentReference names its file)."""
    for entry in graph.entries:
        if entry.resource["resourceType"] == "DiagnosticReport":
            return {"reference": entry.name, "type": "DiagnosticReport"}
    value = f"ni:///sha-256;{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"
    return {"type": "Bundle", "identifier": {"system": URI_SYSTEM, "value": value}}


# ---- the patient -------------------------------------------------------------------------


class _Named(NamedTuple):
    """A Reference to the patient as compared: its literal reference and identifier."""

    reference: str | None
    system: str | None
    value: str | None


def _patient(graph: _Graph) -> PatientRef:
    """The one patient every resource of the Bundle is about."""
    named: _Named | None = None
    first = ""
    for entry in graph.entries:
        for key in _SUBJECTS:
            if key not in entry.resource:
                continue
            where = f"{entry.where}.{key}"
            found = _named(entry.resource[key], where)
            if named is None:
                named, first = found, where
            elif found != named:
                raise PolicyError(
                    f"{_shown(found)} is another patient than {first}'s {_shown(named)}: a "
                    "Bundle decided on holds one patient's resources, each naming them alike",
                    field=where,
                )
    if named is None:
        raise PolicyError(
            "no resource of the Bundle names its patient (subject): give the patient's results",
            field="Bundle.entry.resource.subject",
        )
    patient = _patient_of(named, graph, first)
    for entry in graph.entries:
        if entry.resource["resourceType"] == "Patient" and not _is_patient(entry, named, graph):
            raise PolicyError(
                f"the Patient {entry.name} is not {_shown(named)}, whom the results are about",
                field=entry.where,
            )
    return patient


def _named(node: Any, where: str) -> _Named:
    ident = node.get("identifier") if isinstance(node, Mapping) else None
    ident = ident if isinstance(ident, Mapping) else {}
    found = _Named(
        node.get("reference") if isinstance(node, Mapping) else None,
        ident.get("system"),
        ident.get("value"),
    )
    if not (isinstance(found.reference, str) or (found.system and found.value)):
        raise PolicyError(
            "the patient is not named by a Reference (reference, or identifier system and value)",
            field=where,
        )
    return found


def _shown(named: _Named) -> str:
    return named.reference or f"{named.system}|{named.value}"


def _patient_of(named: _Named, graph: _Graph, where: str) -> PatientRef:
    """The patient as the audit trail names them: by id, else by identifier."""
    ref = named.reference or ""
    if rid := _patient_id(ref):
        return PatientRef(id=rid)
    if conditional := _CONDITIONAL.fullmatch(ref):
        return PatientRef(identifier_system=conditional[1], identifier_value=conditional[2])
    if not ref and named.system and named.value:
        return PatientRef(identifier_system=named.system, identifier_value=named.value)
    found = graph.resolve(ref) if ref else None
    resource = graph.entries[found].resource if found is not None else {}
    if resource.get("resourceType") == "Patient":
        for ident in resource.get("identifier") or ():
            if isinstance(ident, Mapping) and ident.get("system") and ident.get("value"):
                return PatientRef(
                    identifier_system=ident["system"], identifier_value=ident["value"]
                )
        if isinstance(rid := resource.get("id"), str):
            return PatientRef(id=rid)
    raise PolicyError(
        f"{ref or 'the reference'} names no Patient the audit trail can name: refer to the "
        "patient as Patient/<id>, by identifier, or to a Patient entry with one",
        field=where,
    )


def _patient_id(reference: str) -> str | None:
    """The Patient id of a literal reference (relative, absolute or versioned), else None."""
    literal = _LITERAL.fullmatch(reference)
    return literal[2] if literal is not None and literal[1] == "Patient" else None


def _is_patient(entry: _Entry, named: _Named, graph: _Graph) -> bool:
    """Whether a Patient entry is the patient ``named``: by reference, else by identifier."""
    if named.reference is not None:
        return graph.resolve(named.reference) == entry.index
    identifiers = entry.resource.get("identifier")
    return any(
        isinstance(i, Mapping) and (i.get("system"), i.get("value")) == (named.system, named.value)
        for i in (identifiers if isinstance(identifiers, list) else ())
    )


def _check_consents(consents: Sequence[Consent], patient: PatientRef) -> None:
    """Refuse a Consent that is not this patient's: it would decide on another's behalf."""
    for consent in consents:
        named = consent.patient or Reference()
        if not consent.is_for(patient):
            wanted = patient.id or f"{patient.identifier_system}|{patient.identifier_value}"
            shown = named.reference or named.identifier_value or "no patient"
            raise ConsentError(
                f"the Consent names {shown}, not the Bundle's patient {wanted}: give this "
                "patient's Consents, naming them as the Bundle does",
                source=f"Consent/{consent.id}" if consent.id else "Consent",
                field="Consent.patient",
            )


# ---- the held Variants -------------------------------------------------------------------


class _Codes(NamedTuple):
    """The codes read, from the project's tables (mappings/)."""

    variant: tuple[str, str]
    phase: tuple[str, str]
    consequence: tuple[str, str]
    gene: tuple[str, str]
    zygosity: tuple[str, str]
    hgvs_c: tuple[str, str]
    hgvs_p: tuple[str, str]
    transcript: tuple[str, str]
    significance: tuple[str, str]
    feature: tuple[str, str]
    zygosities: dict[tuple[str, str], Zygosity]
    tiers: dict[tuple[str, str], ClinicalSignificance]
    relations: dict[tuple[str, str], Relation]
    hgnc_ids: dict[str, str]  # HGNC id -> symbol, of the listed genes


@cache
def _codes() -> _Codes:
    def sliced(name: str) -> tuple[str, str]:
        return slices()[name].system, slices()[name].code

    tiers = {}
    for tier in ClinicalSignificance:
        if (found := significance_tier(tier.value.replace(" ", "_"))) is not None:
            tiers[LOINC, found[1]] = tier
    relations: tuple[Relation, ...] = ("Cis", "Trans")
    return _Codes(
        variant=_code("resource-code", "variant"),
        phase=_code("resource-code", "sequence-phase-relationship"),
        consequence=_code("resource-code", "molecular-consequence"),
        gene=sliced("gene-studied"),
        zygosity=sliced("allelic-state"),
        hgvs_c=sliced("representative-coding-hgvs"),
        hgvs_p=sliced("representative-protein-hgvs"),
        transcript=sliced("representative-transcript-ref-seq"),
        significance=_code("implication-component", "clinical-significance"),
        feature=_code("consequence-component", "feature-consequence"),
        zygosities={_code("allelic-state", z): z for z in Zygosity},
        tiers=tiers,
        relations={_code("phase-relationship", r): r for r in relations},
        hgnc_ids={g.hgnc_id: g.gene for g in acmg_sf_list().genes.values()},
    )


def _code(group: str, key: str) -> tuple[str, str]:
    found = coding(group, key)
    if found is None:  # the tables ship with the adapter: a missing row is a broken install
        raise PackageError(f"mappings/answer_codes.csv has no code for {group} {key}")
    return found["system"], found["code"]


@dataclass(frozen=True, slots=True)
class _Held:
    """A held Variant, as :func:`rule_genes` takes it (:class:`~adapter.disclosure.HeldAllele`)."""

    gene: str
    variant_id: str  # the entry's name
    candidate: CandidateAllele | None  # None: no class or no allelic state to judge it by


def _held(graph: _Graph, disclosure: Disclosure) -> list[_Held]:
    """The Variants held for the ACMG rules and the Consents, in Bundle order."""
    codes, listed, asked = _codes(), disclosure.held_genes(), disclosure.indication.genes
    derived: list[list[_Entry]] = [[] for _ in graph.entries]
    for entry, links in zip(graph.entries, graph.links, strict=True):
        for path, j in links:
            if path[0] == "derivedFrom":
                derived[j].append(entry)
    found = []
    for entry in graph.entries:
        if not _is(entry.resource, "variant", codes.variant):
            continue
        genes = _genes(entry, codes)
        gene = next((g for g in genes if g in listed), None)
        if gene is None or not asked.isdisjoint(genes):
            continue
        candidate = _candidate(entry, gene, derived[entry.index], codes)
        found.append(_Held(gene, entry.name, candidate))
    return found


def _is(resource: Mapping[str, Any], kind: str, code: tuple[str, str]) -> bool:
    """Whether an Observation is of the IG's profile ``kind``, by its profile or its code."""
    if resource["resourceType"] != "Observation":
        return False
    meta = resource.get("meta")
    profiles = meta.get("profile") if isinstance(meta, Mapping) else None
    wanted = profile(kind)
    if isinstance(profiles, list) and any(
        isinstance(p, str) and p.partition("|")[0] == wanted for p in profiles
    ):
        return True
    return code in _codings(resource.get("code"))


def _codings(concept: Any) -> list[tuple[str, str]]:
    """A CodeableConcept's (system, code) pairs."""
    found = concept.get("coding") if isinstance(concept, Mapping) else None
    pairs = [
        (c.get("system"), c.get("code"))
        for c in (found if isinstance(found, list) else ())
        if isinstance(c, Mapping)
    ]
    return [(s, c) for s, c in pairs if isinstance(s, str) and isinstance(c, str)]


def _values(entry: _Entry, code: tuple[str, str]) -> Iterator[tuple[Mapping[str, Any], str]]:
    """The CodeableConcept values of the components coded ``code``, and where each is."""
    components = entry.resource.get("component")
    if components is None:
        return
    if not isinstance(components, list):
        raise PolicyError("component must be a list", field=f"{entry.where}.component")
    for k, component in enumerate(components):
        if isinstance(component, Mapping) and code in _codings(component.get("code")):
            value = component.get("valueCodeableConcept")
            where = f"{entry.where}.component[{k}].valueCodeableConcept"
            if not isinstance(value, Mapping):
                raise PolicyError("a coded component needs a valueCodeableConcept", field=where)
            yield value, where


def _genes(entry: _Entry, codes: _Codes) -> list[str]:
    """A Variant's gene symbols, upper case, in order: each HGNC coding's display, the symbol
    of a listed HGNC id (so a coding without display still counts), and the text."""
    found: list[Any] = []
    for value, _ in _values(entry, codes.gene):
        for c in value.get("coding") or ():
            if isinstance(c, Mapping) and c.get("system") == HGNC:
                code, display = c.get("code"), c.get("display")
                found += [codes.hgnc_ids.get(code, "") if isinstance(code, str) else "", display]
        found.append(value.get("text"))
    return list(dict.fromkeys(s.strip().upper() for s in found if isinstance(s, str) and s))


def _candidate(
    variant: _Entry, gene: str, derived: list[_Entry], codes: _Codes
) -> CandidateAllele | None:
    """The Variant as an ACMG candidate of ``gene``; None without a class or allelic state."""
    tier = _one(
        (codes.tiers.get(c), where)
        for e in derived
        for value, where in _values(e, codes.significance)
        for c in _codings(value)
    )
    zygosity = _one(
        (codes.zygosities.get(c), where)
        for value, where in _values(variant, codes.zygosity)
        for c in _codings(value)
    )
    if tier is None or zygosity is None:
        return None
    transcript = _first(variant, codes.transcript)
    consequences = [
        e for e in derived if _is(e.resource, "molecular-consequence", codes.consequence)
    ]
    if transcript is not None:
        consequences = [e for e in consequences if _first(e, codes.transcript) == transcript]
    terms = [_term(value) for e in consequences for value, _ in _values(e, codes.feature)]
    return CandidateAllele(
        gene,
        tier,
        zygosity,
        hgvs_c=_first(variant, codes.hgvs_c),
        hgvs_p=_first(variant, codes.hgvs_p),
        consequences=tuple(dict.fromkeys(t for t in terms if t)),
    )


def _one(found: Iterable[tuple[_T | None, str]]) -> _T | None:
    """The one value stated; two different ones are an error, never a choice."""
    chosen: tuple[_T, str] | None = None
    for value, where in found:
        if value is None:
            continue
        if chosen is not None and value != chosen[0]:
            raise PolicyError(
                f"{where} says {value}, where {chosen[1]} says {chosen[0]} of the same Variant: "
                "correct one, since the ACMG rules depend on it",
                field=where,
            )
        chosen = (value, where)
    return chosen[0] if chosen is not None else None


def _first(entry: _Entry, code: tuple[str, str]) -> str | None:
    """The first code in the components coded ``code`` (an HGVS expression, a transcript)."""
    for value, _ in _values(entry, code):
        for c in value.get("coding") or ():
            if isinstance(c, Mapping) and isinstance(c.get("code"), str):
                return str(c["code"])
    return None


def _term(value: Mapping[str, Any]) -> str | None:
    """A Sequence Ontology term as the IG's examples give it: the coding's display, or text."""
    for c in value.get("coding") or ():
        if isinstance(c, Mapping) and isinstance(c.get("display"), str):
            return str(c["display"])
    text = value.get("text")
    return text if isinstance(text, str) else None


def _phases(graph: _Graph, held: Sequence[_Held]) -> dict[str, Relation]:
    """Each held Variant's phase (:func:`adapter.disclosure.phase_of`), from the Bundle's
    sequence-phase-relationship Observations derived from two Variants."""
    codes = _codes()
    pairs = []
    for entry, links in zip(graph.entries, graph.links, strict=True):
        if not _is(entry.resource, "sequence-phase-relationship", codes.phase):
            continue
        related = sorted({j for path, j in links if path[0] == "derivedFrom"})
        found = [
            codes.relations.get(c) for c in _codings(entry.resource.get("valueCodeableConcept"))
        ]
        relation = next((r for r in found if r is not None), None)
        if relation is not None and len(related) == 2:
            a, b = (graph.entries[i].name for i in related)
            pairs.append((a, b, relation))
    return phase_of(pairs, {h.variant_id: h.gene for h in held})


# ---- the Bundle disclosed ----------------------------------------------------------------


class _Filter:
    """The Bundle without what is withheld, relabelled, and the obligations that follow."""

    def __init__(self, graph: _Graph, held: Sequence[_Held], rulings: Mapping[str, GeneRuling]):
        self.graph, self.rulings = graph, rulings
        dependents = graph.dependents()
        withheld = {graph.keys[h.variant_id] for h in held} - {
            graph.keys[v] for r in rulings.values() for v in r.disclosed
        }
        self.withheld = bool(withheld)
        self.removed = _closure(withheld, dependents)
        #: the kept resources of each disclosed gene, and their gene and item
        self.disclosed: dict[str, list[int]] = {}
        self.secondary: dict[int, tuple[str, Item]] = {}
        for gene, ruling in rulings.items():
            start = {graph.keys[v] for v in ruling.disclosed}
            found = sorted(_closure(start, dependents) - self.removed)
            self.disclosed[gene] = found
            item = ruling.item
            if item is not None and item.secondary is not None:
                for i in found:
                    self.secondary.setdefault(i, (gene, item))
        self.obligations: list[Obligation] = []

    def entries(self) -> list[dict[str, Any]]:
        """The kept entries, in order: pruned, redacted and labelled."""
        kept = []
        for entry in self.graph.entries:
            if entry.index in self.removed:
                continue
            resource: Any = entry.resource
            if any(j in self.removed for _, j in self.graph.links[entry.index]):
                found = {k: _pruned(v, self._gone) for k, v in resource.items()}
                resource = {k: v for k, v in found.items() if v is not _EMPTY}
            resource = self._redacted(entry, resource)
            gene, item = self.secondary.get(entry.index, ("", Item()))
            if item.secondary is not None:
                self.obligations.append(
                    Obligation(
                        "label",
                        entry.name,
                        f"{gene}: a secondary finding ({item.secondary}), disclosed only on an "
                        "explicit consent; keep its label so access can tell it from the results "
                        "the order asked for",
                        LABEL_SECONDARY_FINDING,
                    )
                )
            kept.append({**entry.entry, "resource": labelled(resource, item)})
        return kept

    def _gone(self, reference: str) -> bool:
        return self.graph.resolve(reference) in self.removed

    def _redacted(self, entry: _Entry, resource: Mapping[str, Any]) -> Mapping[str, Any]:
        """The report's free text removed when anything was withheld: it may name it."""
        names = [k for k in _FREE_TEXT.get(resource["resourceType"], ()) if k in resource]
        if not self.withheld or not names:
            return resource
        self.obligations.append(
            Obligation(
                "redact",
                entry.name,
                f"{', '.join(names)} removed: the report's free text may name a result the "
                "policy withholds",
            )
        )
        return {k: v for k, v in resource.items() if k not in names}

    def provenances(
        self, report: Decision, disclosure: Disclosure, ctx: AnalysisContext
    ) -> Iterator[dict[str, Any]]:
        """The Provenance of each permitted decision that disclosed resources."""
        entries, request = self.graph.entries, disclosure.request
        kept = [e for e in entries if e.index not in self.removed]
        reports = [e for e in kept if e.resource["resourceType"] == "DiagnosticReport"]
        primary = reports or [e for e in kept if e.index not in self.secondary]
        records = [provenance([_target(e) for e in primary], report, request, ctx)]
        for gene, ruling in self.rulings.items():
            targets = [_target(entries[i]) for i in self.disclosed[gene]]
            records.append(provenance(targets, ruling.decision, request, ctx))
        yield from (r for r in records if r is not None)

    def bundle(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """The Bundle around ``entries``: no signature (its content changed), and no total
        of a searchset when it would count what was withheld."""
        dropped = {"signature", "total"} if self.withheld else {"signature"}
        found = {
            k: entries if k == "entry" else v
            for k, v in self.graph.bundle.items()
            if k not in dropped
        }
        if not entries:
            found.pop("entry", None)
        return found


def _pruned(node: Any, gone: Callable[[str], bool]) -> Any:
    """A copy of an element without the references ``gone`` says to drop: the list item
    holding one goes, and a list left empty goes from its element. A reference held outside
    any list never comes here: it makes its resource depend on what it refers to."""
    if isinstance(node, Mapping):
        ref = node.get("reference")
        ref = ref if isinstance(ref, str) else _logical(node)
        if ref is not None and gone(ref):
            return _GONE
        kept = {}
        for key, value in node.items():
            found = _pruned(value, gone)
            if found is _GONE:
                return _GONE
            if found is not _EMPTY:
                kept[key] = found
        return kept
    if isinstance(node, list):
        items = [found for value in node if (found := _pruned(value, gone)) is not _GONE]
        return items if items or not node else _EMPTY
    return node


def _target(entry: _Entry) -> dict[str, str]:
    return {"reference": entry.name, "type": entry.resource["resourceType"]}


def _entry_of(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    """A Provenance's entry, in the form of the Bundle's type."""
    rid = record["id"]
    found: dict[str, Any] = {"fullUrl": f"urn:uuid:{rid}", "resource": record}
    if kind in ("transaction", "batch"):
        found["request"] = {"method": "PUT", "url": f"Provenance/{rid}"}
    elif kind == "searchset":
        found["search"] = {"mode": "include"}
    return found
