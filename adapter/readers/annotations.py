"""The annotations sequencing pipelines write into VCF INFO, read into the internal model.

* VEP's ``CSQ`` and SnpEff's ``ANN``: one ``|``-separated entry per (ALT allele, transcript),
  entries separated by ``,``; the header's Description names the fields. The parser compiles
  the field positions once per header, then reads each record with ``str.split`` alone.
* ClinVar's ``CLNSIG``, ``CLNREVSTAT``, ``CLNDN``, ``CLNDISDB`` and ``GENEINFO`` (its gene symbols,
  which the disclosure policy needs to tell a secondary finding when no annotation names one).

Policy decided here:

* An entry is matched to its ALT by VEP's ``ALLELE_NUM`` when the file has it; else by the
  allele string: SnpEff writes the ALT as in the VCF, VEP drops the first base of every allele
  of an indel record when they all share it ('-' for an empty one). An entry naming an allele
  the record lacks is counted (:data:`SKIP_UNMATCHED`), never silently dropped.
* The primary transcript of an allele is the first MANE Select one, else the first picked,
  else the first canonical, else the first listed (:class:`PrimaryRule`, configurable).
* ClinVar's ``Pathogenic/Likely_pathogenic`` becomes *Likely pathogenic* and
  ``Benign/Likely_benign`` *Likely benign*: the weaker class is the one every submitter
  supports. The text ClinVar wrote is kept beside the tier. Values that are no tier
  (``drug_response``, ``not_provided``, conflicting classifications) keep their text and get
  no tier.

Tables, in ``mappings/``:

* ``sequence_ontology.csv``: consequence term → SO id and label, from the Sequence Ontology
  (http://www.sequenceontology.org) as VEP lists its terms
  (https://www.ensembl.org/info/genome/variation/prediction/predicted_data.html), plus the
  SO terms SnpEff writes that VEP does not.
* ``clinical_significance.csv``: ClinVar CLNSIG value → ACMG tier and its LOINC answer in
  answer list LL4034-6 of LOINC 53037-8 (https://loinc.org/LL4034-6), the list the IG binds to
  the clinical-significance component
  (http://hl7.org/fhir/uv/genomics-reporting/STU3/StructureDefinition-diagnostic-implication.html).
* ClinVar's review-status stars are ClinVar's own levels
  (https://www.ncbi.nlm.nih.gov/clinvar/docs/review_status/), kept in :data:`_STARS`.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, lru_cache
from operator import attrgetter, itemgetter
from typing import Final, Protocol
from urllib.parse import unquote

from .._native import Entries
from ..errors import MalformedRecordError
from ..model import (
    AlleleAnnotation,
    AnnotationSource,
    AnnotationTool,
    ClinicalSignificance,
    ClinVarAssertion,
    ClinVarCondition,
    ConversionSummary,
    Impact,
    RecordAnnotations,
    TranscriptConsequence,
)
from ..resources import data_dir
from .vcf_text import VcfHeader

__all__ = [
    "DEFAULT_AF_FIELDS",
    "DEFAULT_AF_INFO_KEYS",
    "DEFAULT_PRIMARY_ORDER",
    "SKIP_UNMATCHED",
    "AnnotationParser",
    "InfoValues",
    "PrimaryRule",
    "count_skips",
    "find_sources",
    "parse_clinvar",
    "sequence_ontology",
    "significance_tier",
]

#: the ConversionSummary.skip() reason for an annotation naming an allele the record lacks
SKIP_UNMATCHED: Final = "annotation_allele_not_in_record"
#: VEP fields that hold a population allele frequency, the first present one wins
DEFAULT_AF_FIELDS: Final = ("gnomADe_AF", "gnomADg_AF", "gnomAD_AF")
#: INFO keys that hold a population allele frequency (Number=A), if no CSQ field has one
DEFAULT_AF_INFO_KEYS: Final = ("gnomAD_AF", "AF_popmax")
CLINVAR_KEYS: Final = ("CLNSIG", "CLNREVSTAT", "CLNDN", "CLNDISDB", "GENEINFO")


class PrimaryRule(StrEnum):
    """What makes a transcript the primary one of its allele, tried in a configured order."""

    MANE_SELECT = "mane_select"
    PICKED = "picked"
    CANONICAL = "canonical"


DEFAULT_PRIMARY_ORDER: Final = (PrimaryRule.MANE_SELECT, PrimaryRule.PICKED, PrimaryRule.CANONICAL)


class InfoValues(Protocol):
    """A record's INFO as cyvcf2 gives it (``variant.INFO``); a dict does as well."""

    def get(self, key: str, /) -> object: ...


_IMPACTS: Final = {i.value: i for i in Impact}
_FLAGS: Final[dict[PrimaryRule, Callable[[TranscriptConsequence], object]]] = {
    PrimaryRule.MANE_SELECT: attrgetter("mane_select"),
    PrimaryRule.PICKED: attrgetter("picked"),
    PrimaryRule.CANONICAL: attrgetter("canonical"),
}
#: model field → the field name each tool gives it in the header
_NAMES: Final = {
    AnnotationTool.VEP: {
        "allele": "Allele",
        "consequence": "Consequence",
        "impact": "IMPACT",
        "symbol": "SYMBOL",
        "gene": "Gene",
        "hgnc": "HGNC_ID",
        "feature": "Feature",
        "biotype": "BIOTYPE",
        "hgvs_c": "HGVSc",
        "hgvs_p": "HGVSp",
        "canonical": "CANONICAL",
        "mane": "MANE_SELECT",
        "pick": "PICK",
        "allele_num": "ALLELE_NUM",
    },
    AnnotationTool.SNPEFF: {
        "allele": "Allele",
        "consequence": "Annotation",
        "impact": "Annotation_Impact",
        "symbol": "Gene_Name",
        "gene": "Gene_ID",
        "feature": "Feature_ID",
        "biotype": "Transcript_BioType",
        "hgvs_c": "HGVS.c",
        "hgvs_p": "HGVS.p",
    },
}
_KEYS: Final = {AnnotationTool.VEP: "CSQ", AnnotationTool.SNPEFF: "ANN"}
_VERSION_KEYS: Final = {AnnotationTool.VEP: "VEP", AnnotationTool.SNPEFF: "SnpEffVersion"}
_STARS: Final = {
    "practice guideline": 4,
    "reviewed by expert panel": 3,
    "criteria provided, multiple submitters, no conflicts": 2,
    "criteria provided, conflicting classifications": 1,
    "criteria provided, conflicting interpretations": 1,
    "criteria provided, single submitter": 1,
    "no assertion criteria provided": 0,
    "no assertion provided": 0,
    "no classification provided": 0,
    "no classification for the single variant": 0,
    "no interpretation for the single variant": 0,
    "no classifications from unflagged records": 0,
}


# ---- tables --------------------------------------------------------------------------------


@cache
def _so_table() -> dict[str, tuple[str, str]]:
    with (data_dir("mappings") / "sequence_ontology.csv").open(newline="") as f:
        return {r["term"]: (r["so_id"], r["label"]) for r in csv.DictReader(f)}


@cache
def _significance_table() -> dict[str, tuple[ClinicalSignificance, str]]:
    with (data_dir("mappings") / "clinical_significance.csv").open(newline="") as f:
        return {
            r["clnsig"].casefold(): (ClinicalSignificance(r["tier"]), r["code"])
            for r in csv.DictReader(f)
        }


def sequence_ontology(term: str) -> tuple[str, str] | None:
    """(SO id, label) of a consequence term as VEP or SnpEff write it; None if unknown."""
    return _so_table().get(term)


def significance_tier(clnsig: str) -> tuple[ClinicalSignificance, str] | None:
    """(ACMG tier, LOINC answer code) of one CLNSIG value; None for values that are no tier."""
    return _significance_table().get(clnsig.casefold())


# ---- the header ----------------------------------------------------------------------------


def find_sources(header: VcfHeader) -> tuple[AnnotationSource, ...]:
    """The transcript annotation sources the header declares, VEP first."""
    return tuple(
        AnnotationSource(tool, key, _version(header.meta.get(_VERSION_KEYS[tool])))
        for tool, key in _KEYS.items()
        if key in header.infos
    )


def _version(meta: str | None) -> str | None:
    """The first word of ``##VEP="v110" time=...`` or ``##SnpEffVersion="5.1d (build ...)"``."""
    words = (meta or "").replace('"', " ").split()
    return words[0] if words else None


def _field_names(source: AnnotationSource, description: str) -> list[str]:
    """The field names the Description lists: after ``Format:`` (VEP), in quotes (SnpEff)."""
    if source.tool is AnnotationTool.VEP:
        listed = description.partition("Format:")[2]
    else:
        parts = description.split("'")
        listed = parts[1] if len(parts) > 2 else ""
    names = [n.strip() for n in listed.strip().split("|")]
    return names if len(names) > 1 else []


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each model field sits in an entry; ``width`` (the '' appended) where absent."""

    key: str
    names: tuple[str, ...]
    width: int
    allele: int
    allele_num: int | None
    af: tuple[int, ...]
    #: where TranscriptConsequence's fields sit, in its order (consequence … pick)
    fields: tuple[int, ...]
    #: an entry's fields in that order
    model: Callable[[list[str]], tuple[str, ...]]


def _layout(
    source: AnnotationSource, header: VcfHeader, af_fields: Sequence[str], origin: str
) -> _Layout:
    names = _field_names(source, header.infos[source.info_key].description)
    wanted = _NAMES[source.tool]
    if not names or wanted["allele"] not in names or wanted["consequence"] not in names:
        shape = (
            "Format: Allele|Consequence|..."
            if source.tool is AnnotationTool.VEP
            else ("'Allele | Annotation | ...'")
        )
        raise MalformedRecordError(
            f"the ##INFO=<ID={source.info_key}> Description does not list the annotation "
            f"fields ({shape}); restore the header {source.tool} wrote",
            source=origin,
            field=source.info_key,
        )
    width = len(names)
    at = {name: i for i, name in enumerate(names)}

    def where(key: str) -> int:
        return at.get(wanted.get(key, ""), width)

    allele_num = at.get("ALLELE_NUM") if source.tool is AnnotationTool.VEP else None
    fields = tuple(where(k) for k in _MODEL_FIELDS)
    return _Layout(
        key=source.info_key,
        names=tuple(names),
        width=width,
        allele=where("allele"),
        allele_num=allele_num,
        af=tuple(at[n] for n in af_fields if n in at),
        fields=fields,
        model=itemgetter(*fields),
    )


#: the layout's fields in TranscriptConsequence's order
_MODEL_FIELDS: Final = (
    "consequence",
    "impact",
    "symbol",
    "gene",
    "hgnc",
    "feature",
    "biotype",
    "hgvs_c",
    "hgvs_p",
    "canonical",
    "mane",
    "pick",
)


# ---- one record ----------------------------------------------------------------------------


class AnnotationParser:
    """Reads the annotations of a file's records, its field positions compiled once.

    Of two transcript sources (a file annotated by both VEP and SnpEff) the first in
    ``tools`` order is read, so no consequence is counted twice.
    """

    __slots__ = ("_af_info", "_clinvar", "_entries", "_layout", "_order", "_origin", "source")

    def __init__(
        self,
        header: VcfHeader,
        *,
        origin: str = "input.vcf",
        primary_order: Sequence[PrimaryRule] = DEFAULT_PRIMARY_ORDER,
        af_fields: Sequence[str] = DEFAULT_AF_FIELDS,
        af_info_keys: Sequence[str] = DEFAULT_AF_INFO_KEYS,
        tools: Sequence[AnnotationTool] = (AnnotationTool.VEP, AnnotationTool.SNPEFF),
    ) -> None:
        sources = {s.tool: s for s in find_sources(header)}
        chosen = next((sources[t] for t in tools if t in sources), None)
        self.source: AnnotationSource | None = chosen
        self._origin = origin
        self._layout = _layout(chosen, header, af_fields, origin) if chosen else None
        #: the entries read in C, for all but ALLELE_NUM layouts and what is out of the
        #: ordinary (adapter/_native.c; the Python below stays the reference)
        self._entries = (
            _native_entries(self._layout, primary_order)
            if self._layout is not None and self._layout.allele_num is None
            else None
        )
        self._order = tuple(_FLAGS[r] for r in primary_order)
        self._af_info = tuple(k for k in af_info_keys if k in header.infos)
        self._clinvar = "CLNSIG" in header.infos

    @property
    def info_keys(self) -> tuple[str, ...]:
        """The INFO keys this parser reads, for a reader to fetch."""
        own = (self.source.info_key,) if self.source else ()
        return own + self._af_info + (CLINVAR_KEYS if self._clinvar else ())

    def parse(
        self, ref: str, alts: Sequence[str], info: InfoValues, line: int | None = None
    ) -> RecordAnnotations:
        """The annotations of one record, one AlleleAnnotation per ALT in ALT order."""
        layout, alleles, unmatched = self._layout, None, 0
        raw = info.get(layout.key) if layout is not None else None
        if raw.__class__ is not str or raw == ".":  # inline: this runs for every record
            raw = _text(raw)
        if raw and self._entries is not None:
            alleles = self._entries(raw, ref, alts)  # C, for all but the out of the ordinary
        if alleles is None:
            alleles, unmatched = self._alleles(raw, ref, alts, line)
        if self._af_info and any(a.population_af is None for a in alleles):
            self._frequencies_from_info(alleles, info)
        clinvar = parse_clinvar(info) if self._clinvar else None
        return RecordAnnotations(alleles, clinvar, unmatched)

    def _alleles(
        self, raw: str | None, ref: str, alts: Sequence[str], line: int | None
    ) -> tuple[tuple[AlleleAnnotation, ...], int]:
        """The alleles of one record read in Python, and its unmatched entries."""
        groups: list[list[TranscriptConsequence]] = [[] for _ in alts]
        afs: list[float | None] = [None] * len(alts)
        unmatched = 0
        if raw and self._layout is not None:
            unmatched = self._consequences(self._layout, raw, (ref, alts), (groups, afs), line)
        alleles = tuple(
            AlleleAnnotation(i, g[0], tuple(g[1:]), afs[i - 1])
            if g  # the primary transcript first (see _consequences)
            else AlleleAnnotation(i, None, (), afs[i - 1])
            for i, g in enumerate(groups, 1)
        )
        return alleles, unmatched

    def _frequencies_from_info(
        self, alleles: tuple[AlleleAnnotation, ...], info: InfoValues
    ) -> None:
        """The population frequencies INFO gives the alleles that lack one from CSQ/ANN."""
        afs = [a.population_af for a in alleles]
        for key in self._af_info:
            if None not in afs:
                break
            _fill_from_info(afs, info.get(key))
        for allele, af in zip(alleles, afs, strict=True):
            allele.population_af = af

    def _consequences(
        self,
        layout: _Layout,
        raw: str,
        record: tuple[str, Sequence[str]],
        into: tuple[list[list[TranscriptConsequence]], list[float | None]],
        line: int | None,
    ) -> int:
        """Fill ``into`` (consequences and frequencies per ALT) from the entries of a CSQ/ANN
        value of the record (REF, ALTs); the number of entries matching no ALT."""
        ref, alts = record
        groups, afs = into
        plain = layout.key != "CSQ" or (len(alts) == 1 and len(alts[0]) == len(ref))
        keys = alts if plain else _vep_alleles(ref, alts)  # the common case inline
        unmatched = 0
        for n, entry in enumerate(raw.split(","), 1):
            fields = entry.split("|")
            if len(fields) != layout.width:
                raise self._malformed(
                    f"{layout.key} entry {n} has {len(fields)} '|'-separated fields but the "
                    f"header declares {layout.width} ({'|'.join(layout.names[:3])}|...); was "
                    "the file annotated with a different header than it carries?",
                    line,
                )
            allele = fields[layout.allele]
            if layout.allele_num is None and allele in keys:  # the common case, inline
                index: int | None = keys.index(allele)
            else:
                index = self._alt_of(layout, fields, (keys, alts), n, line)
            if index is None:
                unmatched += 1
                continue
            fields.append("")
            groups[index].append(_transcript(fields, layout))
            if afs[index] is None and layout.af:
                afs[index] = _first_af(fields, layout.af)
        for group in groups:  # each ALT's primary transcript first, the others in order
            if group:
                group.insert(0, group.pop(_primary(group, self._order)))
        return unmatched

    def _alt_of(
        self,
        layout: _Layout,
        fields: list[str],
        alleles: tuple[Sequence[str], Sequence[str]],
        n: int,
        line: int | None,
    ) -> int | None:
        """The 0-based ALT an entry belongs to; None if the record has no such allele.

        ``alleles`` holds the ALTs as the tool writes them and as the VCF does.
        """
        keys, alts = alleles
        if layout.allele_num is not None:
            number = fields[layout.allele_num]
            if not number.isdigit():
                raise self._malformed(
                    f"{layout.key} entry {n} has ALLELE_NUM {number!r}, not an ALT number", line
                )
            return int(number) - 1 if 0 < int(number) <= len(alts) else None
        allele = fields[layout.allele]
        if not allele:
            raise self._malformed(
                f"{layout.key} entry {n} names no allele (its first field is empty); "
                f"{self.source.tool if self.source else 'the tool'} writes the ALT there",
                line,
            )
        if allele in keys:
            return keys.index(allele)
        return alts.index(allele) if keys is not alts and allele in alts else None

    def _malformed(self, message: str, line: int | None) -> MalformedRecordError:
        key = self._layout.key if self._layout else None
        return MalformedRecordError(message, source=self._origin, line=line, field=key)


def _native_entries(layout: _Layout, order: Sequence[PrimaryRule]) -> Entries:
    """The C reader of entries in this layout, which puts each ALT's primary transcript first
    as :meth:`AnnotationParser._consequences` does."""
    flags = tuple(_FLAG_CODES[rule] for rule in order)
    return Entries(
        layout.width,
        layout.allele,
        layout.fields,
        layout.af,
        TranscriptConsequence,
        _slots(TranscriptConsequence),
        _IMPACTS,
        unquote,
        flags,
        AlleleAnnotation,
        _slots(AlleleAnnotation),
        layout.key == "CSQ",
    )


def _slots(model: type) -> tuple[str, ...]:
    """A dataclass's fields, in order: the slots C fills."""
    return tuple(f.name for f in dataclasses.fields(model))


#: the PrimaryRule flags as adapter/_native.c numbers them
_FLAG_CODES: Final = {PrimaryRule.MANE_SELECT: 0, PrimaryRule.PICKED: 1, PrimaryRule.CANONICAL: 2}


def _vep_alleles(ref: str, alts: Sequence[str]) -> Sequence[str]:
    """The allele strings VEP writes for the ALTs: in an indel record whose alleles all share
    their first base, that base dropped ('-' for an empty allele); for a symbolic SV allele its
    type's term (:func:`_vep_structural`); otherwise the ALTs."""
    size = len(ref)
    if all(len(a) == size for a in alts):
        return alts
    first = ref[:1]
    if any(a[:1] != first for a in alts if a != "*"):  # a symbolic '<…>' ALT always lands here
        return [_vep_structural(a) for a in alts]
    return [a if a == "*" else a[1:] or "-" for a in alts]


def _vep_structural(alt: str) -> str:
    """What VEP writes as the allele of a symbolic ALT: not the ALT but the Sequence Ontology
    term of the SV type, which VEP takes from SVTYPE (``<DUP:TANDEM>`` with ``SVTYPE=DUP``
    is ``duplication``), per its ``Parser::get_SO_term``; any other ALT as it is."""
    if not alt.startswith("<"):
        return alt
    terms = {
        "DEL": "deletion",
        "INS": "insertion",
        "DUP": "duplication",
        "INV": "inversion",
        "CNV": "copy_number_variation",
    }
    return terms.get(alt[1:-1].partition(":")[0], alt)


def _transcript(f: list[str], at: _Layout) -> TranscriptConsequence:
    """One entry's fields (with a trailing '' standing for absent fields) as the model;
    positional and inline, as this runs for every transcript of every record."""
    terms, impact, symbol, gene, hgnc, feature, biotype, c, p, canonical, mane, pick = at.model(f)
    return TranscriptConsequence(
        _terms(terms),
        _IMPACTS.get(impact),
        symbol or None,
        gene or None,
        (f"HGNC:{hgnc}" if hgnc.isdigit() else hgnc) or None,
        feature or None,
        biotype or None,
        (unquote(c) if "%" in c else c) or None,  # VEP escapes '=' (p.Leu858=) as %3D
        (unquote(p) if "%" in p else p) or None,
        canonical == "YES",
        mane or None,
        pick == "1",
    )


@lru_cache(maxsize=1024)
def _terms(text: str) -> tuple[str, ...]:
    """'&'-joined consequence terms; few combinations recur over a file."""
    return tuple(text.split("&"))


def _primary(
    transcripts: list[TranscriptConsequence],
    order: tuple[Callable[[TranscriptConsequence], object], ...],
) -> int:
    """Index of the first transcript the first matching rule flags; the first listed else."""
    for flag in order:
        for i, transcript in enumerate(transcripts):
            if flag(transcript):
                return i
    return 0


def _first_af(fields: list[str], positions: tuple[int, ...]) -> float | None:
    """The first frequency given; VEP joins those of co-located variants with '&'."""
    for position in positions:
        value = _float(fields[position].partition("&")[0])
        if value is not None:
            return value
    return None


def _fill_from_info(afs: list[float | None], value: object) -> None:
    """Frequencies of a Number=A INFO key into the ALTs that still lack one."""
    if value is None:
        return
    if isinstance(value, str):
        values: Sequence[object] = value.split(",")
    elif isinstance(value, tuple | list):
        values = value
    else:
        values = [value] * len(afs)
    for i, v in enumerate(values[: len(afs)]):
        if afs[i] is None:
            afs[i] = _float(v)


def _float(value: object) -> float | None:
    """A frequency as htslib or the text gives it; None for '.', '' or no number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _text(value: object) -> str | None:
    """An INFO value as its text: htslib may split a Number=. String at its commas."""
    if value is None or value is True or value is False:
        return None
    if isinstance(value, tuple | list):
        value = ",".join(map(str, value))
    text = str(value)
    return text if text and text != "." else None


# ---- ClinVar -------------------------------------------------------------------------------


def parse_clinvar(info: InfoValues) -> ClinVarAssertion | None:
    """ClinVar's classification of the record from its CLN* INFO keys; None without CLNSIG."""
    clnsig = _text(info.get("CLNSIG"))
    if clnsig is None:
        return None
    return _clinvar(
        clnsig,
        _text(info.get("CLNREVSTAT")),
        _text(info.get("CLNDN")),
        _text(info.get("CLNDISDB")),
        _text(info.get("GENEINFO")),
    )


@lru_cache(maxsize=4096)
def _clinvar(
    clnsig: str, revstat: str | None, names: str | None, ids: str | None, genes: str | None
) -> ClinVarAssertion:
    """Cached: few distinct CLN* combinations recur across a file's records, and the
    assertion is immutable, so records may share one."""
    main, *also = clnsig.split("|")
    tier = significance_tier(main)
    status = _spaced(revstat)
    return ClinVarAssertion(
        significance=_spaced(main) or main,
        tier=tier[0] if tier else None,
        answer_code=tier[1] if tier else None,
        also=tuple(_spaced(a) or a for a in also),
        review_status=status,
        stars=_STARS.get(status.casefold()) if status else None,
        conditions=_conditions(names, ids),
        genes=tuple(g.partition(":")[0] for g in genes.split("|") if g) if genes else (),
    )


def _spaced(text: str | None) -> str | None:
    """ClinVar writes spaces as '_' in its VCF."""
    return text.replace("_", " ") if text else None


def _conditions(names: str | None, ids: str | None) -> tuple[ClinVarCondition, ...]:
    """CLNDN and CLNDISDB are '|'-separated in step; a condition's ids are ','-separated."""
    name_list = names.split("|") if names else []
    id_list = ids.split("|") if ids else []
    return tuple(
        ClinVarCondition(
            _spaced(name) if name not in ("", ".") else None,
            _codes(id_list[i] if i < len(id_list) else ""),
        )
        for i, name in enumerate(name_list or [""] * len(id_list))
    )


def _codes(text: str) -> tuple[tuple[str, str], ...]:
    """``MONDO:MONDO:0011450,MedGen:C2676676`` → (("MONDO", "MONDO:0011450"), ...)."""
    pairs = (code.partition(":") for code in text.split(",") if code and code != ".")
    return tuple((db, value) for db, sep, value in pairs if sep and value)


def count_skips(annotations: RecordAnnotations, summary: ConversionSummary) -> None:
    """Put the record's unmatched annotations into the conversion's skip counts."""
    if annotations.unmatched:
        summary.skip(SKIP_UNMATCHED, annotations.unmatched)
