"""Variant Observations (Genomics Reporting IG STU3 profile ``variant``), as dicts or as JSON.

This is the hot path: one call per variant, up to millions per conversion. Everything that
does not depend on the call (meta, categories, codes, subject, per-chromosome components) is
made once, with its JSON, and shared between Observations; shared parts are never mutated.

One description of the Observation (:meth:`VariantBuilder._components` and
:func:`_observation`) feeds two collectors: :class:`_Dicts` makes the plain dicts that
validators read (:meth:`VariantBuilder.build`), :class:`_Json` writes the same components
straight to JSON from templates that :class:`_Dicts` made once, so that a conversion without
validation need not build and then serialise some 200 objects per variant
(:meth:`VariantBuilder.prepare`). See :mod:`adapter.notation` for the coordinate conventions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import orjson

from ..model import (
    AnalysisContext,
    GenomeBuild,
    Sex,
    StructuralVariant,
    SvType,
    VariantCall,
    Zygosity,
)
from ..notation import ChangeType, Notation, describe, describe_structural, ploidy
from .codes import (
    DBSNP,
    HGNC,
    HGVS,
    REFSEQ,
    SPDI,
    UCUM,
    coding,
    concept,
    effective_time,
    instant,
    profile,
    slices,
)
from .identifiers import (
    URI_SYSTEM,
    IdFactory,
    patient_reference,
    performer_reference,
    specimen_reference,
)

__all__ = ["AccessionLookup", "VariantBuilder"]

#: (genome build, normalised chromosome) → RefSeq accession, e.g. adapter.assembly.accession
AccessionLookup = Callable[[GenomeBuild, str], str]
Component = dict[str, Any]
Note = dict[str, str]

_RSID = re.compile(r"rs[1-9]\d*").fullmatch
_MALE = {Sex.MALE: True, Sex.FEMALE: False, Sex.UNKNOWN: None}


class _Part(NamedTuple):
    """Components that many Observations share, and their JSON (comma-separated)."""

    components: tuple[Component, ...]
    json: bytes


def _part(*components: Component) -> _Part:
    """``components`` as a shared part, serialised once."""
    return _Part(components, b",".join(map(orjson.dumps, components)))


class _Kind:
    """A component slice whose value each variant supplies, e.g. the allele start-end range.

    ``template`` is the component's JSON with a hole (``%d`` for an integer, else ``%b``
    for a value's JSON) where each value goes, made by serialising the :class:`_Dicts`
    shape on placeholders: the JSON cannot differ from the dict's.
    """

    __slots__ = ("code", "key", "system", "template")

    def __init__(
        self, name: str, shape: Callable[..., None], holes: str, system: str | None = None
    ) -> None:
        found = slices()[name]
        self.code = found.concept()
        self.key = found.value_key
        self.system = system
        marks = [f"\x00{i}" for i in range(len(holes))]  # never in a code table's text
        probe = _Dicts()
        shape(probe, self, *marks)
        self.template = _template(orjson.dumps(probe.items[0]), marks, holes)


def _template(raw: bytes, marks: list[str], holes: str) -> bytes:
    """``raw`` JSON as a %-template: each quoted mark, in order, becomes its hole."""
    pieces, rest = [], raw.replace(b"%", b"%%")
    for mark, hole in zip(marks, holes, strict=True):
        before, found, rest = rest.partition(orjson.dumps(mark))
        if not found or orjson.dumps(mark) in rest:
            raise ValueError(f"placeholder {mark!r} not once and in order in {raw!r}")
        pieces += (before, f"%{hole}".encode())
    return b"".join([*pieces, rest])


class _Dicts:
    """Collects an Observation's components as dicts; the shapes of their values live here."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Any] = []

    def share(self, part: _Part) -> None:
        """Add components that are made once and shared."""
        self.items.extend(part.components)

    def range(self, kind: _Kind, low: int, high: int) -> None:
        """A Range of 1-based positions."""
        self.items.append(
            {"code": kind.code, kind.key: {"low": {"value": low}, "high": {"value": high}}}
        )

    def text(self, kind: _Kind, value: str) -> None:
        """A string."""
        self.items.append({"code": kind.code, kind.key: value})

    def coded(self, kind: _Kind, code: str) -> None:
        """A CodeableConcept of one coding in the kind's system."""
        value = {"coding": [{"system": kind.system, "code": code}]}
        self.items.append({"code": kind.code, kind.key: value})

    def gene(self, kind: _Kind, code: str, display: str) -> None:
        """A CodeableConcept of one coding with a display (an HGNC gene and its symbol)."""
        value = {"coding": [{"system": kind.system, "code": code, "display": display}]}
        self.items.append({"code": kind.code, kind.key: value})

    def count(self, kind: _Kind, value: float) -> None:
        """A unit-less UCUM Quantity."""
        self.items.append(
            {"code": kind.code, kind.key: {"value": value, "system": UCUM, "code": "1"}}
        )


class _Json(_Dicts):
    """Collects the same components as JSON: each value put into its kind's template."""

    __slots__ = ()

    def share(self, part: _Part) -> None:
        """Add components that are made once and shared."""
        self.items.append(part.json)

    def range(self, kind: _Kind, low: int, high: int) -> None:
        """A Range of 1-based positions."""
        self.items.append(kind.template % (low, high))

    def text(self, kind: _Kind, value: str) -> None:
        """A string."""
        self.items.append(kind.template % orjson.dumps(value))

    def coded(self, kind: _Kind, code: str) -> None:
        """A CodeableConcept of one coding in the kind's system."""
        self.items.append(kind.template % orjson.dumps(code))

    def gene(self, kind: _Kind, code: str, display: str) -> None:
        """A CodeableConcept of one coding with a display."""
        self.items.append(kind.template % (orjson.dumps(code), orjson.dumps(display)))

    def count(self, kind: _Kind, value: float) -> None:
        """A unit-less UCUM Quantity."""
        self.items.append(kind.template % orjson.dumps(value))


class _Kinds:
    """The per-variant component kinds of one builder."""

    __slots__ = (
        "alt",
        "copies",
        "dbsnp",
        "depth",
        "exact",
        "frequency",
        "gene",
        "hgvs",
        "inner",
        "outer",
        "ref",
        "spdi",
    )

    def __init__(self) -> None:
        self.gene = _Kind("gene-studied", _Dicts.gene, "bb", HGNC)
        self.exact = _Kind("exact-start-end", _Dicts.range, "dd")
        self.inner = _Kind("inner-start-end", _Dicts.range, "dd")
        self.outer = _Kind("outer-start-end", _Dicts.range, "dd")
        self.ref = _Kind("ref-allele", _Dicts.text, "b")
        self.alt = _Kind("alt-allele", _Dicts.text, "b")
        self.hgvs = _Kind("genomic-hgvs", _Dicts.coded, "b", HGVS)
        self.spdi = _Kind("variation-code", _Dicts.coded, "b", SPDI)
        self.dbsnp = _Kind("variation-code", _Dicts.coded, "b", DBSNP)
        self.frequency = _Kind("sample-allelic-frequency", _Dicts.count, "b")
        self.depth = _Kind("allelic-read-depth", _Dicts.count, "b")
        self.copies = _Kind("copy-number", _Dicts.count, "b")


class _Shared(NamedTuple):
    """The top-level elements every Observation shares: as objects, or as JSON fragments."""

    meta: Any
    head: dict[str, Any]
    tail: dict[str, Any]


class _Locus(NamedTuple):
    """What every variant on one chromosome shares: accession and leading components."""

    accession: str
    part: _Part


class VariantBuilder:
    """Builds one Variant Observation per :class:`VariantCall` of one conversion."""

    def __init__(self, ctx: AnalysisContext, accession: AccessionLookup) -> None:
        self._ctx = ctx
        self._accession = accession
        self._ids = IdFactory(ctx)
        self._code = {name: s.concept() for name, s in slices().items()}
        self._kinds = _Kinds()
        meta = {"profile": [profile("variant")]}
        self._shared = _Shared(meta, _head(ctx), _tail(ctx))
        self._json = _Shared(
            _fragment(meta),
            {k: _fragment(v) for k, v in self._shared.head.items()},
            {k: _fragment(v) for k, v in self._shared.tail.items()},
        )
        self._assembly = self._coded("reference-sequence-assembly", "genome-build", ctx.build)
        self._coordinates = self._coded(
            "coordinate-system", "coordinate-system", "1-based-character"
        )
        self._source = self._source_class(ctx)
        self._states = {z: _part(self._coded(*_ALLELIC_STATE, z)) for z in Zygosity}
        self._changes = {c: _part(self._coded(*_CHANGE_TYPE, c)) for c in ChangeType}
        self._low_confidence = _part(
            self._coded("variant-confidence-status", "variant-confidence", "low")
        )
        self._loci: dict[str, _Locus] = {}
        self._male = _MALE[ctx.sex]

    def _coded(self, name: str, group: str, key: str) -> Component:
        """A CodeableConcept component of slice ``name`` with an answer from ``group``."""
        return {"code": self._code[name], "valueCodeableConcept": concept(group, key)}

    def _source_class(self, ctx: AnalysisContext) -> _Part | None:
        """The genomic source class, when LOINC has an answer for it (not for "mixed")."""
        if coding("source-class", ctx.source_class) is None:
            return None
        return _part(self._coded("genomic-source-class", "source-class", ctx.source_class))

    def _locus(self, chromosome: str) -> _Locus:
        """Accession and the components shared by all variants on a chromosome, made once."""
        acc = self._accession(self._ctx.build, chromosome)
        comps = [self._assembly]
        if coding("chromosome", chromosome) is not None:
            comps.append(self._coded("chromosome-identifier", "chromosome", chromosome))
        refseq = {"coding": [{"system": REFSEQ, "code": acc}]}
        comps.append({"code": self._code["genomic-ref-seq"], "valueCodeableConcept": refseq})
        comps.append(self._coordinates)
        found = self._loci[chromosome] = _Locus(acc, _part(*comps))
        return found

    def build(self, call: VariantCall, genes: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        """The Observation for ``call``; ``genes`` are (HGNC id, symbol) pairs when known."""
        rid = self._ids.variant(call)
        out = _Dicts()
        notes = self._components(call, genes, out)
        return _observation(self._shared, rid, notes, out.items)

    def prepare(self, call: VariantCall, genes: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        """The Observation of :meth:`build` ready to serialise, for when nothing reads it.

        ``orjson.dumps`` gives the same bytes for both, several times faster for this one,
        whose elements are already JSON (:class:`orjson.Fragment`) below the top level.
        """
        rid = self._ids.variant(call)
        out = _Json()
        notes = self._components(call, genes, out)
        comps = orjson.Fragment(b"[" + b",".join(out.items) + b"]")
        return _observation(self._json, rid, notes, comps)

    def _components(
        self, call: VariantCall, genes: Sequence[tuple[str, str]], out: _Dicts
    ) -> list[Note]:
        """The components of ``call``'s Observation, in order, into ``out``; its notes."""
        for hgnc_id, symbol in genes:
            out.gene(self._kinds.gene, hgnc_id, symbol)
        locus = self._loci.get(call.chromosome) or self._locus(call.chromosome)
        out.share(locus.part)
        sv = call.structural
        if sv is None:
            notes = self._sequence(call, locus.accession, out)
        else:
            notes = self._structural(call, sv, locus.accession, out)
        self._sample(call, out)
        if call.filters and call.filters != ("PASS",):
            out.share(self._low_confidence)
            notes.append({"text": "VCF FILTER: " + ";".join(call.filters)})
        return notes

    def _sequence(self, call: VariantCall, acc: str, out: _Dicts) -> list[Note]:
        """Range, alleles as written, names and change type of a sequence allele; no notes."""
        kinds = self._kinds
        n = describe(acc, call.pos, call.ref, call.alt)
        if n is None:  # not a nucleotide sequence (e.g. "*"): only what the REF states
            out.range(kinds.exact, call.pos, call.pos + len(call.ref) - 1)
            out.text(kinds.ref, call.ref)
            return []
        out.range(kinds.exact, n.start, n.end)
        out.text(kinds.ref, call.ref)
        out.text(kinds.alt, call.alt)
        self._names(call, n, out)
        out.share(self._changes[n.change])
        return []

    def _structural(
        self, call: VariantCall, sv: StructuralVariant, acc: str, out: _Dicts
    ) -> list[Note]:
        """Ranges, names, change type and copy number of an SV; a breakend's ALT as a note."""
        copies = ploidy(call.chromosome, self._male)
        n = describe_structural(acc, call.chromosome, call.pos, sv, copies)
        kinds = self._kinds
        if n.outer is None:  # precise: no confidence intervals
            out.range(kinds.exact, n.start, n.end)
        else:
            if n.inner is not None:
                out.range(kinds.inner, *n.inner)
            out.range(kinds.outer, *n.outer)
        self._names(call, n, out)
        out.share(self._changes[n.change])
        if sv.copy_number is not None and math.isfinite(sv.copy_number):
            out.count(kinds.copies, sv.copy_number)
        if sv.sv_type is SvType.BND:
            return [{"text": f"VCF breakend ALT: {sv.mate or call.alt}"}]
        return []

    def _names(self, call: VariantCall, n: Notation, out: _Dicts) -> None:
        """g.HGVS, SPDI and dbSNP ids as they exist for this allele."""
        kinds = self._kinds
        if n.hgvs is not None:
            out.coded(kinds.hgvs, n.hgvs)
        if n.spdi is not None:
            out.coded(kinds.spdi, n.spdi)
        if call.record_id:
            for rsid in call.record_id.split(";"):
                if _RSID(rsid):
                    out.coded(kinds.dbsnp, rsid)

    def _sample(self, call: VariantCall, out: _Dicts) -> None:
        """Source class, allelic state, allele frequency and allelic read depth."""
        if self._source is not None:
            out.share(self._source)
        if call.zygosity is not None:
            out.share(self._states[call.zygosity])
        af = call.allele_frequency
        if af is not None and math.isfinite(af):
            out.count(self._kinds.frequency, af)
        if call.allele_depth is not None:
            out.count(self._kinds.depth, call.allele_depth)


_ALLELIC_STATE = ("allelic-state", "allelic-state")
_CHANGE_TYPE = ("coding-change-type", "dna-change-type")


def _observation(shared: _Shared, rid: str, notes: list[Note], comps: Any) -> dict[str, Any]:
    """An Observation's elements in their order, from its own parts and the shared ones."""
    obs = {
        "resourceType": "Observation",
        "id": rid,
        "meta": shared.meta,
        "identifier": [{"system": URI_SYSTEM, "value": "urn:uuid:" + rid}],
        **shared.head,
    }
    if notes:
        obs["note"] = notes
    obs.update(shared.tail)
    obs["component"] = comps
    return obs


def _fragment(value: Any) -> orjson.Fragment:
    """``value`` serialised once, for orjson to copy wherever it occurs."""
    return orjson.Fragment(orjson.dumps(value))


def _head(ctx: AnalysisContext) -> dict[str, Any]:
    """The elements between identifier and note that every Observation shares, in order."""
    head: dict[str, Any] = {
        "status": "final",
        "category": [concept("category", "laboratory"), concept("category", "genetics")],
        "code": concept("resource-code", "variant"),
        "subject": patient_reference(ctx.patient),
    }
    optional = {
        "effectiveDateTime": effective_time(ctx.file_date, ctx.issued),
        "issued": instant(ctx.issued),
        "performer": [p] if (p := performer_reference(ctx)) else None,
    }
    head.update((k, v) for k, v in optional.items() if v is not None)
    head["valueCodeableConcept"] = concept("variant-value", "present")
    return head


def _tail(ctx: AnalysisContext) -> dict[str, Any]:
    """Method and specimen, shared by every Observation."""
    tail: dict[str, Any] = {"method": concept("method", "sequencing")}
    if (specimen := specimen_reference(ctx)) is not None:
        tail["specimen"] = specimen
    return tail
