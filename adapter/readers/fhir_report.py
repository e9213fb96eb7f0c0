"""Genomic-report Bundles in: one FHIR R4 Bundle (Genomics Reporting IG STU3,
http://hl7.org/fhir/uv/genomics-reporting/STU3/) read back into one
:class:`~adapter.model.LabReport`, the inverse of :mod:`adapter.fhir.lab_report`, so that a
report can leave as HL7 v2 (:func:`adapter.hl7v2_oru.oru_message`).

Decisions, each a policy of this module:

* **Bundles.** Types transaction and collection (what the adapter's writers make) and
  searchset (what a server's search with ``_include`` answers); others are refused. An entry
  is found by its ``fullUrl`` (``urn:uuid:``, or a server's URL) or as ``Type/id``; a
  reference ``Type/id``, ``urn:uuid:``, or an absolute URL ending in ``Type/id`` resolves,
  a version (``/_history/n``) ignored. Entries without a resource are skipped.
* **Report.** The Bundle's one DiagnosticReport (none, or several, is an error). Status as
  written; amended and appended are corrected (their parent and sibling in the R4 status
  hierarchy; OBR-25 C), entered-in-error and unknown are refused. ``code`` is the first coding
  beside LOINC 51969-4 (the test the lab named, OBR-4), else 51969-4. ``collected`` is
  ``effectiveDateTime`` (or ``effectivePeriod.start``) when it has a time: a date alone (a
  VCF's ##fileDate) is no moment and is not read. ``issued``, ``conclusion``, the first
  performer's ``display``, ``conclusionCode`` as the diagnoses, genomic-report-note
  extensions as the notes, workflow-supportingInfo Observations as phenotypes (valued Absent:
  excluded ones). ``source_format`` is :data:`SOURCE_FORMAT`; ``message_id`` None.
* **Order and key.** The identifier typed FILL (HL7 v2-0203) is the filler order number, the
  first ``basedOn`` ServiceRequest's identifier (typed PLAC, else its first) the placer's;
  ``report_key`` is the filler's ``system|value``, else the placer's, as
  :mod:`adapter.readers.hl7v2` makes it. A report with neither (a VCF conversion's) is keyed
  by its own first business identifier, which also becomes its filler order number: the v2
  model needs one (OBR-3).
* **Patient.** The subject: a Patient of the Bundle (its identifier typed MR, else its first;
  else its id; its gender male/female and full birthDate read), a logical reference by
  identifier, a transaction's conditional reference ``Patient?identifier=system|value``, or a
  literal ``Patient/<id>``. The specimen: a Specimen of the Bundle (first identifier, type),
  else a logical reference's identifier.
* **Variants.** Each result that is a Variant (profile ``variant``, or code LOINC 69548-6),
  in the report's order, keyed 1, 2, 3...: its key is the OBX-4 sub-ID the v2 writer gives it,
  and a Variant does not carry the key it was made from (its id is a hash of it), so a report
  read from HL7 v2 with sub-IDs 1, 2... gets its keys, and its Variants their ids, back. A
  result that cannot be resolved is an error. Components are found by their codes
  (``mappings/loinc_components.csv``): gene (HGNC-coded, else named), the representative
  transcript and c./p.HGVS, g.HGVS, DNA change type, cytogenetic location, variation codes
  (not SPDI: the builders derive it from the coordinates, which are read), allelic state,
  source class, inheritance, sample allele frequency and read depth; ``code.text`` is the
  display name; a note starting :data:`~adapter.fhir.variant.BARE_PROTEIN_HGVS` is the p.HGVS
  the lab gave without its reference sequence, other notes are notes. Its status is None when
  it is the report's (as the v2 reader has it); amended is corrected, unknown the report's.
* **Calls.** A VCF-style call when chromosome (its LOINC answer, else the RefSeq accession of
  48013-7 on the build), exact start-end, REF and ALT are given, REF and ALT are bases, the
  coordinate system is absent or 1-based character counting and the accession is the build's
  for the chromosome: the rules of the v2 reader. Genotype "", zygosity, depth and frequency
  the variant's. The build is the one all Variants state (two are an error).
* **Classifications.** A Variant's diagnostic-implication (``derivedFrom`` it: the report's,
  the lab's or ClinVar's) is its classification: the ACMG/AMP tier of a LOINC answer
  (``mappings/clinical_significance.csv``), else the significance's words; its level of
  evidence; its predicted phenotypes, each coding a condition (named by the coding's display,
  else the concept's text). Two are an error: the model holds one. A therapeutic-implication
  derived from it makes it actionable, for its medications assessed.
* **Source class.** A Variant states its own (the builders fill in the report's), so the
  report's is the one class all Variants state, else germline, as the v2 reader decides it.
  Mixed has no LOINC answer and the builders leave it out: it is not in the Bundle.

Not read, because the model has no place for them: who classified (the citation), the
molecular-consequence Observations (the Variant names its representative transcript),
structural variant ranges and copy numbers (such a Variant has no call, its g.HGVS and change
type are kept), population allele frequency, the variant confidence status (a VCF FILTER is
kept as the Variant's note), genomic study Procedures, biomarkers, genotypes, haplotypes,
phase relationships and Provenance. Errors are :class:`~adapter.errors.ReportError`, ``field``
the element (``Bundle.entry[3].resource.result[1]``); no message holds an identifier's value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from typing import Any, Final, NoReturn, TypeVar
from urllib.parse import unquote

from ..assembly import accession
from ..errors import ReportError
from ..fhir.codes import HGNC, SPDI, coding, profile, slices
from ..fhir.variant import BARE_PROTEIN_HGVS
from ..model import (
    ClinicalSignificance,
    CodedTerm,
    GenomeBuild,
    GenomicSourceClass,
    LabReport,
    PatientRef,
    ReportedClassification,
    ReportedVariant,
    ReportStatus,
    Sex,
    TranscriptConsequence,
    VariantAssessment,
    VariantCall,
    VariantInheritance,
    Zygosity,
)
from .annotations import significance_tier

__all__ = ["SOURCE_FORMAT", "read_report_bundle"]

#: a report read from a Bundle: its source format
SOURCE_FORMAT: Final = "FHIR Genomics Reporting Bundle"
_BUNDLE_TYPES: Final = ("transaction", "collection", "searchset")
_IDENTIFIER_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
_SUPPORTING: Final = "http://hl7.org/fhir/StructureDefinition/workflow-supportingInfo"
_NOTE: Final = profile("genomic-report-note")
_REPORT_CODE: Final = "51969-4"
_DIAGNOSTIC: Final = "diagnostic-implication"
_THERAPEUTIC: Final = "therapeutic-implication"
#: DiagnosticReport.status and Observation.status (R4) → the model's
_STATUS: Final = {
    **{s.value: s for s in ReportStatus},
    "amended": ReportStatus.CORRECTED,
    "appended": ReportStatus.CORRECTED,
}
_CHROMOSOMES: Final = (*(str(n) for n in range(1, 23)), "X", "Y", "M")
_BASES = re.compile(r"[ACGTN]+")
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T.+")
_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HISTORY = re.compile(r"/_history/[^/]*$")
_PATIENT_ID = re.compile(r"Patient/([A-Za-z0-9\-.]{1,64})")
#: LOINC LA30102-0, 1-based character counting: the coordinate system a call is read in
_ONE_BASED: Final = (coding("coordinate-system", "1-based-character") or {}).get("code")

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)
Json = Mapping[str, Any]


def read_report_bundle(bundle: Mapping[str, Any], *, source: str = "bundle") -> LabReport:
    """The report a genomic-report Bundle holds; ``source`` names the Bundle in errors."""
    found = _Bundle.of(bundle, source)
    report = found.report()
    resource = report.resource
    status = found.status(report)
    placed = found.variant_parts(report)
    build = found.build(placed)
    variants = found.variants(placed, build, status)
    order = found.order(report)
    patient, sex, birth_date = found.patient(report)
    specimen, specimen_type = found.specimen(report)
    phenotypes = found.phenotypes(report)
    classes = {v.source_class for v in variants}
    return LabReport(
        source_format=SOURCE_FORMAT,
        report_key=f"{order.key[0]}|{order.key[1]}",
        patient=patient,
        status=status,
        code=_report_code(_mapping(resource.get("code"))),
        build=build,
        source_class=(classes.pop() if len(classes) == 1 else None) or GenomicSourceClass.GERMLINE,
        sex=sex,
        birth_date=birth_date,
        placer_order=order.placer,
        filler_order=order.filler,
        specimen=specimen,
        specimen_type=specimen_type,
        collected=found.moment(report, "effectiveDateTime")
        or found.moment(report, "effectivePeriod", "start"),
        issued=found.moment(report, "issued"),
        performer=next((_str(p.get("display")) for p in _list(resource, "performer")), None),
        conclusion=_str(resource.get("conclusion")),
        notes=tuple(_notes(resource)),
        diagnoses=tuple(t for c in _list(resource, "conclusionCode") for t in _terms(c)),
        phenotypes=tuple(term for term, present in phenotypes if present),
        excluded_phenotypes=tuple(term for term, present in phenotypes if not present),
        variants=tuple(variants),
    )


# ---- the Bundle and its references -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    """One resource of the Bundle and its place, for errors."""

    path: str  # e.g. "Bundle.entry[3].resource"
    resource: Json

    @property
    def kind(self) -> str:
        return _str(self.resource.get("resourceType")) or ""


@dataclass(frozen=True, slots=True)
class _Order:
    """The report's key and order numbers, each (system, value)."""

    key: tuple[str, str]
    placer: tuple[str, str] | None
    filler: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class _Bundle:
    """The Bundle's resources, found by reference."""

    source: str
    entries: tuple[_Entry, ...]
    by_reference: Mapping[str, _Entry]

    @classmethod
    def of(cls, bundle: Mapping[str, Any], source: str) -> _Bundle:
        if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
            raise ReportError(
                "not a FHIR Bundle: read a genomic-report Bundle (resourceType Bundle)",
                source=source,
                field="resourceType",
            )
        if bundle.get("type") not in _BUNDLE_TYPES:
            raise ReportError(
                f"the Bundle's type is not read: send a {', '.join(_BUNDLE_TYPES)} Bundle",
                source=source,
                field="Bundle.type",
            )
        entries = []
        by_reference: dict[str, _Entry] = {}
        for index, entry in enumerate(_list(bundle, "entry")):
            resource = entry.get("resource")
            if not isinstance(resource, Mapping):
                continue  # a request without a resource: nothing to read
            found = _Entry(f"Bundle.entry[{index}].resource", resource)
            entries.append(found)
            for key in filter(None, (_str(entry.get("fullUrl")), _local(found))):
                by_reference.setdefault(key, found)
        return cls(source, tuple(entries), by_reference)

    def fail(self, path: str, message: str) -> NoReturn:
        raise ReportError(message, source=self.source, field=path)

    def resolve(self, reference: object) -> _Entry | None:
        """The entry a Reference points to, if the Bundle holds it."""
        target = _str(reference.get("reference")) if isinstance(reference, Mapping) else None
        if not target:
            return None
        target = _HISTORY.sub("", target)
        found = self.by_reference.get(target)
        if found is None and target.count("/") >= 2:  # an absolute URL: its Type/id
            found = self.by_reference.get("/".join(target.rsplit("/", 2)[-2:]))
        return found

    def required(self, reference: object, path: str, what: str) -> _Entry:
        found = self.resolve(reference)
        if found is None:
            self.fail(path, f"the {what} is not in the Bundle: include the resource referenced")
        return found

    # -- the report --

    def report(self) -> _Entry:
        reports = [e for e in self.entries if e.kind == "DiagnosticReport"]
        if not reports:
            self.fail("Bundle.entry", "the Bundle holds no DiagnosticReport: nothing to read")
        if len(reports) > 1:
            self.fail(
                reports[1].path,
                "the Bundle holds several DiagnosticReports: send one report per Bundle",
            )
        return reports[0]

    def status(self, report: _Entry) -> ReportStatus:
        status = _STATUS.get(_str(report.resource.get("status")) or "")
        if status is None:
            self.fail(
                f"{report.path}.status",
                "the report's status is none a lab report can have (registered, partial, "
                "preliminary, final, amended, corrected, appended, cancelled)",
            )
        return status

    def moment(self, entry: _Entry, name: str, part: str | None = None) -> datetime | None:
        """A dateTime with a time (see "Report" in the module docstring)."""
        value = entry.resource.get(name)
        if part is not None:
            value = value.get(part) if isinstance(value, Mapping) else None
        text = _str(value)
        if text is None or not _MOMENT.fullmatch(text):
            return None
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            where = f"{entry.path}.{name}" + (f".{part}" if part else "")
            self.fail(where, "not a FHIR dateTime (YYYY-MM-DDThh:mm:ss+zz:zz)")

    def order(self, report: _Entry) -> _Order:
        """Filler and placer order numbers and the report's key (see "Order and key")."""
        own = filler = None
        for identifier in _list(report.resource, "identifier"):
            pair, kind = _identifier(identifier), _identifier_type(identifier)
            if kind == "FILL":
                filler = filler or pair
            elif kind != "PLAC":
                own = own or pair
        placer = next(filter(None, map(self._placer, _list(report.resource, "basedOn"))), None)
        key = filler or placer or own
        if key is None:
            self.fail(
                f"{report.path}.identifier",
                "the DiagnosticReport has no identifier with a system and value, nor an order "
                "it is based on: the report needs one to be identified",
            )
        return _Order(key, placer, filler or (own if placer is None else None))

    def _placer(self, reference: Json) -> tuple[str, str] | None:
        logical = _identifier(_mapping(reference.get("identifier")))
        request = self.resolve(reference)
        if logical is not None or request is None:
            return logical
        found = _list(request.resource, "identifier")
        typed = [i for i in found if _identifier_type(i) == "PLAC"] + found
        return next(filter(None, map(_identifier, typed)), None)

    def patient(self, report: _Entry) -> tuple[PatientRef, Sex, date | None]:
        """The subject, and its sex and birth date when the Bundle holds the Patient."""
        path = f"{report.path}.subject"
        subject = _mapping(report.resource.get("subject"))
        logical = _identifier(_mapping(subject.get("identifier")))
        target = _str(subject.get("reference")) or ""
        found = self.resolve(subject)
        if logical is not None:
            return PatientRef(None, *logical), Sex.UNKNOWN, None
        if target.startswith("Patient?"):
            return self._conditional(target, f"{path}.reference"), Sex.UNKNOWN, None
        if found is not None and found.kind == "Patient":
            named = _patient(found.resource)
            if named is None:
                self.fail(found.path, "the report's Patient has neither an identifier nor an id")
            return named, _sex(found.resource), _birth_date(found.resource)
        if (literal := _PATIENT_ID.fullmatch(target)) is not None:
            return PatientRef(id=literal[1]), Sex.UNKNOWN, None
        self.fail(
            path,
            "the report's subject is no Patient the adapter can name: reference it by "
            "identifier, as Patient/<id>, or include the Patient in the Bundle",
        )

    def _conditional(self, target: str, path: str) -> PatientRef:
        """``Patient?identifier=system|value``, as a transaction's writer makes it."""
        for parameter in target.partition("?")[2].split("&"):
            name, _, value = parameter.partition("=")
            system, bar, found = unquote(value).partition("|")
            if name == "identifier" and bar and system and found:
                return PatientRef(identifier_system=system, identifier_value=found)
        self.fail(
            path, "a conditional reference to the patient must search identifier=system|value"
        )

    def specimen(self, report: _Entry) -> tuple[tuple[str, str] | None, CodedTerm | None]:
        """The first specimen's identifier, and its type when the Bundle holds it."""
        for reference in _list(report.resource, "specimen"):
            found = self.resolve(reference)
            if found is not None:
                kind = _terms(_mapping(found.resource.get("type")))
                identifiers = map(_identifier, _list(found.resource, "identifier"))
                return next(filter(None, identifiers), None), kind[0] if kind else None
            logical = _identifier(_mapping(reference.get("identifier")))
            if logical is not None:
                return logical, None
        return None, None

    def phenotypes(self, report: _Entry) -> list[tuple[CodedTerm, bool]]:
        """Each supporting phenotypic feature's term, and whether it is present."""
        absent = coding("variant-value", VariantAssessment.ABSENT)
        found = []
        for index, extension in enumerate(_list(report.resource, "extension")):
            if extension.get("url") != _SUPPORTING:
                continue
            path = f"{report.path}.extension[{index}]"
            feature = self.required(extension.get("valueReference"), path, "phenotypic feature")
            terms = _terms(_mapping(feature.resource.get("code")))
            if not terms:
                self.fail(f"{feature.path}.code", "a phenotypic feature without a code")
            value = _mapping(feature.resource.get("valueCodeableConcept"))
            codes = {c.get("code") for c in _list(value, "coding")}
            found.append((terms[0], not (absent is not None and absent["code"] in codes)))
        return found

    # -- variants --

    def variant_parts(self, report: _Entry) -> list[_Parts]:
        """The components of the report's results that are Variants, in its order."""
        results = [
            self.required(reference, f"{report.path}.result[{index}]", "result")
            for index, reference in enumerate(_list(report.resource, "result"))
        ]
        return [_Parts.of(self, e, _slice_names()) for e in results if _is(e.resource, "variant")]

    def build(self, variants: list[_Parts]) -> GenomeBuild | None:
        """The one reference assembly the report's Variants state, if any."""
        found: GenomeBuild | None = None
        for parts in variants:
            build = parts.one(
                "reference-sequence-assembly", parts.answer(GenomeBuild, "genome-build")
            )
            if found is not None and build is not None and build is not found:
                self.fail(
                    parts.place("reference-sequence-assembly"),
                    "the report's Variants state two reference assemblies: one report has "
                    "one build",
                )
            found = found or build
        return found

    def variants(
        self, variants: list[_Parts], build: GenomeBuild | None, status: ReportStatus
    ) -> list[ReportedVariant]:
        """The report's Variants, keyed 1, 2... (see "Variants"), with their implications."""
        derived = self._derived({p.entry.path for p in variants})
        return [
            _VariantReader(self, parts, build, derived.get(parts.entry.path, {})).read(
                str(key), status
            )
            for key, parts in enumerate(variants, 1)
        ]

    def _derived(self, variants: set[str]) -> dict[str, dict[str, list[_Entry]]]:
        """Variant's path → implication kind → the implications derived from it."""
        found: dict[str, dict[str, list[_Entry]]] = {}
        for entry in self.entries:
            kind = next((k for k in (_DIAGNOSTIC, _THERAPEUTIC) if _is(entry.resource, k)), None)
            for reference in _list(entry.resource, "derivedFrom") if kind else ():
                target = self.resolve(reference)
                if target is not None and target.path in variants:
                    found.setdefault(target.path, {}).setdefault(kind or "", []).append(entry)
        return found


# ---- components ----------------------------------------------------------------------------------

#: reads one component's value, None when it has none; raises _Unreadable on a bad one
Read = Callable[[Json], T | None]


@dataclass(frozen=True, slots=True)
class _Parts:
    """An Observation's components by name (a Variant's slices, an implication's parts)."""

    bundle: _Bundle
    entry: _Entry
    by_name: Mapping[str, list[tuple[str, Json]]]  # name → (path, component)

    @classmethod
    def of(cls, bundle: _Bundle, entry: _Entry, names: Mapping[tuple[str, str], str]) -> _Parts:
        found: dict[str, list[tuple[str, Json]]] = {}
        for index, component in enumerate(_list(entry.resource, "component")):
            codes = _list(_mapping(component.get("code")), "coding")
            name = next(
                (names.get((str(c.get("system")), str(c.get("code")))) for c in codes), None
            )
            if name is not None:
                path = f"{entry.path}.component[{index}]"
                found.setdefault(name, []).append((path, component))
        return cls(bundle, entry, found)

    def place(self, name: str) -> str:
        return next((path for path, _ in self.by_name.get(name, ())), self.entry.path)

    def all(self, name: str, read: Read[T]) -> list[T]:
        """The part's values, each once, in order."""
        values = []
        for path, component in self.by_name.get(name, ()):
            try:
                values.append(read(component))
            except _Unreadable as e:
                self.bundle.fail(path, f"the Observation's {name}: {e}")
        return list(dict.fromkeys(v for v in values if v is not None))

    def one(self, name: str, read: Read[T]) -> T | None:
        """The value of a single-valued part; stated twice, differently, is an error."""
        values = self.all(name, read)
        if len(values) > 1:
            self.bundle.fail(
                self.by_name[name][1][0],
                f"the Observation states its {name} twice, differently: the model holds one",
            )
        return values[0] if values else None

    def answer(self, kind: type[E], group: str) -> Read[E]:
        """A reader of a coded answer of ``mappings/answer_codes.csv`` as the model's enum."""

        def read(component: Json) -> E | None:
            concept = _concept(component)
            found = _member(kind, group, concept) if concept else None
            if concept and found is None:
                names = ", ".join(m.value for m in kind)
                raise _Unreadable(f"the answer is none the adapter knows ({names})")
            return found

        return read


@dataclass(frozen=True, slots=True)
class _VariantReader:
    """One Variant Observation read into a :class:`~adapter.model.ReportedVariant`: its
    components, the report's build, and its implications by kind."""

    bundle: _Bundle
    parts: _Parts
    build: GenomeBuild | None
    implications: Mapping[str, list[_Entry]]

    @property
    def entry(self) -> _Entry:
        return self.parts.entry

    def read(self, key: str, report: ReportStatus) -> ReportedVariant:
        parts, resource = self.parts, self.entry.resource
        notes = [_str(n.get("text")) or "" for n in _list(resource, "note")]
        bare = [n.removeprefix(BARE_PROTEIN_HGVS) for n in notes if n.startswith(BARE_PROTEIN_HGVS)]
        zygosity = parts.one("allelic-state", parts.answer(Zygosity, "allelic-state"))
        depth = parts.one("allelic-read-depth", _count)
        frequency = parts.one("sample-allelic-frequency", _quantity)
        therapies = self.implications.get(_THERAPEUTIC, [])
        return ReportedVariant(
            key=key,
            assessment=self._assessment(),
            consequence=self._consequence(bare[0] if bare else None),
            genomic_hgvs=parts.one("genomic-hgvs", _code),
            display_name=_str(_mapping(resource.get("code")).get("text")),
            change_type=parts.one("coding-change-type", _term),
            cytogenetic_location=parts.one("cytogenetic-location", _code),
            call=self._call(zygosity, depth, frequency),
            zygosity=zygosity,
            source_class=parts.one(
                "genomic-source-class", parts.answer(GenomicSourceClass, "source-class")
            ),
            allele_frequency=frequency,
            allele_depth=depth,
            variation_codes=tuple(
                t for t in parts.all("variation-code", _term) if t.system != SPDI
            ),
            classification=self._classification(),
            inheritance=parts.one(
                "variant-inheritance", parts.answer(VariantInheritance, "variant-inheritance")
            ),
            actionable=bool(therapies),
            therapies=tuple(
                dict.fromkeys(t for e in therapies for t in _medications(self.bundle, e))
            ),
            status=self._status(report),
            notes=tuple(n for n in notes if n and not n.startswith(BARE_PROTEIN_HGVS)),
            where=self.entry.path,
        )

    def _assessment(self) -> VariantAssessment:
        value = _mapping(self.entry.resource.get("valueCodeableConcept"))
        found = _member(VariantAssessment, "variant-value", value)
        if found is None:
            self.bundle.fail(
                f"{self.entry.path}.valueCodeableConcept",
                "a Variant's value must say whether it was found (LOINC LL1971-2: present, "
                "absent, no call, indeterminate)",
            )
        return found

    def _status(self, report: ReportStatus) -> ReportStatus | None:
        """The Variant's status; None when it is the report's (or unknown)."""
        written = _str(self.entry.resource.get("status")) or "unknown"
        if written == "entered-in-error":
            self.bundle.fail(
                f"{self.entry.path}.status",
                "a Variant entered in error has no place in a report: leave it out",
            )
        status = _STATUS.get(written)
        if status is None or status.observation == report.observation:
            return None  # a partial report's results are preliminary
        return status

    def _consequence(self, bare_protein: str | None) -> TranscriptConsequence | None:
        parts = self.parts
        hgnc_id, symbol = next(iter(parts.all("gene-studied", _gene)), (None, None))
        transcript = parts.one("representative-transcript-ref-seq", _code)
        hgvs_c = parts.one("representative-coding-hgvs", _code)
        hgvs_p = parts.one("representative-protein-hgvs", _code) or bare_protein
        if not any((hgnc_id, symbol, transcript, hgvs_c, hgvs_p)):
            return None
        return TranscriptConsequence(
            consequences=(),
            gene_symbol=symbol,
            hgnc_id=hgnc_id,
            transcript=transcript,
            hgvs_c=hgvs_c,
            hgvs_p=hgvs_p,
        )

    def _call(
        self, zygosity: Zygosity | None, depth: int | None, frequency: float | None
    ) -> VariantCall | None:
        """A VCF-style call, when the Variant gives one (see "Calls" in the docstring)."""
        parts = self.parts
        sequence = parts.one("genomic-ref-seq", _code)
        chromosome = parts.one("chromosome-identifier", _chromosome) or _chromosome_of(
            self.build, sequence
        )
        span = parts.one("exact-start-end", _range)
        ref, alt = ((parts.one(n, _string) or "").upper() for n in ("ref-allele", "alt-allele"))
        if (
            chromosome is None
            or span is None
            or not (_BASES.fullmatch(ref) and _BASES.fullmatch(alt))
        ):
            return None
        counting = parts.one("coordinate-system", _code)
        if counting is not None and counting != _ONE_BASED:
            return None
        if sequence is not None and (
            self.build is None or sequence != accession(self.build, chromosome)
        ):
            return None
        start, end = span
        if end != start + len(ref) - 1:
            self.bundle.fail(
                parts.place("exact-start-end"),
                "the exact start-end does not span the reference allele",
            )
        return VariantCall(
            chrom=chromosome,
            chromosome=chromosome,
            pos=start,
            ref=ref,
            alt=alt,
            alt_index=1,
            genotype="",
            zygosity=zygosity,
            allele_depth=depth,
            allele_frequency=frequency,
        )

    def _classification(self) -> ReportedClassification | None:
        """The Variant's diagnostic-implication, if it has one."""
        found = self.implications.get(_DIAGNOSTIC, [])
        if not found:
            return None
        if len(found) > 1:
            self.bundle.fail(
                found[1].path,
                "a Variant with several diagnostic-implications: the model holds one "
                "classification per variant",
            )
        parts = _Parts.of(self.bundle, found[0], _implication_names(_DIAGNOSTIC))
        significance = parts.one("clinical-significance", _significance)
        if significance is None:
            self.bundle.fail(
                f"{found[0].path}.component",
                "a diagnostic-implication without a clinical significance (LOINC 53037-8)",
            )
        conditions = tuple(
            t for terms in parts.all("predicted-phenotype", _value_terms) for t in terms
        )
        text, tier, code = significance
        evidence = parts.one("evidence-level", _text)
        return ReportedClassification(text, tier, code, tuple(dict.fromkeys(conditions)), evidence)


def _medications(bundle: _Bundle, implication: _Entry) -> list[CodedTerm]:
    """The medications a therapeutic-implication assesses."""
    parts = _Parts.of(bundle, implication, _implication_names(_THERAPEUTIC))
    return [t for terms in parts.all("medication-assessed", _value_terms) for t in terms]


# ---- values --------------------------------------------------------------------------------------


class _Unreadable(Exception):
    """A component's value the model cannot take; :class:`_Parts` names the component."""


def _concept(component: Json) -> Json:
    return _mapping(component.get("valueCodeableConcept"))


def _code(component: Json) -> str | None:
    """The code of the value's first coding, else its text: an HGVS name, an accession."""
    concept = _concept(component)
    codes = [_str(c.get("code")) for c in _list(concept, "coding")]
    return next(filter(None, codes), None) or _str(concept.get("text"))


def _term(component: Json) -> CodedTerm | None:
    found = _terms(_concept(component))
    return found[0] if found else None


def _value_terms(component: Json) -> tuple[CodedTerm, ...]:
    return tuple(_terms(_concept(component)))


def _string(component: Json) -> str | None:
    return _str(component.get("valueString"))


def _text(component: Json) -> str | None:
    """Words: a CodeableConcept's text, else a string."""
    return _str(_concept(component).get("text")) or _string(component)


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Unreadable("the value is no number")
    return float(value)


def _quantity(component: Json) -> float | None:
    return _number(_mapping(component.get("valueQuantity")).get("value"))


def _count(component: Json) -> int | None:
    found = _quantity(component)
    if found is not None and (found < 0 or found != int(found)):
        raise _Unreadable("a read depth is a whole number, 0 or more")
    return None if found is None else int(found)


def _range(component: Json) -> tuple[int, int] | None:
    """An exact start-end: 1-based positions low and high."""
    value = _mapping(component.get("valueRange"))
    low, high = (_number(_mapping(value.get(k)).get("value")) for k in ("low", "high"))
    if low is None or high is None:
        return None
    if low < 1 or low != int(low) or high != int(high):
        raise _Unreadable("a start-end is whole 1-based positions")
    return int(low), int(high)


def _gene(component: Json) -> tuple[str | None, str | None] | None:
    """(HGNC id, symbol): an HGNC coding and its display, else the gene's name."""
    concept = _concept(component)
    for found in _list(concept, "coding"):
        if found.get("system") == HGNC and _str(found.get("code")):
            return _str(found.get("code")), _str(found.get("display"))
    name = _str(concept.get("text"))
    return (None, name) if name else None


def _chromosome(component: Json) -> str | None:
    concept = _concept(component)
    codes = {c.get("code") for c in _list(concept, "coding")}
    found = next((c for c in _CHROMOSOMES if _chromosome_code(c) in codes), None)
    if found is None and concept:
        raise _Unreadable("the chromosome is none of LOINC's answers (LL2938-0)")
    return found


def _chromosome_code(chromosome: str) -> str | None:
    found = coding("chromosome", chromosome)
    return found["code"] if found else None


def _chromosome_of(build: GenomeBuild | None, sequence: str | None) -> str | None:
    """The chromosome whose RefSeq accession on ``build`` is ``sequence``."""
    if build is None or sequence is None:
        return None
    return next((c for c in _CHROMOSOMES if accession(build, c) == sequence), None)


def _significance(component: Json) -> tuple[str, ClinicalSignificance | None, str | None] | None:
    """(text, ACMG/AMP tier, LOINC answer code) of a clinical significance."""
    concept = _concept(component)
    for found in _list(concept, "coding"):
        code = _str(found.get("code"))
        tier = next((t for t in ClinicalSignificance if _tier_code(t) == code), None)
        if tier is not None:
            return _str(found.get("display")) or tier.value, tier, code
    text = _str(concept.get("text")) or next(
        filter(None, (_str(c.get("display")) for c in _list(concept, "coding"))), None
    )
    return (text, None, None) if text else None


def _tier_code(tier: ClinicalSignificance) -> str | None:
    found = significance_tier(tier.value.replace(" ", "_"))
    return found[1] if found else None


def _member(kind: type[E], group: str, concept: Json) -> E | None:
    """The model's name for a coded answer: by its code (``mappings/answer_codes.csv``), else
    by its display or text."""
    codes = {c.get("code") for c in _list(concept, "coding")}
    for member in kind:
        found = coding(group, member.value)
        if found is not None and found["code"] in codes:
            return member
    words = {_str(c.get("display")) for c in _list(concept, "coding")} | {_str(concept.get("text"))}
    names = {w.casefold() for w in words if w}
    return next((m for m in kind if m.value.casefold() in names), None)


def _terms(concept: Json) -> list[CodedTerm]:
    """A CodeableConcept's codings as terms, each named by its display, else the concept's
    text; its text alone when it has no coding."""
    text = _str(concept.get("text"))
    found = [
        CodedTerm(system, code, _str(c.get("display")) or text)
        for c in _list(concept, "coding")
        if (system := _str(c.get("system"))) and (code := _str(c.get("code")))
    ]
    return found or ([CodedTerm(None, None, text)] if text else [])


def _report_code(concept: Json) -> CodedTerm | None:
    """The test the lab named (OBR-4): a coding beside 51969-4, else 51969-4."""
    found = _terms(concept)
    named = [t for t in found if t.code != _REPORT_CODE] or found
    return named[0] if named else None


def _notes(resource: Json) -> list[str]:
    notes = (e for e in _list(resource, "extension") if e.get("url") == _NOTE)
    return [text for e in notes if (text := _str(_mapping(e.get("valueAnnotation")).get("text")))]


# ---- identifiers and the patient -----------------------------------------------------------------


def _identifier(identifier: Json) -> tuple[str, str] | None:
    system, value = _str(identifier.get("system")), _str(identifier.get("value"))
    return (system, value) if system and value else None


def _identifier_type(identifier: Json) -> str | None:
    """The HL7 v2-0203 code typing an identifier (FILL, PLAC, MR...), if any."""
    codes = _list(_mapping(identifier.get("type")), "coding")
    return next((_str(c.get("code")) for c in codes if c.get("system") == _IDENTIFIER_TYPE), None)


def _patient(resource: Json) -> PatientRef | None:
    """A Patient of the Bundle: its identifier typed MR, else its first; else its id."""
    found = _list(resource, "identifier")
    typed = [i for i in found if _identifier_type(i) == "MR"] + found
    pair = next(filter(None, map(_identifier, typed)), None)
    if pair is not None:
        return PatientRef(None, *pair)
    rid = _str(resource.get("id"))
    return PatientRef(id=rid) if rid else None


def _sex(resource: Json) -> Sex:
    gender = _str(resource.get("gender")) or ""
    return {"male": Sex.MALE, "female": Sex.FEMALE}.get(gender, Sex.UNKNOWN)


def _birth_date(resource: Json) -> date | None:
    """A birthDate of a full date (a year or a month is no birth date)."""
    text = _str(resource.get("birthDate"))
    if text is None or not _FULL_DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


# ---- JSON ----------------------------------------------------------------------------------------


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: object) -> Json:
    return value if isinstance(value, Mapping) else {}


def _list(node: Json, key: str) -> list[Json]:
    """The objects of a list element (anything else in it is no element the model reads)."""
    value = node.get(key)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _local(entry: _Entry) -> str | None:
    """``Type/id`` of an entry with an id."""
    rid = _str(entry.resource.get("id"))
    return f"{entry.kind}/{rid}" if rid and entry.kind else None


def _is(resource: Json, name: str) -> bool:
    """Whether an Observation is of the IG's profile ``name``, or coded as one."""
    profiles = _mapping(resource.get("meta")).get("profile")
    if isinstance(profiles, list) and profile(name) in profiles:
        return True
    wanted = coding("resource-code", name)
    codes = _list(_mapping(resource.get("code")), "coding")
    return wanted is not None and any(
        (c.get("system"), c.get("code")) == (wanted["system"], wanted["code"]) for c in codes
    )


@cache
def _slice_names() -> dict[tuple[str, str], str]:
    """A Variant component's (system, code) → its slice name (``loinc_components.csv``)."""
    return {(s.system, s.code): name for name, s in slices().items()}


@cache
def _implication_names(kind: str) -> dict[tuple[str, str], str]:
    """An implication component's (system, code) → its name (``answer_codes.csv``)."""
    names = {
        _DIAGNOSTIC: ("clinical-significance", "evidence-level", "predicted-phenotype"),
        _THERAPEUTIC: ("medication-assessed",),
    }[kind]
    found = {name: coding("implication-component", name) for name in names}
    return {(c["system"], c["code"]): name for name, c in found.items() if c is not None}
