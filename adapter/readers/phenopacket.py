"""GA4GH Phenopackets v2 in: one packet (JSON) read into one :class:`~adapter.model.LabReport`.

The official ``phenopackets`` package parses the packet (its protobuf classes, filled by
protobuf's ``json_format.ParseDict`` from the decoded JSON, duplicate keys refused as
``json_format.Parse`` refuses them); this module maps what it parsed. Schema and field
meanings: https://phenopacket-schema.readthedocs.io/en/latest/

Policy decided here:

* Only schema version 2.x is read (``metaData.phenopacketSchemaVersion``, e.g. ``2.0``); a
  packet stating another version, or none, is refused. A v1 packet is refused before the
  v2 parser sees it, so the error asks for a conversion rather than naming a v1-only field.
* Report: ``report_key`` is the packet's ``id``; ``source_format`` "GA4GH Phenopacket " and
  the version; ``issued`` is ``metaData.created``; the status is final (a packet has none);
  the interpretations' ``summary`` texts, joined, are the conclusion. Biosamples,
  measurements and files are not read.
* Patient: a packet's ``subject.id`` is no hospital identifier by itself, so the caller names
  its system (``subject_system``). Only the id, ``sex`` (MALE, FEMALE, anything else unknown)
  and ``dateOfBirth`` are carried; alternate ids, ages, vital status and karyotypic sex are not.
* Diagnoses: the ``diseases`` not ``excluded`` (a ruled-out disease is not carried: the model
  has no place for it), then each interpretation's ``diagnosis.disease``, one per id, first
  label kept. ``phenotypicFeatures`` go to ``phenotypes``, or when ``excluded`` to
  ``excluded_phenotypes``. Ontology ids become codes with
  :func:`~adapter.code_systems.curie_term`; a prefix the table lacks keeps its label as text.
* Variants: each genomic interpretation with a ``variantInterpretation`` becomes one
  :class:`~adapter.model.ReportedVariant`, keyed by its variation descriptor's ``id``, else by
  its JSON path (``interpretations[0].diagnosis.genomicInterpretations[1]``); two with one key
  are an error. ``REJECTED`` ones (interpreted as unrelated to the diagnosis) and gene-level
  ones (no variant) are not converted; the report's notes count them. ``CAUSATIVE``,
  ``CONTRIBUTORY`` and ``CANDIDATE`` become a note on the variant, as does the descriptor's
  free-text ``description``.
* HGVS: expressions of syntax ``hgvs.c``, ``hgvs.p`` and ``hgvs.g``, or ``hgvs`` told apart by
  their ``c.``/``p.``/``g.`` part (the first of each kind counts; other syntaxes are not read).
  Gene (``geneContext``: an ``HGNC:`` value id is the HGNC id, another one the gene id), the c.
  and p. expressions and the transcript (the c. expression's reference sequence) make the
  consequence; the g. expression is ``genomic_hgvs``. ``label`` is the display name,
  ``structuralType`` the change type, ``xrefs`` (``ClinVar:7105``) the variation codes.
* VCF record: ``genomeAssembly`` (GRCh38/hg38, GRCh37/hg19; one per report) is the report's
  build; ``chrom`` is normalised as the VCF reader does it (:func:`~adapter.assembly.
  normalize_chromosome`), ``pos`` must lie on the chromosome, REF and ALT are bases (one ALT).
  The genotype is empty (a packet states zygosity, not GT).
* A variation descriptor with neither an HGVS expression nor a VCF record names nothing the
  adapter can state, and is an error naming it.
* Zygosity, from ``allelicState`` as a GENO id (https://github.com/monarch-initiative/GENO-ontology):
  heterozygous GENO:0000135, homozygous GENO:0000136 and hemizygous GENO:0000134 (the ids the
  schema's VariationDescriptor page and phenopacket-store use); compound heterozygous
  GENO:0000402 is heterozygous for each allele; hemizygous X-/Y-linked GENO:0000604/0000605,
  homoplasmic GENO:0000602, heteroplasmic GENO:0000603 (as the Alliance and MGI map them).
  Another id (e.g. unspecified zygosity GENO:0000137) gives none.
* Classification: ``acmgPathogenicityClassification`` gives the ACMG/AMP tier and its LOINC
  answer from ``mappings/clinical_significance.csv``, for the diagnosis' disease;
  ``NOT_PROVIDED`` gives no classification.
* Therapies: ``therapeuticActionability`` ``ACTIONABLE`` marks the variant actionable, for the
  agents of the packet's ``medicalActions`` whose ``treatment`` has a ``treatmentTarget`` with
  the same id as the variant's diagnosis disease. An action aimed at another disease, or at
  none, is not linked to the variant (the schema ties treatments to diseases, not variants).
* Inheritance: Phenopackets v2 has no field for it, and neither the schema documentation nor
  phenopacket-store (its curation tools write only the zygosity) encode de novo status, so no
  variant gets :attr:`~adapter.model.VariantInheritance.DE_NOVO`; a description saying so is
  kept as a note, never parsed.

Errors are :class:`~adapter.errors.PhenopacketError` with ``field`` the JSON path. Where
``json_format`` refuses the packet, the failing element is found by parsing one field at a
time with the same parser, and the message says what the field must be: json_format's own
message quotes the value, which may be an identifier or a birth date.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC
from itertools import chain
from typing import Any, Final

import phenopackets as pp
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor

from ..assembly import chromosome_length, normalize_chromosome, parse_build
from ..code_systems import curie_term
from ..errors import GenomeBuildError, PhenopacketError
from ..model import (
    CodedTerm,
    GenomeBuild,
    LabReport,
    PatientRef,
    ReportedClassification,
    ReportedVariant,
    Sex,
    TranscriptConsequence,
    VariantCall,
    Zygosity,
)
from .annotations import significance_tier

__all__ = ["read_phenopacket"]

_VERSION: Final = "metaData.phenopacketSchemaVersion"
_V2: Final = re.compile(r"2(?:\.\d+){0,2}")
_SEX: Final = {pp.MALE: Sex.MALE, pp.FEMALE: Sex.FEMALE}
_ZYGOSITY: Final = {
    "GENO:0000135": Zygosity.HETEROZYGOUS,
    "GENO:0000402": Zygosity.HETEROZYGOUS,
    "GENO:0000136": Zygosity.HOMOZYGOUS,
    "GENO:0000134": Zygosity.HEMIZYGOUS,
    "GENO:0000604": Zygosity.HEMIZYGOUS,
    "GENO:0000605": Zygosity.HEMIZYGOUS,
    "GENO:0000602": Zygosity.HOMOPLASMIC,
    "GENO:0000603": Zygosity.HETEROPLASMIC,
}
#: what each interpretation status means, in the schema's words (GenomicInterpretation page)
_STATUS_MEANINGS: Final = {
    pp.GenomicInterpretation.CAUSATIVE: "interpreted to be causative of the diagnosis",
    pp.GenomicInterpretation.CONTRIBUTORY: "interpreted to be related to the diagnosis",
    pp.GenomicInterpretation.CANDIDATE: "interpreted to possibly be related to the diagnosis",
}
_HGVS_SYNTAXES: Final = {"hgvs.c": "c", "hgvs.p": "p", "hgvs.g": "g"}
_HGVS_PART: Final = re.compile(r"(?:^|:)([cgp])\.")
_ALLELE: Final = re.compile(r"[ACGTN]+")
_NO_FILTER: Final = frozenset({"", ".", "PASS"})
_FIELD_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_TIMESTAMP: Final = "must be an RFC 3339 time in UTC, e.g. 2024-05-11T07:14:28Z"
_WHOLE_NUMBER: Final = "must be a whole number in range (a JSON number or a string of digits)"
#: what a scalar field must hold, by its protobuf C++ type
_SCALARS: Final = {
    FieldDescriptor.CPPTYPE_INT32: _WHOLE_NUMBER,
    FieldDescriptor.CPPTYPE_INT64: _WHOLE_NUMBER,
    FieldDescriptor.CPPTYPE_UINT32: _WHOLE_NUMBER,
    FieldDescriptor.CPPTYPE_UINT64: _WHOLE_NUMBER,
    FieldDescriptor.CPPTYPE_DOUBLE: "must be a number",
    FieldDescriptor.CPPTYPE_FLOAT: "must be a number",
    FieldDescriptor.CPPTYPE_BOOL: "must be true or false",
    FieldDescriptor.CPPTYPE_STRING: "must be a JSON string",
}


def read_phenopacket(
    data: bytes | str, *, source: str = "phenopacket", subject_system: str
) -> LabReport:
    """The lab report a Phenopacket v2 (JSON text) states; ``subject_system`` is the identifier
    system its ``subject.id`` belongs to. Raises :class:`PhenopacketError` naming the JSON path."""
    return _Reader(_parse(data, source), source).report(subject_system)


# ---- parsing ---------------------------------------------------------------------------


class _DuplicateKey(ValueError):
    """A JSON object names one key twice (json_format.Parse refuses that too)."""


def _parse(data: bytes | str, source: str) -> Any:
    """The packet as the official package's Phenopacket message."""
    document = _document(data, source)
    stated = _stated_version(document)
    if stated is not None:
        _check_version(stated, source)
    packet = pp.Phenopacket()
    try:
        json_format.ParseDict(document, packet)
    except json_format.ParseError:
        where, problem = _locate(pp.Phenopacket, document, "")
        raise PhenopacketError(problem, source=source, field=where or None) from None
    _check_version(packet.meta_data.phenopacket_schema_version, source)
    return packet


def _document(data: bytes | str, source: str) -> dict[str, Any]:
    """The decoded JSON object; the decoder's messages name positions, never content."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except UnicodeDecodeError:
        message = "not UTF-8 text: a Phenopacket is JSON in UTF-8"
        raise PhenopacketError(message, source=source) from None
    except _DuplicateKey:
        message = "a JSON object names one key twice: keep one"
        raise PhenopacketError(message, source=source) from None
    except json.JSONDecodeError as e:
        message = f"not valid JSON ({e.msg} at column {e.colno}): is the packet complete?"
        raise PhenopacketError(message, source=source, line=e.lineno) from None
    except RecursionError:
        message = "JSON nested too deeply to be a Phenopacket"
        raise PhenopacketError(message, source=source) from None
    if not isinstance(document, dict):
        message = f"a JSON {type(document).__name__}, not an object: a Phenopacket is one object"
        raise PhenopacketError(message, source=source)
    return document


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) < len(pairs):
        raise _DuplicateKey
    return document


def _stated_version(document: Mapping[str, Any]) -> str | None:
    """The schema version as written, looked at before parsing: a v1 packet fails the v2
    parser on some v1-only field, which would hide what is really wrong."""
    meta = document.get("metaData", document.get("meta_data"))
    if not isinstance(meta, dict):
        return None
    version = meta.get("phenopacketSchemaVersion", meta.get("phenopacket_schema_version"))
    return version if isinstance(version, str) else None


def _check_version(version: str, source: str) -> None:
    if _V2.fullmatch(version.strip()):
        return
    message = (
        "a schema version other than 2.x: only Phenopackets v2 are read; convert the packet "
        "to v2 first (phenopacket-tools converts v1 packets)"
        if version
        else "missing: a Phenopacket v2 states its schema version (e.g. 2.0)"
    )
    raise PhenopacketError(message, source=source, field=_VERSION)


def _locate(message: Any, value: Mapping[str, Any], path: str) -> tuple[str, str]:
    """The JSON path of the first element ``json_format`` refuses in ``value`` (an object for
    ``message``), and what it must be; found by parsing one field at a time."""
    descriptor = message.DESCRIPTOR
    fields = {f.json_name: f for f in descriptor.fields} | {f.name: f for f in descriptor.fields}
    for key, item in value.items():
        field = fields.get(key)
        where = _join(path, key)
        if field is None:
            problem = (
                f"no such field in a Phenopacket v2 {descriptor.name}: check the spelling, and "
                "that the document is a Phenopacket v2"
            )
            return where, problem
        if not _parses(message, {key: item}):
            return _locate_field(message, field, key, item, where)
    return path, "sets one field twice (by two names), or two of a oneof: keep one"


def _locate_field(message: Any, field: Any, key: str, item: Any, where: str) -> tuple[str, str]:
    nested = _nested(field)
    if field.is_repeated and not _is_map(field) and isinstance(item, list):
        for index, element in enumerate(item):
            if not _parses(message, {key: [element]}):
                at = f"{where}[{index}]"
                if nested is not None and isinstance(element, dict):
                    return _locate(nested, element, at)
                return at, _expectation(field, element, element=True)
    if nested is not None and not field.is_repeated and isinstance(item, dict):
        return _locate(nested, item, where)
    return where, _expectation(field, item, element=False)


def _parses(message: Any, fragment: Mapping[str, Any]) -> bool:
    try:
        json_format.ParseDict(fragment, message())
    except json_format.ParseError:
        return False
    return True


def _nested(field: Any) -> Any:
    """The message class of a field the locator descends into; None for scalars, maps and
    well-known types (a Timestamp is one string in JSON)."""
    kind = field.message_type
    if kind is None or _is_map(field) or kind.full_name.startswith("google.protobuf."):
        return None
    return message_factory.GetMessageClass(kind)


def _is_map(field: Any) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _expectation(field: Any, item: Any, *, element: bool) -> str:
    """What the field must hold, without quoting what it holds."""
    if _is_map(field):
        return "must be a JSON object of strings"
    if field.is_repeated and not element and not isinstance(item, list):
        return "must be a JSON list"
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        return f"must be one of {', '.join(v.name for v in field.enum_type.values)}"
    if field.message_type is not None:
        timestamp = field.message_type.full_name == "google.protobuf.Timestamp"
        return _TIMESTAMP if timestamp else "must be a JSON object"
    return _SCALARS[field.cpp_type]


def _join(path: str, key: str) -> str:
    """``path.key``; a key that is no plausible field name is not repeated (it may be data)."""
    name = key if _FIELD_NAME.fullmatch(key) else "<key>"
    return f"{path}.{name}" if path else name


# ---- mapping ---------------------------------------------------------------------------


class _Reader:
    """One parsed packet, mapped; remembers the build its first VCF record states."""

    def __init__(self, packet: Any, source: str) -> None:
        self.packet = packet
        self.source = source
        self.build: GenomeBuild | None = None
        self.build_where = ""

    def report(self, subject_system: str) -> LabReport:
        packet = self.packet
        if not packet.id:
            raise self.error("missing: the packet's id is the report's key", "id")
        patient = self.patient(subject_system)
        variants, notes = self.variants()
        subject = packet.subject
        meta = packet.meta_data
        return LabReport(
            source_format=f"GA4GH Phenopacket {meta.phenopacket_schema_version.strip()}",
            report_key=packet.id,
            patient=patient,
            build=self.build,
            sex=_SEX.get(subject.sex, Sex.UNKNOWN),
            birth_date=(
                subject.date_of_birth.ToDatetime(tzinfo=UTC).date()
                if subject.HasField("date_of_birth")
                else None
            ),
            issued=meta.created.ToDatetime(tzinfo=UTC) if meta.HasField("created") else None,
            conclusion=_conclusion(packet.interpretations),
            notes=notes,
            diagnoses=self.diagnoses(),
            phenotypes=self.phenotypes(excluded=False),
            excluded_phenotypes=self.phenotypes(excluded=True),
            variants=variants,
        )

    def error(self, message: str, field: str) -> PhenopacketError:
        return PhenopacketError(message, source=self.source, field=field)

    def patient(self, subject_system: str) -> PatientRef:
        if not self.packet.subject.id:
            message = "missing: the subject's id is the patient's identifier in the report"
            raise self.error(message, "subject.id")
        return PatientRef(identifier_system=subject_system, identifier_value=self.packet.subject.id)

    def term(self, ontology_class: Any, where: str) -> CodedTerm:
        if not ontology_class.id:
            raise self.error("missing: name the term by its CURIE, e.g. HP:0001250", f"{where}.id")
        return curie_term(ontology_class.id, ontology_class.label or None)

    def diagnoses(self) -> tuple[CodedTerm, ...]:
        """The diseases stated (not excluded), then those the interpretations diagnose."""
        stated = (
            (d.term.id, self.term(d.term, f"diseases[{i}].term"))
            for i, d in enumerate(self.packet.diseases)
            if not d.excluded
        )
        diagnosed = (
            (d.disease.id, self.term(d.disease, f"interpretations[{i}].diagnosis.disease"))
            for i, d in enumerate(
                interpretation.diagnosis for interpretation in self.packet.interpretations
            )
            if d.HasField("disease")
        )
        return _unique(chain(stated, diagnosed))

    def phenotypes(self, *, excluded: bool) -> tuple[CodedTerm, ...]:
        return _unique(
            (f.type.id, self.term(f.type, f"phenotypicFeatures[{i}].type"))
            for i, f in enumerate(self.packet.phenotypic_features)
            if f.excluded == excluded
        )

    # ---- variants ------------------------------------------------------------------------

    def variants(self) -> tuple[tuple[ReportedVariant, ...], tuple[str, ...]]:
        """The converted variants, and notes counting the genomic interpretations that are not."""
        variants: dict[str, ReportedVariant] = {}
        rejected = gene_level = 0
        for i, interpretation in enumerate(self.packet.interpretations):
            diagnosis = interpretation.diagnosis
            for j, genomic in enumerate(diagnosis.genomic_interpretations):
                where = f"interpretations[{i}].diagnosis.genomicInterpretations[{j}]"
                if genomic.interpretation_status == pp.GenomicInterpretation.REJECTED:
                    rejected += 1
                elif not genomic.HasField("variant_interpretation"):
                    gene_level += 1
                else:
                    variant = self.variant(genomic, diagnosis, where)
                    if variant.key in variants:
                        message = (
                            f"the same variation descriptor id as {variants[variant.key].where}"
                        )
                        raise self.error(
                            message, f"{where}.variantInterpretation.variationDescriptor.id"
                        )
                    variants[variant.key] = variant
        return tuple(variants.values()), _skip_notes(rejected, gene_level)

    def variant(self, genomic: Any, diagnosis: Any, where: str) -> ReportedVariant:
        interpretation = genomic.variant_interpretation
        at = f"{where}.variantInterpretation.variationDescriptor"
        if not interpretation.HasField("variation_descriptor"):
            raise self.error("missing: a variant interpretation describes its variant", at)
        descriptor = interpretation.variation_descriptor
        zygosity = _ZYGOSITY.get(descriptor.allelic_state.id)
        expressions = _hgvs_expressions(descriptor.expressions)
        call = self.call(descriptor.vcf_record, zygosity, f"{at}.vcfRecord")
        if not expressions and call is None:
            message = (
                "names its variant by neither an HGVS expression (hgvs.c, hgvs.p, hgvs.g) nor "
                "a VCF record: give one"
            )
            raise self.error(message, at)
        disease = diagnosis.disease if diagnosis.HasField("disease") else None
        diagnosed = f"{where.rpartition('.')[0]}.disease"
        conditions = () if disease is None else (self.term(disease, diagnosed),)
        actionable = interpretation.therapeutic_actionability == pp.ACTIONABLE
        return ReportedVariant(
            key=descriptor.id or where,
            consequence=_consequence(descriptor.gene_context, expressions),
            genomic_hgvs=expressions.get("g"),
            display_name=descriptor.label or None,
            change_type=(
                self.term(descriptor.structural_type, f"{at}.structuralType")
                if descriptor.HasField("structural_type")
                else None
            ),
            call=call,
            zygosity=zygosity,
            variation_codes=tuple(curie_term(x) for x in descriptor.xrefs),
            classification=_classification(interpretation, conditions),
            actionable=actionable,
            therapies=self.therapies(disease.id if disease else "") if actionable else (),
            notes=_variant_notes(genomic, descriptor),
            where=where,
        )

    def call(self, record: Any, zygosity: Zygosity | None, at: str) -> VariantCall | None:
        """The VCF record as a call; None when the descriptor has none."""
        if not record.ListFields():
            return None
        build = self.genome_build(record.genome_assembly, f"{at}.genomeAssembly")
        chromosome = normalize_chromosome(record.chrom)
        if chromosome is None:
            raise self.error(
                "must be a chromosome 1-22, X, Y or M (chr prefix optional)", f"{at}.chrom"
            )
        if not 0 < record.pos <= chromosome_length(build, chromosome):
            message = f"not on chromosome {chromosome} of {build}: give the 1-based VCF POS"
            raise self.error(message, f"{at}.pos")
        return VariantCall(
            chrom=record.chrom,
            chromosome=chromosome,
            pos=record.pos,
            ref=self.allele(record.ref, f"{at}.ref"),
            alt=self.allele(record.alt, f"{at}.alt"),
            alt_index=1,
            genotype="",
            zygosity=zygosity,
            filters=() if record.filter in _NO_FILTER else tuple(record.filter.split(";")),
            record_id=record.id or None,
            quality=self.quality(record.qual, f"{at}.qual"),
        )

    def genome_build(self, name: str, where: str) -> GenomeBuild:
        """The build a record names; every record of the packet must name the same one."""
        try:
            build = parse_build(name)
        except GenomeBuildError:
            message = "must name the assembly the position is on: GRCh38 (hg38) or GRCh37 (hg19)"
            raise self.error(message, where) from None
        if self.build is None:
            self.build, self.build_where = build, where
        elif build != self.build:
            message = f"{build}, but {self.build_where} is {self.build}: one build per report"
            raise self.error(message, where)
        return build

    def allele(self, allele: str, where: str) -> str:
        bases = allele.upper()
        if _ALLELE.fullmatch(bases) is None:
            message = "must be bases (A, C, G, T, N) as a VCF writes them, one ALT per variant"
            raise self.error(message, where)
        return bases

    def quality(self, qual: str, where: str) -> float | None:
        if qual in ("", "."):
            return None
        try:
            quality = float(qual)
        except ValueError:
            quality = math.nan
        if not math.isfinite(quality):
            raise self.error("must be a number, or '.', as VCF's QUAL", where)
        return quality

    def therapies(self, disease_id: str) -> tuple[CodedTerm, ...]:
        """The agents of the packet's treatments aimed at the disease (same id as target)."""
        return _unique(
            (
                a.treatment.agent.id,
                self.term(a.treatment.agent, f"medicalActions[{i}].treatment.agent"),
            )
            for i, a in enumerate(self.packet.medical_actions)
            if disease_id and a.HasField("treatment") and a.treatment_target.id == disease_id
        )


def _unique(terms: Iterable[tuple[str, CodedTerm]]) -> tuple[CodedTerm, ...]:
    """One term per ontology id, the first as written."""
    found: dict[str, CodedTerm] = {}
    for curie, term in terms:
        found.setdefault(curie, term)
    return tuple(found.values())


def _conclusion(interpretations: Iterable[Any]) -> str | None:
    """The interpretations' summaries, one paragraph each."""
    return "\n\n".join(s for i in interpretations if (s := i.summary.strip())) or None


def _hgvs_expressions(expressions: Iterable[Any]) -> dict[str, str]:
    """The first c., p. and g. HGVS expression, by kind ("c", "p", "g")."""
    found: dict[str, str] = {}
    for expression in expressions:
        value = expression.value.strip()
        syntax = expression.syntax.strip().casefold()
        part = _HGVS_PART.search(value) if syntax == "hgvs" else None
        kind = part.group(1) if part else _HGVS_SYNTAXES.get(syntax)
        if value and kind:
            found.setdefault(kind, value)
    return found


def _consequence(gene: Any, expressions: Mapping[str, str]) -> TranscriptConsequence | None:
    hgvs_c = expressions.get("c")
    if not (gene.symbol or gene.value_id or hgvs_c or "p" in expressions):
        return None
    reference, colon, _ = (hgvs_c or "").partition(":")
    transcript = reference.partition("(")[0].strip() if colon else ""
    is_hgnc = gene.value_id.startswith("HGNC:")
    return TranscriptConsequence(
        consequences=(),
        gene_symbol=gene.symbol or None,
        gene_id=None if is_hgnc else gene.value_id or None,
        hgnc_id=gene.value_id if is_hgnc else None,
        transcript=transcript or None,
        hgvs_c=hgvs_c,
        hgvs_p=expressions.get("p"),
    )


def _classification(
    interpretation: Any, conditions: tuple[CodedTerm, ...]
) -> ReportedClassification | None:
    """The ACMG/AMP tier; None for NOT_PROVIDED, which is no tier."""
    name = pp.AcmgPathogenicityClassification.Name(interpretation.acmg_pathogenicity_classification)
    found = significance_tier(name)
    if found is None:
        return None
    tier, answer_code = found
    return ReportedClassification(name, tier, answer_code, conditions)


def _variant_notes(genomic: Any, descriptor: Any) -> tuple[str, ...]:
    notes = []
    meaning = _STATUS_MEANINGS.get(genomic.interpretation_status)
    if meaning is not None:
        status = pp.GenomicInterpretation.InterpretationStatus.Name(genomic.interpretation_status)
        notes.append(f"Interpretation status {status}: {meaning}.")
    if descriptor.description.strip():
        notes.append(descriptor.description.strip())
    return tuple(notes)


def _skip_notes(rejected: int, gene_level: int) -> tuple[str, ...]:
    notes = []
    if rejected:
        notes.append(f"Variants the lab rejected as unrelated to the diagnosis: {rejected}.")
    if gene_level:
        notes.append(f"Gene-level interpretations without a variant: {gene_level}.")
    return tuple(notes)
