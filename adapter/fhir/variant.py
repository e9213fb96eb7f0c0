"""Variant Observations (Genomics Reporting IG STU3 profile ``variant``), as dicts or as JSON.

This is the hot path: one call per variant, up to millions per conversion. Everything that
does not depend on the call (meta, categories, codes, subject, per-chromosome components) is
made once and shared between Observations; shared parts are never mutated.

One description of the Observation (:meth:`VariantBuilder._components` and
:func:`_observation`) is made either into the plain dicts that validators read
(:meth:`VariantBuilder.build`) or straight into JSON (:meth:`VariantBuilder.encoding`, see
:mod:`.templates`), so that a conversion without validation need not build and then
serialise some 200 objects per variant. See :mod:`adapter.notation` for the coordinate
conventions.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

import orjson

from .._native import Consequences, Lane
from ..model import (
    AnalysisContext,
    CodedTerm,
    Finding,
    GenomeBuild,
    LabClassification,
    ReportedVariant,
    ReportStatus,
    Sex,
    StructuralVariant,
    SvType,
    TranscriptConsequence,
    VariantCall,
    Zygosity,
)
from ..notation import ChangeType, Notation, describe, describe_structural, ploidy
from ..phasing import PhasedAllele, phased_allele
from ..readers.classifications import ClassificationTable
from ..readers.knowledge import KnowledgeBase
from .codes import (
    DBSNP,
    ENSEMBL,
    HGNC,
    HGVS,
    REFSEQ,
    SPDI,
    UCUM,
    coding,
    concept,
    profile,
    slices,
)
from .identifiers import (
    IdFactory,
    identifier,
    observed,
    specimen_reference,
)
from .implication import (
    CLINVAR,
    ConsequenceShape,
    Implications,
    diagnostic_finding,
    term_concept,
    therapeutic_finding,
)
from .templates import ID_MARK, Kind, ResourceTemplate, dicts, marks

__all__ = [
    "BARE_PROTEIN_HGVS",
    "AccessionLookup",
    "Encoding",
    "Inspect",
    "Shape",
    "VariantBuilder",
]

#: (genome build, normalised chromosome) → RefSeq accession, e.g. adapter.assembly.accession
AccessionLookup = Callable[[GenomeBuild, str], str]
Component = dict[str, Any]
#: an Observation as a writer encodes it, and its id as 16 bytes
Encoded = tuple[bytes, bytes]
Encoding = Callable[..., Encoded]
#: the component kinds of an Observation, in order
Shape = tuple[Kind, ...]
#: shown each Observation as (id, shape, component values, notes) before it is encoded
Note = dict[str, str]
Inspect = Callable[[str, Shape, list[Any], list[Note]], None]

_RSID = re.compile(r"rs[1-9]\d*").fullmatch
#: how a Variant notes a p.HGVS a report gives without its reference sequence: the IG binds
#: the protein HGVS component to whole expressions (required), so it cannot be that component
BARE_PROTEIN_HGVS: Final = "Amino acid change as reported, without its reference sequence: "
_MALE = {Sex.MALE: True, Sex.FEMALE: False, Sex.UNKNOWN: None}


def _range_of(name: str) -> Kind:
    """A component of slice ``name`` whose value is a Range of 1-based positions."""
    code, key = _slice(name)
    return Kind(
        lambda low, high: {"code": code, key: {"low": {"value": low}, "high": {"value": high}}},
        2,
    )


def _text_of(name: str) -> Kind:
    """A component of slice ``name`` whose value is a string."""
    code, key = _slice(name)
    return Kind(lambda text: {"code": code, key: text}, 1)


def _coded_of(name: str, system: str) -> Kind:
    """A component whose value is a CodeableConcept of one coding in ``system``."""
    code, key = _slice(name)
    return Kind(
        lambda value: {"code": code, key: {"coding": [{"system": system, "code": value}]}}, 1
    )


def _named_of(name: str) -> Kind:
    """A component whose value is a CodeableConcept of text alone (a name with no code)."""
    code, key = _slice(name)
    return Kind(lambda text: {"code": code, key: {"text": text}}, 1)


def _gene_of(name: str, system: str) -> Kind:
    """A component whose value is a coding with a display: an HGNC id and gene symbol."""
    code, key = _slice(name)
    return Kind(
        lambda value, display: {
            "code": code,
            key: {"coding": [{"system": system, "code": value, "display": display}]},
        },
        2,
    )


def _count_of(name: str) -> Kind:
    """A component whose value is a unit-less UCUM Quantity."""
    code, key = _slice(name)
    return Kind(lambda value: {"code": code, key: {"value": value, "system": UCUM, "code": "1"}}, 1)


def _slice(name: str) -> tuple[dict[str, Any], str]:
    """The fixed code of component slice ``name`` and the key of its value."""
    found = slices()[name]
    return found.concept(), found.value_key


class _Kinds:
    """The kinds of component whose values each variant supplies."""

    __slots__ = (
        "alt",
        "coding_hgvs",
        "copies",
        "dbsnp",
        "depth",
        "ensembl_transcript",
        "exact",
        "frequency",
        "gene",
        "gene_named",
        "hgvs",
        "inner",
        "location",
        "outer",
        "population",
        "protein_hgvs",
        "ref",
        "refseq_transcript",
        "spdi",
    )

    def __init__(self) -> None:
        self.gene = _gene_of("gene-studied", HGNC)
        self.exact = _range_of("exact-start-end")
        self.inner = _range_of("inner-start-end")
        self.outer = _range_of("outer-start-end")
        self.ref = _text_of("ref-allele")
        self.alt = _text_of("alt-allele")
        self.hgvs = _coded_of("genomic-hgvs", HGVS)
        self.spdi = _coded_of("variation-code", SPDI)
        self.dbsnp = _coded_of("variation-code", DBSNP)
        self.frequency = _count_of("sample-allelic-frequency")
        self.depth = _count_of("allelic-read-depth")
        self.population = _count_of("population-allele-frequency")
        self.copies = _count_of("copy-number")
        self.gene_named = _named_of("gene-studied")
        self.location = _named_of("cytogenetic-location")
        self.coding_hgvs = _coded_of("representative-coding-hgvs", HGVS)
        self.protein_hgvs = _coded_of("representative-protein-hgvs", HGVS)
        self.refseq_transcript = _coded_of("representative-transcript-ref-seq", REFSEQ)
        self.ensembl_transcript = _coded_of("representative-transcript-ref-seq", ENSEMBL)


class _Shared(NamedTuple):
    """An Observation's top-level elements in order, with or without a note, the shared ones
    filled in."""

    noted: dict[str, Any]
    plain: dict[str, Any]


def _shared(meta: Any, head: dict[str, Any], tail: dict[str, Any]) -> _Shared:
    """The top levels to copy per Observation; None marks what each one fills in."""
    own = {"resourceType": "Observation", "id": None, "meta": meta, "identifier": None, **head}
    return _Shared(
        {**own, "note": None, **tail, "component": None}, {**own, **tail, "component": None}
    )


class _Locus(NamedTuple):
    """What every variant on one chromosome shares: accession and leading components."""

    accession: str
    kinds: tuple[Kind, ...]


class VariantBuilder:
    """Builds one Variant Observation per :class:`VariantCall` of one conversion."""

    def __init__(
        self,
        ctx: AnalysisContext,
        accession: AccessionLookup,
        *,
        share: Callable[[Any], Any] = lambda value: value,
        knowledge: KnowledgeBase | None = None,
        classifications: ClassificationTable | None = None,
    ) -> None:
        """``share`` is told of every part that Observations share (they never change), e.g.
        :meth:`adapter.validation.Validator.sharing`'s, to check each of them once;
        ``knowledge`` gives annotated variants their therapeutic implications;
        ``classifications``, the lab's, decide the diagnostic implications of the variants
        they hold, in place of ClinVar's."""
        self._ctx = ctx
        self._knowledge = knowledge
        self._classifications = classifications
        #: what the encoding's calls bring beside their bytes, for the parent process to
        #: gather (drained by adapter.parallel.make_variants with each chunk): the phased
        #: alleles phasing can relate, the conclusion's findings, and how many diagnostic
        #: implications each source decided
        self.phased: list[PhasedAllele] = []
        self.findings: list[Finding] = []
        self.decided: Counter[str] = Counter()
        self._share = share
        self._accession = accession
        self._ids = IdFactory(ctx)
        self._code = {name: s.concept() for name, s in slices().items()}
        self._kinds = _Kinds()
        meta = {"profile": [profile("variant")]}
        head, tail = share(_head(ctx)), share(_tail(ctx))
        self._shared = _shared(share(meta), head, tail)
        self._assembly = self._coded("reference-sequence-assembly", "genome-build", ctx.build)
        self._coordinates = self._coded(
            "coordinate-system", "coordinate-system", "1-based-character"
        )
        self._source = self._source_class(ctx)
        self._states = {z: self._coded(*_ALLELIC_STATE, z) for z in Zygosity}
        self._changes = {c: self._coded(*_CHANGE_TYPE, c) for c in ChangeType}
        self._low_confidence = self._coded("variant-confidence-status", "variant-confidence", "low")
        self._loci: dict[str, _Locus] = {}
        self._male = _MALE[ctx.sex]

    def _coded(self, name: str, group: str, key: str) -> Kind:
        """A shared CodeableConcept component of slice ``name``, answered from ``group``."""
        part = {"code": self._code[name], "valueCodeableConcept": concept(group, key)}
        return Kind.shared(self._share(part))

    def _source_class(self, ctx: AnalysisContext) -> Kind | None:
        """The genomic source class, when LOINC has an answer for it (not for "mixed")."""
        if coding("source-class", ctx.source_class) is None:
            return None
        return self._coded("genomic-source-class", "source-class", ctx.source_class)

    def _locus(self, chromosome: str) -> _Locus:
        """Accession and the components shared by all variants on a chromosome, made once."""
        acc = self._accession(self._ctx.build, chromosome)
        kinds = [self._assembly]
        if coding("chromosome", chromosome) is not None:
            kinds.append(self._coded("chromosome-identifier", "chromosome", chromosome))
        refseq = {"coding": [{"system": REFSEQ, "code": acc}]}
        part = {"code": self._code["genomic-ref-seq"], "valueCodeableConcept": refseq}
        kinds.append(Kind.shared(self._share(part)))
        kinds.append(self._coordinates)
        found = self._loci[chromosome] = _Locus(acc, tuple(kinds))
        return found

    def build(self, call: VariantCall, genes: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        """The Observation for ``call``; ``genes`` are (HGNC id, symbol) pairs when known."""
        rid, _ = self._ids.variant(call)
        kinds: list[Kind] = []
        values: list[Any] = []
        notes = self._components(call, genes, kinds, values)
        return self.observation(rid, tuple(kinds), values, notes)

    def encoding(
        self,
        encode: Callable[[dict[str, Any]], bytes],
        inspect: Inspect | None = None,
        check: Callable[[dict[str, Any]], None] | None = None,
        *,
        references: str = "urn:uuid:",
    ) -> Encoding:
        """What :meth:`build` makes, as ``encode`` (a writer's) writes it, for when nothing
        reads the Observation: (the encoded Observation, its 16-byte id) per call.

        Observations of one shape (the same sequence of component kinds, no notes) differ
        only in their id and their components' values, so each shape is encoded once, from
        a probe, as a :class:`ResourceTemplate` that each call fills in. ``inspect`` is
        shown each Observation's description first (a checker: see adapter.conformance), and
        ``check`` each other resource a call brings (its ClinVar diagnostic-implication,
        encoded after the Variant, its id after the Variant's). ``references``: what the
        writer puts before an Observation's id in a reference to it
        (``ResourceWriter.reference_prefix``).
        The function is the C lane (:class:`adapter._native.Lane`), with the Python
        :class:`_Encoder` behind it for what the lane has not been taught.
        """
        encoder = _Encoder(self, encode, inspect, check, references)
        changes = {c.value: c for c in ChangeType}
        # annotated calls bring only their consequences, unless checked or matched to rules
        plain = check is None and self._knowledge is None
        made = encoder.consequences if plain else None
        lane = Lane(self._ids.variants, changes, orjson.dumps, encoder, inspect, made)
        encoder.native = lane
        if self._classifications is None:
            return lane
        find = self._classifications.find

        def classified(call: VariantCall, genes: Sequence[tuple[str, str]] = ()) -> Encoded:
            """The lane's function, but calls the lab classified go to the encoder."""
            if find(call.chrom, call.pos, call.ref, call.alt) is not None:
                return encoder(call, genes)
            return lane(call, genes)

        return classified

    def observation(
        self, rid: str, shape: Shape, values: Sequence[Any], notes: list[Note]
    ) -> dict[str, Any]:
        """The Observation a description (as :data:`Inspect` is shown it) stands for."""
        return _observation(self._shared, rid, notes, dicts(shape, values))

    def _components(
        self,
        call: VariantCall,
        genes: Sequence[tuple[str, str]],
        kinds: list[Kind],
        values: list[Any],
    ) -> list[Note]:
        """The kinds and values of ``call``'s components, in order; the Observation's notes."""
        primary = call.annotation.primary if call.annotation is not None else None
        for gene in genes:
            kinds.append(self._kinds.gene)
            values += gene
        if not genes and primary is not None and primary.gene_symbol:
            self._gene(primary, kinds, values)
        elif not genes and (named := _clinvar_genes(call)):
            kinds += [self._kinds.gene_named] * len(named)
            values += named
        locus = self._loci.get(call.chromosome) or self._locus(call.chromosome)
        kinds += locus.kinds
        sv = call.structural
        if sv is None:
            notes = self._sequence(call, locus.accession, kinds, values)
        else:
            notes = self._structural(call, sv, locus.accession, kinds, values)
        if primary is not None:
            self._representative(primary, kinds, values)
        self._sample(call, kinds, values)
        if call.filters and call.filters != ("PASS",):
            kinds.append(self._low_confidence)
            notes.append({"text": "VCF FILTER: " + ";".join(call.filters)})
        return notes

    def _sequence(
        self,
        call: VariantCall,
        acc: str,
        kinds: list[Kind],
        values: list[Any],
        hgvs: str | None = None,
    ) -> list[Note]:
        """Range, alleles as written, names and change type of a sequence allele; no notes.
        ``hgvs``: the g.HGVS a report states, kept as written in place of the derived one."""
        k = self._kinds
        n = describe(acc, call.pos, call.ref, call.alt)
        if n is None:  # not a nucleotide sequence (e.g. "*"): only what the REF states
            kinds += k.exact, k.ref
            values += call.pos, call.pos + len(call.ref) - 1, call.ref
            return []
        if hgvs:
            n = n._replace(hgvs=hgvs)
        kinds += k.exact, k.ref, k.alt
        values += n.start, n.end, call.ref, call.alt
        self._names(call, n, kinds, values)
        kinds.append(self._changes[n.change])
        return []

    def _structural(
        self,
        call: VariantCall,
        sv: StructuralVariant,
        acc: str,
        kinds: list[Kind],
        values: list[Any],
    ) -> list[Note]:
        """Ranges, names, change type and copy number of an SV; a breakend's ALT as a note."""
        copies = ploidy(call.chromosome, self._male)
        n = describe_structural(acc, call.chromosome, call.pos, sv, copies)
        k = self._kinds
        if n.outer is None:  # precise: no confidence intervals
            kinds.append(k.exact)
            values += n.start, n.end
        else:
            if n.inner is not None:
                kinds.append(k.inner)
                values += n.inner
            kinds.append(k.outer)
            values += n.outer
        self._names(call, n, kinds, values)
        kinds.append(self._changes[n.change])
        if sv.copy_number is not None and math.isfinite(sv.copy_number):
            kinds.append(k.copies)
            values.append(sv.copy_number)
        if sv.sv_type is SvType.BND:
            return [{"text": f"VCF breakend ALT: {sv.mate or call.alt}"}]
        return []

    def _names(self, call: VariantCall, n: Notation, kinds: list[Kind], values: list[Any]) -> None:
        """g.HGVS, SPDI and dbSNP ids as they exist for this allele."""
        k = self._kinds
        if n.hgvs is not None:
            kinds.append(k.hgvs)
            values.append(n.hgvs)
        if n.spdi is not None:
            kinds.append(k.spdi)
            values.append(n.spdi)
        if call.record_id:
            for rsid in call.record_id.split(";"):
                if _RSID(rsid):
                    kinds.append(k.dbsnp)
                    values.append(rsid)

    def _gene(self, primary: TranscriptConsequence, kinds: list[Kind], values: list[Any]) -> None:
        """The gene of the primary transcript: HGNC-coded when its id is known, else named."""
        if primary.hgnc_id and primary.gene_symbol:
            kinds.append(self._kinds.gene)
            values += primary.hgnc_id, primary.gene_symbol
        elif primary.gene_symbol:
            kinds.append(self._kinds.gene_named)
            values.append(primary.gene_symbol)

    def _representative(
        self, primary: TranscriptConsequence, kinds: list[Kind], values: list[Any]
    ) -> None:
        """The primary transcript and its c. and p. HGVS, as the representative ones.

        The IG binds both HGVS components to whole expressions (reference sequence, colon,
        change): a c. without one is given the transcript's, a p. without one is left out.
        """
        k = self._kinds
        transcript = primary.transcript
        if transcript:
            kinds.append(
                k.ensembl_transcript if transcript.startswith("ENS") else k.refseq_transcript
            )
            values.append(transcript)
        if primary.hgvs_c:
            kinds.append(k.coding_hgvs)
            values.append(_qualified(primary.hgvs_c, transcript))
        if primary.hgvs_p and ":" in primary.hgvs_p:  # SnpEff's bare p. names no sequence
            kinds.append(k.protein_hgvs)
            values.append(primary.hgvs_p)

    def reported(self, variant: ReportedVariant, rid: str, status: ReportStatus) -> dict[str, Any]:
        """The Variant a lab report states (HL7 v2, Phenopacket): its coordinates' components
        when it gives them, else its g.HGVS as written; its gene, transcript and HGVS names,
        the codes it is known by, and its sample facts; ``status`` the report's, unless the
        variant has its own; its assessment (present, absent...) as the value."""
        kinds: list[Kind] = []
        values: list[Any] = []
        primary, call = variant.consequence, variant.call
        if primary is not None:
            self._gene(primary, kinds, values)
        if call is not None:
            locus = self._loci.get(call.chromosome) or self._locus(call.chromosome)
            kinds += locus.kinds
            self._sequence(call, locus.accession, kinds, values, variant.genomic_hgvs)
        else:
            self._reported_names(variant, kinds, values)
        if variant.cytogenetic_location:
            kinds.append(self._kinds.location)
            values.append(variant.cytogenetic_location)
        if primary is not None:
            self._representative(primary, kinds, values)
        for term in variant.variation_codes:
            kinds.append(Kind.shared(_term_part(self._code["variation-code"], term)))
        self._reported_sample(variant, kinds, values)
        notes = [{"text": note} for note in variant.notes]
        if primary is not None and primary.hgvs_p and ":" not in primary.hgvs_p:
            notes.append({"text": f"{BARE_PROTEIN_HGVS}{primary.hgvs_p}"})
        obs = self.observation(rid, tuple(kinds), values, notes)
        obs["status"] = (variant.status or status).observation
        if variant.display_name:
            obs["code"] = {**obs["code"], "text": variant.display_name}
        obs["valueCodeableConcept"] = concept("variant-value", variant.assessment)
        return obs

    def _reported_names(
        self, variant: ReportedVariant, kinds: list[Kind], values: list[Any]
    ) -> None:
        """The g.HGVS and DNA change type of a variant stated without coordinates."""
        if variant.genomic_hgvs:
            kinds.append(self._kinds.hgvs)
            values.append(variant.genomic_hgvs)
        if variant.change_type is not None:
            kinds.append(
                Kind.shared(_term_part(self._code["coding-change-type"], variant.change_type))
            )

    def _reported_sample(
        self, variant: ReportedVariant, kinds: list[Kind], values: list[Any]
    ) -> None:
        """Source class (the variant's, else the report's), allelic state, allele frequency,
        read depth and inheritance of a reported variant."""
        source = variant.source_class
        if source is None:
            if self._source is not None:
                kinds.append(self._source)
        elif coding("source-class", source) is not None:
            kinds.append(self._coded("genomic-source-class", "source-class", source))
        self._measured(variant, kinds, values)
        if variant.inheritance is not None:
            kinds.append(
                self._coded("variant-inheritance", "variant-inheritance", variant.inheritance)
            )

    def _measured(
        self, allele: VariantCall | ReportedVariant, kinds: list[Kind], values: list[Any]
    ) -> None:
        """Allelic state, allele frequency and allelic read depth, as the sample showed them."""
        if allele.zygosity is not None:
            kinds.append(self._states[allele.zygosity])
        af = allele.allele_frequency
        if af is not None and math.isfinite(af):
            kinds.append(self._kinds.frequency)
            values.append(af)
        if allele.allele_depth is not None:
            kinds.append(self._kinds.depth)
            values.append(allele.allele_depth)

    def _sample(self, call: VariantCall, kinds: list[Kind], values: list[Any]) -> None:
        """Source class, allelic state, allele frequency and allelic read depth, and the
        allele's frequency in a population when its annotation gives one."""
        if self._source is not None:
            kinds.append(self._source)
        self._measured(call, kinds, values)
        if (found := _population(call)) is not None:
            kinds.append(self._kinds.population)
            values.append(found)


class _Encoder:
    """:meth:`VariantBuilder.encoding`'s function: calls to encoded Observations.

    Most calls are plain sequence alleles (no genes, notes, rs ids or SV fields); their
    shape follows from a short key, so their values are listed here directly, in the order
    :meth:`VariantBuilder._components` gives, which the first call of each key proves. Once
    proven, a key's template goes to the C lane (:class:`adapter._native.Lane`), which then
    makes the id, the notation and the encoding of each such call itself; this encoder sees
    only the calls the lane does not take.
    """

    def __init__(
        self,
        builder: VariantBuilder,
        encode: Callable[[dict[str, Any]], bytes],
        inspect: Inspect | None,
        check: Callable[[dict[str, Any]], None] | None = None,
        references: str = "urn:uuid:",
    ) -> None:
        self.builder = builder
        self.references = references
        self.encode = encode
        self.inspect = inspect
        self.check = check
        self.shapes: dict[Shape, ResourceTemplate] = {}
        #: lane key -> its shape and the shape's template; None where the lane does not apply
        self.lanes: dict[tuple[Any, ...], tuple[Shape, ResourceTemplate] | None] = {}
        self.native: Lane | None = None  # the lane this encoder teaches
        #: an annotation code -> the kinds of the components it first stood for
        self.codes: dict[int, Shape] = {}
        self.implications = Implications(builder._ctx)
        #: the molecular-consequences of a Variant, encoded in C by template
        self.consequences = Consequences(
            builder._ids.prefix("molecular-consequence"),
            references,
            ENSEMBL,
            REFSEQ,
            self._consequence_template,
            orjson.dumps,
        )

    def __call__(self, call: VariantCall, genes: Sequence[tuple[str, str]] = ()) -> Encoded:
        rid, raw_id = self.builder._ids.variant(call)
        lane = None if genes else self._lane(call)
        notes: list[Note] = []
        template: ResourceTemplate | None
        if lane is not None:
            shape, template, values = lane
        else:
            kinds: list[Kind] = []
            values = []
            notes = self.builder._components(call, genes, kinds, values)
            shape = tuple(kinds)
            template = None if notes else self._template(shape, len(values))
        if self.inspect is not None:
            self.inspect(rid, shape, values, notes)
        if template is None:  # free text: rare, encoded as it comes
            data = self.encode(self.builder.observation(rid, shape, values, notes))
        else:
            data = template.fill(rid.encode(), values)
        table = self.builder._classifications
        lab = table.find(call.chrom, call.pos, call.ref, call.alt) if table is not None else None
        if call.phased:
            found = phased_allele(call, rid, lab.tier if lab is not None else None)
            if found is not None and found.gene is not None and not found.homozygous:
                self.builder.phased.append(found)  # the others phasing relates to nothing
        if call.annotation is None and call.clinvar is None and lab is None:
            return data, raw_id
        pieces, ids = [data], [raw_id]
        allele = call.annotation
        if allele is not None and allele.primary is not None and self.check is None:
            data, raw_ids = self.consequences(rid, (allele.primary, *allele.others))
            pieces.append(data)
            ids.append(raw_ids)
        for derived in self._derived(call, rid, lab):
            if self.check is not None:
                self.check(derived)
            pieces.append(self.encode(derived))
            ids.append(_raw(derived["id"]))
        return b"".join(pieces), b"".join(ids)

    def _consequence_template(
        self, system: str | None, coding: bool, protein: bool, terms: tuple[str, ...], count: int
    ) -> tuple[tuple[bytes, ...], int]:
        """The template of a molecular-consequence shape, for the C encoder of consequences:
        its pieces and how many id holes come before the values."""
        shape = ConsequenceShape(system, coding, protein, terms)
        probe = self.implications.consequence_of(ID_MARK, shape, marks(count))
        template = ResourceTemplate(self.encode(probe), count)
        return template.pieces, template.before

    def _derived(
        self, call: VariantCall, rid: str, lab: LabClassification | None = None
    ) -> list[dict[str, Any]]:
        """What the annotations say of the Variant, all results of the report: a
        molecular-consequence per transcript consequence (here only when each is checked;
        else C encodes them, :attr:`consequences`), the diagnostic-implication of the lab's
        classification ``lab``, else ClinVar's, and the therapeutic implications the
        knowledge file gives the call (its allele's changes, its copy-number gain).
        Pathogenic and likely pathogenic classes and the therapeutic implications are the
        conclusion's findings too (``builder.findings``)."""
        found = []
        allele = call.annotation
        primary = allele.primary if allele is not None else None
        implications, builder = self.implications, self.builder
        if allele is not None and primary is not None and self.check is not None:
            consequences = (primary, *allele.others)
            found += [implications.consequence(rid, c, i) for i, c in enumerate(consequences)]
        decided = self._diagnosis(call, rid, lab)
        if decided is not None:
            found.append(decided)
        knowledge = builder._knowledge
        if knowledge is not None and allele is not None:
            for rule in knowledge.for_call(call, builder._male):
                therapy = implications.therapeutic(knowledge, rule, rid)
                found.append(therapy)
                builder.findings.append(therapeutic_finding(rule, therapy["id"], rid))
        return found

    def _diagnosis(
        self, call: VariantCall, rid: str, lab: LabClassification | None
    ) -> dict[str, Any] | None:
        """The diagnostic-implication of the Variant: the lab's classification, else
        ClinVar's, else none; counted by the source that decided, and a finding when
        pathogenic or likely pathogenic (part of :meth:`_derived`)."""
        builder, table = self.builder, self.builder._classifications
        if lab is not None and table is not None:
            source = table.label()
            found = self.implications.classified(rid, lab, source)
        elif call.clinvar is not None:
            source, found = CLINVAR, self.implications.diagnostic(rid, call.clinvar)
        else:
            return None
        builder.decided[source] += 1
        primary = call.annotation.primary if call.annotation is not None else None
        hgvs = primary.hgvs_c if primary is not None else None
        named = _qualified(hgvs, primary.transcript) if primary and hgvs else None
        finding = diagnostic_finding(found["id"], rid, call, source=source, lab=lab, hgvs=named)
        if finding is not None:
            builder.findings.append(finding)
        return found

    def _lane(self, call: VariantCall) -> tuple[Shape, ResourceTemplate, list[Any]] | None:
        """A sequence allele's shape, template and values when its key (chromosome, change,
        zygosity, which values, the kinds of the annotation's components) has a proven
        template; None for any other call. Proven keys are taught to the C lane."""
        if call.structural is not None or call.record_id or call.filters not in _UNFILTERED:
            return None
        if _clinvar_genes(call):  # genes the lane's key does not tell
            return None
        b = self.builder
        locus = b._loci.get(call.chromosome) or b._locus(call.chromosome)
        if self.native is not None:
            self.native.place(call.chromosome, locus.accession)
        n = describe(locus.accession, call.pos, call.ref, call.alt)
        if n is None or n.hgvs is None:
            return None
        values: list[Any] = []
        annotated: list[Kind] = []
        primary = call.annotation.primary if call.annotation is not None else None
        if primary is not None:
            b._gene(primary, annotated, values)
        values += n.start, n.end, call.ref, call.alt, n.hgvs, n.spdi
        if primary is not None:
            b._representative(primary, annotated, values)
        af, depth = call.allele_frequency, call.allele_depth
        if af is not None and math.isfinite(af):
            values.append(af)
        if depth is not None:
            values.append(depth)
        code = _annotation_code(primary)
        if (population := _population(call)) is not None:
            values.append(population)
            annotated.append(b._kinds.population)
            code += _POPULATION
        key = (call.chromosome, n.change, call.zygosity, len(values), depth is not None, code)
        found = self.lanes.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = self.lanes[key] = self._lane_shape(call, values)
            if found is not None and self.native is not None:
                shape, template = found
                if self.codes.setdefault(code, tuple(annotated)) == tuple(annotated):
                    self.native.learn(key, shape, template.pieces, template.before, template.after)
        return None if found is None else (*found, values)

    def _lane_shape(
        self, call: VariantCall, values: list[Any]
    ) -> tuple[Shape, ResourceTemplate] | None:
        """The lane key's shape and template, if the builder's own values agree."""
        kinds: list[Kind] = []
        built: list[Any] = []
        notes = self.builder._components(call, (), kinds, built)
        if notes or built != values:
            return None
        return tuple(kinds), self._template(tuple(kinds), len(values))

    def _template(self, shape: tuple[Kind, ...], count: int) -> ResourceTemplate:
        template = self.shapes.get(shape)
        if template is None:
            probe = self.builder.observation(ID_MARK, shape, marks(count), [])
            template = self.shapes[shape] = ResourceTemplate(self.encode(probe), count)
        return template


def _clinvar_genes(call: VariantCall) -> tuple[str, ...]:
    """ClinVar's genes of a call no transcript places in a gene (``GENEINFO``): the
    Variant names them, so whoever reads it knows its gene as the adapter did."""
    if call.clinvar is None:
        return ()
    primary = call.annotation.primary if call.annotation is not None else None
    return () if primary is not None and primary.gene_symbol else call.clinvar.genes


def _annotation_code(primary: TranscriptConsequence | None) -> int:
    """The kinds of the components a primary transcript gives a Variant, as one number (0:
    no annotation), as adapter/_native.c computes it: gene (HGNC-coded, named), transcript
    (Ensembl, RefSeq), c.HGVS, p.HGVS naming its sequence."""
    if primary is None:
        return 0
    gene = (1 if primary.hgnc_id else 2) if primary.gene_symbol else 0
    tx = primary.transcript
    transcript = (1 if tx.startswith("ENS") else 2) if tx else 0
    coding = 1 if primary.hgvs_c else 0
    protein = 1 if primary.hgvs_p and ":" in primary.hgvs_p else 0
    return 1 + gene + 3 * transcript + 9 * coding + 18 * protein


#: what a population frequency adds to an annotation code (as adapter/_native.c adds it)
_POPULATION = 37


def _population(call: VariantCall) -> float | None:
    """The allele's frequency in a population, as its annotation gives it (gnomAD)."""
    allele = call.annotation
    af = allele.population_af if allele is not None else None
    return af if af is not None and math.isfinite(af) else None


def _raw(rid: str) -> bytes:
    """A UUID's text as its 16 bytes."""
    return bytes.fromhex(rid.replace("-", ""))


def _qualified(hgvs: str, transcript: str | None) -> str:
    """A c.HGVS with its reference sequence (SnpEff writes ``c.1799T>A`` alone)."""
    if ":" in hgvs or not transcript:
        return hgvs
    return f"{transcript}:{hgvs}"


_UNFILTERED = ((), ("PASS",))
_UNSEEN: Any = object()
_ALLELIC_STATE = ("allelic-state", "allelic-state")
_CHANGE_TYPE = ("coding-change-type", "dna-change-type")


def _term_part(code: dict[str, Any], term: CodedTerm) -> dict[str, Any]:
    """A component of ``code`` whose value is a report's term."""
    return {"code": code, "valueCodeableConcept": term_concept(term)}


def _observation(shared: _Shared, rid: str, notes: list[Note], comps: Any) -> dict[str, Any]:
    """An Observation: its own elements put into a copy of the shared top level."""
    obs = (shared.noted if notes else shared.plain).copy()
    obs["id"] = rid
    obs["identifier"] = [identifier(rid)]
    if notes:
        obs["note"] = notes
    obs["component"] = comps
    return obs


def _head(ctx: AnalysisContext) -> dict[str, Any]:
    """The elements between identifier and note that every Observation shares, in order."""
    head: dict[str, Any] = {
        "status": "final",
        "category": [concept("category", "laboratory"), concept("category", "genetics")],
        "code": concept("resource-code", "variant"),
        **observed(ctx),
    }
    head["valueCodeableConcept"] = concept("variant-value", "present")
    return head


def _tail(ctx: AnalysisContext) -> dict[str, Any]:
    """Method and specimen, shared by every Observation."""
    tail: dict[str, Any] = {"method": concept("method", "sequencing")}
    if (specimen := specimen_reference(ctx)) is not None:
        tail["specimen"] = specimen
    return tail
