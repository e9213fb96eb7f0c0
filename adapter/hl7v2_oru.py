"""HL7 v2 out: one :class:`~adapter.model.LabReport` as an ORU^R01 message (HL7 v2.5.1), in the
model :mod:`adapter.readers.hl7v2` reads, so that ``read_oru(oru_message(r))`` gives ``r`` back.

Model: HL7 Version 2 Implementation Guide: Clinical Genomics; Fully LOINC-Qualified Genetic
Variation Model (ORU^R01, HL7 v2.5.1; https://wiki.hl7.org/Product_CG_GENO), the LOINC panel
81247-9 (https://loinc.org/81247-9). ``mappings/hl7v2_variant_obx.csv`` says which model field
each OBX carries and its OBX-2 value type (the first the table lists); the reader uses the same
table. Codes are HL7 Terminology 7.0.1's (hl7.terminology.r4): tables 0123, 0085, 0119, 0105,
0203, 0211, 0301, 0396.

Decisions, each a policy of this module:

* **Segments.** MSH, PID, ORC, OBR, NTE (the report's notes), the report-level OBX (51967-8
  diagnoses, 62374-4 build, 48002-0 source class, 51969-4 conclusion), then per variant its OBX
  group under one OBX-4 sub-ID (the variant's key), 69548-6 first, and NTE of its notes after
  its last OBX; SPM last, when the report names a specimen or its type. One report per message.
* **MSH.** MSH-3/4 and MSH-5/6 are the caller's ``sending`` and ``receiving`` (application,
  facility), each an HD as written (``GENELAB`` or ``LAB^2.16.840.1.113883.19.4^ISO``); MSH-7
  ``now``; MSH-9 ``ORU^R01^ORU_R01``; MSH-10 ``control_id``; MSH-11 P (production, table
  0103); MSH-12 2.5.1; MSH-18 ``UNICODE UTF-8`` (table 0211): the text is returned as ``str``
  and non-ASCII characters are written as themselves, so send it encoded as UTF-8.
* **Escaping.** Text is escaped with python-hl7's ``hl7.util.escape`` (``\\F\\ \\S\\ \\T\\
  \\R\\ \\E\\``, a line break as ``\\.br\\``, other control characters as ``\\Xhh\\``); it
  turns non-ASCII characters into ``\\Xhh\\`` byte by byte, which the reader cannot undo for
  characters past U+00FF, so only the ASCII runs of a text go through it.
* **Identifiers.** A system ``urn:oid:<OID>`` becomes universal ID ``<OID>`` of type ISO, any
  other URI universal ID of type URI (table 0301); a system the deployment's ``authorities``
  (namespace ID → system URI, the map :func:`~adapter.readers.hl7v2.read_oru` takes) names
  also gets that namespace ID. PID-3 is the patient's identifier (CX, type MR: the identifier
  the report is filed under), OBR-2/ORC-2 the placer and OBR-3/ORC-3 the filler order number
  (EI), SPM-2.2 the specimen (EIP's filler EI). A patient known by a server id alone, or a
  report with neither order number, cannot be written (:class:`~adapter.errors.ReportError`).
* **Patient.** PID-7 birth date, PID-8 M or F (an unknown sex is left empty). Never a name,
  address or telephone number: PID-5, required by v2.5.1, is left empty.
* **Times.** DTM with the UTC offset (a naive time taken as UTC), to 1/10,000 s, the precision
  of DTM; a UTC offset with seconds keeps hours and minutes. OBR-7 and SPM-17 are ``collected``,
  OBR-22 ``issued``.
* **Status.** OBR-25 (table 0123): registered I, partial A, preliminary P, final F, corrected C,
  cancelled X. OBX-11 (table 0085) is each variant's status, else the report's: registered I,
  partial R, preliminary P, final F, corrected C, cancelled X. Each reads back as the status it
  was written from (the reader's maps).
* **Values.** Coded terms are CWE ``code^display^name``, the name the coding system's HL7 v2
  name (:func:`~adapter.code_systems.by_system`); a system without one leaves CWE-3 empty (the
  reader then keeps the text, or a DNA change type's Sequence Ontology term by its code), a
  term without a code is text alone (``^text``). LOINC answers (assessment, allelic state,
  source class, inheritance, build, chromosome, coordinate system) come from
  ``mappings/answer_codes.csv``; one the table lacks (source class mixed, chromosome M) is
  written as text. Identifiers the model keeps as strings are CWE in the coding systems of
  table 0396: gene ``HGNC:1100^BRCA1^HGNC`` (a symbol alone ``BRCA1^^HGNC-Symb``), transcript
  refSeq-T (ensembl-T for ENST...), c./p./g.HGVS HGVS.c/HGVS.p/HGVS.g, cytogenetic location
  Chrom-Loc, the chromosome's accession (48013-7) refSeq-G. A clinical significance is its
  ACMG/AMP tier's LOINC answer with the report's words as the text, else the words alone.
  Numbers are written in full decimal notation (NM allows no exponent).
* **Calls.** A variant's VCF-style call (sequence REF and ALT) is written as chromosome
  (48000-4), 1-based character counting (92822-6), start^end spanning REF (81254-5, NR), REF
  and ALT (69547-8, 69551-0) and, when the report has a build, the chromosome's RefSeq
  accession (48013-7): what the reader needs to build the call back. Its zygosity, read depth
  and allele frequency are the variant's (the call's when the variant has none).

Not carried, because the v2 model the reader reads has no place for them: the message ID of
the source (MSH-10 is ``control_id``), ``performer``, phenotypes and excluded phenotypes, a
classification's ``evidence``, ``actionable`` and ``therapies``, a call's genotype, filters and
structural variant facts (a call whose REF or ALT is no base sequence is not written), a
transcript consequence's terms and annotation fields, the system of a term whose system has no
HL7 v2 name, and a source format other than HL7 v2.5.1 (the reader's ``source_format`` is
``HL7 v2.5.1 ORU^R01``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Final

import hl7

from .assembly import accession
from .code_systems import by_system
from .errors import OptionsError, ReportError
from .fhir.codes import coding
from .model import (
    CodedTerm,
    LabReport,
    ReportedClassification,
    ReportedVariant,
    ReportStatus,
    Sex,
    TranscriptConsequence,
    VariantCall,
)
from .readers.annotations import significance_tier
from .resources import mapping_rows

__all__ = ["oru_message"]

_VERSION: Final = "2.5.1"
_MESSAGE_TYPE: Final = "ORU^R01^ORU_R01"
_CHARACTER_SET: Final = "UNICODE UTF-8"  # HL7 table 0211
_ENCODING: Final = "^~\\&"
#: the report's status → OBR-25 (HL7 table 0123)
_RESULT_STATUS: Final = {
    ReportStatus.REGISTERED: "I",
    ReportStatus.PARTIAL: "A",
    ReportStatus.PRELIMINARY: "P",
    ReportStatus.FINAL: "F",
    ReportStatus.CORRECTED: "C",
    ReportStatus.CANCELLED: "X",
}
#: a variant's status → OBX-11 (HL7 table 0085)
_OBSERVATION_STATUS: Final = {
    ReportStatus.REGISTERED: "I",
    ReportStatus.PARTIAL: "R",
    ReportStatus.PRELIMINARY: "P",
    ReportStatus.FINAL: "F",
    ReportStatus.CORRECTED: "C",
    ReportStatus.CANCELLED: "X",
}
_SEX: Final = {Sex.MALE: "M", Sex.FEMALE: "F"}  # HL7 table 0001
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9]\d*))+")
_BASES = re.compile(r"[ACGTN]+")
#: python-hl7's container of this module's delimiters, for its escape
_CONTAINER: Final = hl7.Message(separators="\r|~^&", esc="\\")
#: characters python-hl7's escape would write as a malformed hex sequence
_CONTROLS: Final = {
    "\n": ".br",
    **{chr(c): f"X{c:02X}" for c in (*range(0x20), 0x7F) if chr(c) not in "\r\n"},
}
_ASCII_RUN = re.compile(r"[\x00-\x7f]+")
#: text with no character to escape: printable ASCII but the delimiters and the escape
_PLAIN = re.compile(r"[^|^~\\&\x00-\x1f\x7f-\U0010ffff]*")
#: characters the header's HD values must not hold: they would end or split a field
_NOT_IN_HD = re.compile(r"[|~\\\r\n]")
#: one OBX to write: level, sub-ID, model field, OBX-5 repetitions, OBX-11
_Row = tuple[str, str, str, list[str], str]


def oru_message(
    report: LabReport,
    *,
    control_id: str,
    now: datetime,
    sending: tuple[str, str],
    receiving: tuple[str, str],
    authorities: Mapping[str, str] = {},
) -> str:
    """``report`` as an ORU^R01 message, segments ended by CR; ``sending`` and ``receiving``
    are (application, facility) HDs, ``authorities`` the reader's map of assigning authority
    namespace IDs to system URIs (see the module docstring)."""
    if not control_id:
        raise OptionsError("the message needs a control ID (MSH-10)", field="control_id")
    for name, pair in (("sending", sending), ("receiving", receiving)):
        if any(_NOT_IN_HD.search(hd) for hd in pair):
            raise OptionsError(
                f"the {name} application and facility are HDs (namespace^universal ID^type): "
                "they cannot hold |, ~, \\ or a line break",
                field=name,
            )
    writer = _Writer({system: namespace for namespace, system in authorities.items()})
    segments = [
        _segment(
            "MSH",
            {
                2: _ENCODING,
                3: sending[0],
                4: sending[1],
                5: receiving[0],
                6: receiving[1],
                7: _dtm(now),
                9: _MESSAGE_TYPE,
                10: _escape(control_id),
                11: "P",
                12: _VERSION,
                18: _CHARACTER_SET,
            },
        ),
        writer.pid(report),
        *writer.order(report),
        *_notes(report.notes),
        *writer.observations(report),
        *writer.specimen(report),
    ]
    return "".join(f"{s}\r" for s in segments)


def _segment(name: str, fields: Mapping[int, str]) -> str:
    """A segment of its fields by position (MSH: MSH-1 is the separator before MSH-2)."""
    last = max(fields, default=0)
    first = 2 if name == "MSH" else 1
    values = [fields.get(position, "") for position in range(first, last + 1)]
    return "|".join([name, *values]).rstrip("|")


def _escape(text: str) -> str:
    """Text for a field (see "Escaping" in the module docstring); most text has nothing to
    escape, and python-hl7's escape walks it character by character."""
    if _PLAIN.fullmatch(text):
        return text
    return _ASCII_RUN.sub(lambda run: str(hl7.util.escape(_CONTAINER, run[0], _CONTROLS)), text)


def _components(*parts: str, separator: str = "^") -> str:
    """Escaped parts joined, trailing empty ones left out."""
    return separator.join(_escape(p) for p in parts).rstrip(separator)


def _notes(notes: Sequence[str]) -> list[str]:
    """NTE segments, comments of the filler (NTE-2 L, HL7 table 0105)."""
    return [_segment("NTE", {1: str(i), 2: "L", 3: _escape(n)}) for i, n in enumerate(notes, 1)]


def _dtm(moment: datetime) -> str:
    """A DTM with its UTC offset (see "Times" in the module docstring)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    text = (
        f"{aware.year:04d}{aware.month:02d}{aware.day:02d}"
        f"{aware.hour:02d}{aware.minute:02d}{aware.second:02d}"
    )
    if aware.microsecond:
        text += f".{aware.microsecond // 100:04d}"
    return text + aware.strftime("%z")[:5]


def _day(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def _decimal(value: float) -> str:
    """A number in full decimal notation, the shortest that reads back as ``value``."""
    return format(Decimal(repr(value)), "f")


@cache
def _rows() -> dict[tuple[str, str], tuple[str, str, str]]:
    """``mappings/hl7v2_variant_obx.csv`` as (level, model field) → (LOINC code, display,
    the OBX-2 value type written)."""
    return {
        (r["level"], r["field"]): (r["code"], r["display"], r["v2_types"].split()[0])
        for r in mapping_rows("hl7v2_variant_obx.csv")
    }


@dataclass(frozen=True, slots=True)
class _Writer:
    """The segments of one report; ``namespaces`` maps system URIs to namespace IDs."""

    namespaces: Mapping[str, str]

    # -- identifiers --

    def authority(self, system: str, place: str, separator: str) -> str:
        """The assigning authority of ``system``: namespace ID, universal ID and its type."""
        namespace = self.namespaces.get(system, "")
        oid = system.removeprefix("urn:oid:")
        if system.startswith("urn:oid:") and _OID.fullmatch(oid):
            return _components(namespace, oid, "ISO", separator=separator)
        if ":" in system:
            return _components(namespace, system, "URI", separator=separator)
        if namespace:
            return _components(namespace, separator=separator)
        raise ReportError(
            f"an identifier's system is no URI and has no namespace ID: {place} needs an "
            "assigning authority; map the system to a namespace ID in authorities",
            field=place,
        )

    def entity(self, identifier: tuple[str, str] | None, place: str, separator: str = "^") -> str:
        """An EI: the value and its assigning authority (EI-2 to EI-4), or empty."""
        if identifier is None:
            return ""
        system, value = identifier
        authority = self.authority(system, place, separator)
        return f"{_escape(value)}{separator}{authority}".rstrip(separator)

    # -- segments --

    def pid(self, report: LabReport) -> str:
        patient = report.patient
        system, value = patient.identifier_system, patient.identifier_value
        if not (system and value):
            raise ReportError(
                "the patient is known by a server id alone: PID-3 needs an identifier with its "
                "system (read the Bundle with the patient referenced by identifier)",
                field="PID-3",
            )
        authority = self.authority(system, "PID-3.4", "&")
        identifiers = f"{_escape(value)}^^^{authority}^MR"
        born = _day(report.birth_date) if report.birth_date else ""
        return _segment("PID", {1: "1", 3: identifiers, 7: born, 8: _SEX.get(report.sex, "")})

    def order(self, report: LabReport) -> list[str]:
        """ORC and OBR: order numbers, the test, times and status."""
        if report.placer_order is None and report.filler_order is None:
            raise ReportError(
                "the report has neither a filler nor a placer order number: OBR-3 (or OBR-2) "
                "must identify it",
                field="OBR-3",
            )
        placer = self.entity(report.placer_order, "OBR-2")
        filler = self.entity(report.filler_order, "OBR-3")
        request = {1: "1", 2: placer, 3: filler, 4: _term(report.code) if report.code else ""}
        request |= {7: _dtm(report.collected) if report.collected else ""}
        request |= {22: _dtm(report.issued) if report.issued else ""}
        request |= {25: _RESULT_STATUS[report.status]}
        return [_segment("ORC", {1: "RE", 2: placer, 3: filler}), _segment("OBR", request)]

    def specimen(self, report: LabReport) -> list[str]:
        """SPM: the specimen (its filler EI in SPM-2.2), its type and collection time."""
        if report.specimen is None and report.specimen_type is None:
            return []
        found = self.entity(report.specimen, "SPM-2", "&")
        kind = _term(report.specimen_type) if report.specimen_type else ""
        collected = _dtm(report.collected) if report.collected else ""
        specimen = f"^{found}" if found else ""
        return [_segment("SPM", {1: "1", 2: specimen, 4: kind, 17: collected})]

    def observations(self, report: LabReport) -> list[str]:
        """The report-level OBX, then each variant's group and its notes; OBX-1 counts OBX."""
        keys = [v.key.strip() for v in report.variants]
        if "" in keys or len(set(keys)) < len(keys):
            raise ReportError(
                "each variant needs a key of its own: it is the OBX-4 sub-ID of its group",
                field="OBX-4",
            )
        status = _OBSERVATION_STATUS[report.status]
        groups: list[tuple[list[_Row], Sequence[str]]] = [
            ([("report", "", f, v, status) for f, v in _report_values(report)], ())
        ]
        for variant in report.variants:
            own = _OBSERVATION_STATUS[variant.status] if variant.status else status
            values = _variant_values(variant, report)
            rows = [("variant", variant.key, f, v, own) for f, v in values]
            groups.append((rows, variant.notes))
        segments: list[str] = []
        count = 0
        for rows, notes in groups:
            segments += _obx(rows, count + 1) + _notes(notes)
            count += len(rows)
        return segments


def _obx(rows: Sequence[_Row], first: int) -> list[str]:
    """OBX segments from (level, sub-ID, model field, OBX-5 repetitions, OBX-11) rows, their
    set IDs counted from ``first``."""
    segments = []
    for number, (level, sub_id, name, values, status) in enumerate(rows, first):
        code, display, value_type = _rows()[level, name]
        fields = {1: str(number), 2: value_type, 3: _components(code, display, "LN")}
        fields |= {4: _escape(sub_id), 5: "~".join(values), 11: status}
        segments.append(_segment("OBX", fields))
    return segments


def _report_values(report: LabReport) -> Iterator[tuple[str, list[str]]]:
    """(model field, OBX-5 repetitions) of the report-level observations."""
    if report.diagnoses:
        yield "diagnoses", [_term(t) for t in report.diagnoses]
    if report.build is not None:
        yield "build", [_answer("genome-build", report.build)]
    yield "source_class", [_answer("source-class", report.source_class)]
    if report.conclusion:
        yield "conclusion", [_escape(report.conclusion)]


def _variant_values(variant: ReportedVariant, report: LabReport) -> Iterator[tuple[str, list[str]]]:
    """(model field, OBX-5 repetitions) of a variant's observations, 69548-6 first."""
    yield "assessment", [_answer("variant-value", variant.assessment)]
    if variant.consequence is not None:
        yield from _consequence_values(variant.consequence)
    named = (
        ("genomic_hgvs", variant.genomic_hgvs, "HGVS.g"),
        ("cytogenetic_location", variant.cytogenetic_location, "Chrom-Loc"),
    )
    yield from ((name, [_components(v, "", system)]) for name, v, system in named if v)
    if variant.display_name:
        yield "display_name", [_escape(variant.display_name)]
    if variant.change_type is not None:
        yield "change_type", [_term(variant.change_type)]
    if variant.variation_codes:
        yield "variation_codes", [_term(t) for t in variant.variation_codes]
    yield from _sample_values(variant)
    if variant.classification is not None:
        yield from _classification_values(variant.classification)
    call = variant.call
    if call is not None and call.structural is None and _BASES.fullmatch(call.ref + call.alt):
        yield from _call_values(call, report)


def _consequence_values(found: TranscriptConsequence) -> Iterator[tuple[str, list[str]]]:
    """Gene, transcript, c. and p.HGVS."""
    if found.hgnc_id:
        yield "consequence.gene", [_components(found.hgnc_id, found.gene_symbol or "", "HGNC")]
    elif found.gene_symbol:
        yield "consequence.gene", [_components(found.gene_symbol, "", "HGNC-Symb")]
    if found.transcript:
        system = "ensembl-T" if found.transcript.startswith("ENS") else "refSeq-T"
        yield "consequence.transcript", [_components(found.transcript, "", system)]
    if found.hgvs_c:
        yield "consequence.hgvs_c", [_components(found.hgvs_c, "", "HGVS.c")]
    if found.hgvs_p:
        yield "consequence.hgvs_p", [_components(found.hgvs_p, "", "HGVS.p")]


def _sample_values(variant: ReportedVariant) -> Iterator[tuple[str, list[str]]]:
    """Allelic state, source class, inheritance, allele frequency and read depth."""
    call = variant.call
    zygosity = variant.zygosity or (call.zygosity if call else None)
    if zygosity is not None:
        yield "zygosity", [_answer("allelic-state", zygosity)]
    if variant.source_class is not None:
        yield "source_class", [_answer("source-class", variant.source_class)]
    if variant.inheritance is not None:
        yield "inheritance", [_answer("variant-inheritance", variant.inheritance)]
    frequency = variant.allele_frequency
    if frequency is None and call is not None:
        frequency = call.allele_frequency
    if frequency is not None and math.isfinite(frequency):
        yield "allele_frequency", [_decimal(frequency)]
    depth = variant.allele_depth
    if depth is None and call is not None:
        depth = call.allele_depth
    if depth is not None:
        yield "allele_depth", [str(depth)]


def _classification_values(found: ReportedClassification) -> Iterator[tuple[str, list[str]]]:
    """The clinical significance (53037-8) and its associated phenotypes (81259-4)."""
    code = found.answer_code
    if code is None and found.tier is not None:
        tier = significance_tier(found.tier.value.replace(" ", "_"))
        code = tier[1] if tier else None
    yield "classification", [_components(code or "", found.text, "LN" if code else "")]
    if found.conditions:
        yield "classification.conditions", [_term(t) for t in found.conditions]


def _call_values(call: VariantCall, report: LabReport) -> Iterator[tuple[str, list[str]]]:
    """What the reader needs to build the call back (see "Calls" in the module docstring)."""
    yield "call.chromosome", [_answer("chromosome", call.chromosome)]
    yield "call.coordinate_system", [_answer("coordinate-system", "1-based-character")]
    yield "call.pos", [f"{call.pos}^{call.pos + len(call.ref) - 1}"]
    yield "call.ref", [call.ref]
    yield "call.alt", [call.alt]
    if report.build is not None:
        sequence = accession(report.build, call.chromosome)
        yield "call.reference_sequence", [_components(sequence, "", "refSeq-G")]


def _answer(group: str, key: str) -> str:
    """A LOINC answer of ``mappings/answer_codes.csv`` as CWE, the key as text without one."""
    found = coding(group, key)
    if found is None:
        return _components("", key)
    return _term(CodedTerm(found["system"], found["code"], found.get("display")))


def _term(term: CodedTerm) -> str:
    """A coded term as CWE (see "Values" in the module docstring)."""
    if not term.code:
        return _components("", term.display or "")
    system = by_system(term.system) if term.system else None
    name = system.v2_name if system is not None else None
    return _components(term.code, term.display or "", name or "")
