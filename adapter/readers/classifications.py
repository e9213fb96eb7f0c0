"""A lab's own variant classifications: the class its scientists gave each variant they
reviewed, which wins over ClinVar's for that variant (the report records which decided).

One row (TSV) or object (JSON) per variant and condition, keyed by the variant as the lab's VCF
writes it: genome build, chromosome (``chr7`` and ``7`` alike), 1-based position, REF and ALT,
left-aligned as in the VCF. A variant may repeat only to name another condition; its other
fields must then be the same (one classification per variant). Fields:

``build``            GRCh38 or GRCh37 (hg38, hg19, b37 alike), one per file (JSON: at the top)
``chromosome``       1-22, X, Y or M, with or without ``chr``
``position``         the VCF's POS
``ref``, ``alt``     the VCF's REF and ALT (A, C, G, T, N; upper or lower case)
``classification``   an ACMG/AMP tier: Pathogenic, Likely pathogenic, Uncertain significance,
                     Likely benign or Benign
``condition``        the condition the variant is classified for
``condition_codes``  optional ids of the condition, ``DATABASE:ID`` as ClinVar's CLNDISDB
                     names them (``MONDO:0011450``, ``OMIM:604370``, ``MedGen:C2676676``)
``evidence``         what the class rests on, e.g. the ACMG/AMP criteria ``PVS1, PM2, PP3``
``classified_date``  when it was classified, ``YYYY-MM-DD``
``classifier``       optional: who classified or signed it out
``comment``          optional
``gene``, ``hgvs_c`` optional, for people reading the file (never used to match)

TSV: ``#`` lines are comments, except ``# lab:``, ``# version:`` and ``# format_version:``
(``1``); the first other line is a header row naming the columns, in any order. Without a
``lab`` the file's name is cited, without a ``version`` the latest classification date::

    # lab: Example Genomics Laboratory
    # version: 2025-06
    build   chromosome  position  ref  alt  classification  condition  condition_codes  ...
    GRCh38  chr17       43124027  ACT  A    Pathogenic      Breast-... MONDO:0011450, OMIM:604370

JSON (a file named ``*.json``, or starting with ``{``): one object with ``format_version``
(``"1"``), ``build`` and ``classifications``, a list of objects with the fields above (the
position a number, the condition codes a list), and optionally ``lab``, ``version`` and
``description`` (free text, not read)::

    {"format_version": "1", "lab": "Example Genomics Laboratory", "version": "2025-06",
     "build": "GRCh38", "classifications": [{"chromosome": "chr17", "position": 43124027,
     "ref": "ACT", "alt": "A", "classification": "Pathogenic", "condition": "Breast-...",
     "condition_codes": ["MONDO:0011450", "OMIM:604370"], "evidence": "PVS1, PS4, PM2",
     "classified_date": "2024-05-14"}]}

``examples/lab-classifications.tsv`` and ``.json`` hold the same example in both forms. A bad
row is an :class:`InputError` naming the file and the TSV line or JSON pointer and the field.
The tier's LOINC answer comes from ``mappings/clinical_significance.csv``
(:func:`~adapter.readers.annotations.significance_tier`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Final, TypeVar

from ..assembly import normalize_chromosome, parse_build
from ..errors import GenomeBuildError, InputError
from ..model import ClinicalSignificance, ClinVarCondition, GenomeBuild, LabClassification
from .annotations import significance_tier

__all__ = [
    "FORMAT_VERSION",
    "OPTIONAL",
    "REQUIRED",
    "ClassificationTable",
    "VariantKey",
    "read_classifications",
]

FORMAT_VERSION: Final = "1"
#: fields every classification gives (a TSV also needs the ``build`` column)
REQUIRED: Final = (
    "chromosome",
    "position",
    "ref",
    "alt",
    "classification",
    "condition",
    "evidence",
    "classified_date",
)
OPTIONAL: Final = ("condition_codes", "classifier", "comment", "gene", "hgvs_c")
_TSV_REQUIRED: Final = ("build", *REQUIRED)
_TSV_COLUMNS: Final = (*_TSV_REQUIRED, *OPTIONAL)
#: top-level JSON keys; ``description`` is free text for people, not read
_JSON_KEYS: Final = frozenset(
    {"format_version", "lab", "version", "build", "description", "classifications"}
)
_META: Final = frozenset({"lab", "version", "format_version"})
#: (column, LabClassification attribute) that every row of one variant must repeat alike
_SAME: Final = (
    ("evidence", "evidence"),
    ("classified_date", "classified"),
    ("classifier", "classifier"),
    ("comment", "comment"),
    ("gene", "gene"),
    ("hgvs_c", "hgvs_c"),
)
_TIERS: Final = {tier.casefold(): tier for tier in ClinicalSignificance}
_ALLELE: Final = re.compile(r"[ACGTN]+")
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CODE: Final = re.compile(r"([A-Za-z][A-Za-z0-9_]*):(\S+)")
#: databases whose ids ClinVar keeps as whole CURIEs, under its own database name
_CURIES: Final = {"MONDO": "MONDO", "HP": "Human_Phenotype_Ontology"}

#: (normalised chromosome, POS, REF, ALT), alleles upper case
VariantKey = tuple[str, int, str, str]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ClassificationTable:
    """A lab's classifications by variant, and what the report calls their source."""

    lab: str
    version: str | None
    build: GenomeBuild
    source: str  # the file, for messages
    as_of: date  # the latest classification date, dating the file when it has no version
    classifications: Mapping[VariantKey, LabClassification]

    def label(self) -> str:
        """Lab and version (else the latest classification date), as the report cites it."""
        when = self.version or f"(classifications as of {self.as_of.isoformat()})"
        return f"{self.lab} {when}"

    def find(self, chromosome: str, pos: int, ref: str, alt: str) -> LabClassification | None:
        """The lab's classification of a VCF allele (chromosome as the VCF writes it)."""
        name = _chromosome_name(chromosome)
        if name is None:
            return None
        return self.classifications.get((name, pos, ref.upper(), alt.upper()))

    def check_build(self, build: GenomeBuild) -> None:
        """Positions on another build name other bases: refuse them rather than mismatch."""
        if build is not self.build:
            raise GenomeBuildError(
                f"the lab's classifications are on {self.build} but the VCF is on {build}; "
                f"use the lab's {build} classification file",
                source=self.source,
                field="build",
            )


def read_classifications(path: Path) -> ClassificationTable:
    """The classification file at ``path`` (TSV or JSON), every row checked."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(source, f"cannot read the file: {exc}") from exc
    collector = _Collector()
    build: GenomeBuild | None
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
        meta, build = _read_json(source, text, collector)
    else:
        meta, build = _read_tsv(source, text.splitlines(), collector)
    if build is None or not collector.found:
        raise _bad(source, "no classifications: give at least one row after the header")
    found = collector.found
    return ClassificationTable(
        lab=meta.get("lab") or path.name,
        version=meta.get("version") or None,
        build=build,
        source=source,
        as_of=max(c.classified for c in found.values()),
        classifications=found,
    )


# ---- one row, whatever the format ----------------------------------------------------------


class _Row:
    """One classification's fields as text, and where it was written (for messages)."""

    __slots__ = ("fields", "is_json", "number", "source")

    def __init__(self, source: str, fields: Mapping[str, str], number: int, is_json: bool):
        self.source = source
        self.fields = fields
        self.number = number  # the TSV line, or the index in the JSON list
        self.is_json = is_json

    def place(self, number: int) -> str:
        """Where row ``number`` of this file is, for a message naming an earlier row."""
        return f"/classifications/{number}" if self.is_json else f"line {number}"

    def error(self, column: str, message: str, kind: type[InputError] = InputError) -> InputError:
        """An error at this row's ``column``: a TSV line and column, or a JSON pointer."""
        if self.is_json:
            where = f"/classifications/{self.number}/{column}"
            return kind(f"classification file: {message}", source=self.source, field=where)
        return kind(
            f"classification file: {message}", source=self.source, line=self.number, field=column
        )

    def text(self, column: str) -> str | None:
        """An optional field; None when empty."""
        return self.fields.get(column) or None

    def parse(self, column: str, parse: Callable[[str], _T]) -> _T:
        """A required field through ``parse``, whose ValueError names what is wrong."""
        text = self.fields.get(column)
        if not text:
            raise self.error(column, f"the {column} is missing or empty")
        try:
            return parse(text)
        except ValueError as exc:
            raise self.error(column, str(exc)) from None

    def build(self) -> GenomeBuild:
        """The row's build; an unknown one is a GenomeBuildError at this row."""
        text = self.parse("build", str)
        try:
            return parse_build(text)
        except GenomeBuildError as exc:
            raise self.error("build", exc.message, GenomeBuildError) from None

    def classification(self) -> LabClassification:
        """The row as the model holds it."""
        tier, answer_code = self.parse("classification", _tier)
        ref, alt = self.parse("ref", _allele), self.parse("alt", _allele)
        if ref == alt:
            raise self.error("alt", f"the ALT {alt} is the REF: give the allele the VCF calls")
        codes = self.parse("condition_codes", _codes) if self.text("condition_codes") else ()
        return LabClassification(
            chromosome=self.parse("chromosome", _chromosome),
            pos=self.parse("position", _position),
            ref=ref,
            alt=alt,
            tier=tier,
            answer_code=answer_code,
            conditions=(ClinVarCondition(self.parse("condition", str), codes),),
            evidence=self.parse("evidence", str),
            classified=self.parse("classified_date", _date),
            classifier=self.text("classifier"),
            comment=self.text("comment"),
            gene=self.text("gene"),
            hgvs_c=self.text("hgvs_c"),
        )


class _Collector:
    """Classifications by variant; a repeated variant may only add a condition."""

    def __init__(self) -> None:
        self.found: dict[VariantKey, LabClassification] = {}
        self._first: dict[VariantKey, int] = {}  # the row that first classified each variant

    def add(self, row: _Row) -> None:
        """Keep the row's classification, merged with an earlier one of its variant."""
        new = row.classification()
        key = (new.chromosome, new.pos, new.ref, new.alt)
        old = self.found.get(key)
        if old is None:
            self.found[key] = new
            self._first[key] = row.number
            return
        earlier = row.place(self._first[key])
        variant = f"{new.chromosome}:{new.pos} {new.ref}>{new.alt}"
        if new.tier is not old.tier:
            raise row.error(
                "classification",
                f"{variant} is {new.tier} here but {old.tier} at {earlier}: "
                "keep one classification per variant",
            )
        for column, attribute in _SAME:
            if getattr(new, attribute) != getattr(old, attribute):
                raise row.error(
                    column,
                    f"{variant} repeats with another {column} than at {earlier}: rows of one "
                    "variant may differ only in the condition",
                )
        if new.conditions[0] not in old.conditions:
            self.found[key] = replace(old, conditions=old.conditions + new.conditions)


# ---- the two formats -----------------------------------------------------------------------


def _read_tsv(
    source: str, lines: Iterable[str], collector: _Collector
) -> tuple[dict[str, str], GenomeBuild | None]:
    """Comments' metadata and the build, the rows put into ``collector``."""
    meta: dict[str, str] = {}
    columns: tuple[str, ...] | None = None
    build: GenomeBuild | None = None
    build_text = None
    for number, line in enumerate(lines, 1):
        if line.startswith("#"):
            key, sep, value = line.lstrip("# ").partition(":")
            if sep and key.strip() in _META:
                meta[key.strip()] = value.strip()
                _check_version(source, meta, number)
            continue
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]
        if columns is None:
            columns = _header(source, number, fields)
            continue
        if len(fields) != len(columns):
            raise _bad(source, f"{len(fields)} columns, the header has {len(columns)}", number)
        row = _Row(source, dict(zip(columns, fields, strict=True)), number, is_json=False)
        if row.fields["build"] != build_text:
            build = _same_build(row, build)
            build_text = row.fields["build"]
        collector.add(row)
    if columns is None:
        raise _bad(source, f"no header row; name the columns: {' '.join(_TSV_COLUMNS)}")
    return meta, build


def _header(source: str, number: int, fields: list[str]) -> tuple[str, ...]:
    """The header row's columns, each known and named once, the required ones present."""
    unknown = [f for f in fields if f not in _TSV_COLUMNS]
    missing = [c for c in _TSV_REQUIRED if c not in fields]
    twice = sorted({f for f in fields if fields.count(f) > 1})
    problems = [
        *(f"unknown column {c!r}" for c in unknown),
        *(f"missing required column {c!r}" for c in missing),
        *(f"column {c!r} named twice" for c in twice),
    ]
    if problems:
        raise InputError(
            f"classification file: {'; '.join(problems)}; the header row names the columns "
            f"{', '.join(_TSV_REQUIRED)} and optionally {', '.join(OPTIONAL)}",
            source=source,
            line=number,
            field=(unknown + missing + twice)[0],
        )
    return tuple(fields)


def _same_build(row: _Row, build: GenomeBuild | None) -> GenomeBuild:
    """The row's build, which must be the one of the rows before it."""
    this = row.build()
    if build is not None and this is not build:
        raise row.error(
            "build", f"{this} after rows on {build}: a file holds one build", GenomeBuildError
        )
    return this


def _read_json(source: str, text: str, collector: _Collector) -> tuple[dict[str, str], GenomeBuild]:
    """The document's metadata and build, its classifications put into ``collector``."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(source, f"not valid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    if not isinstance(document, dict):
        raise _bad(source, "the JSON must be one object with build and classifications")
    unknown = sorted(set(document) - _JSON_KEYS)
    if unknown:
        allowed = ", ".join(sorted(_JSON_KEYS))
        message = f"unknown key {unknown[0]!r}; the keys are {allowed}"
        raise _bad(source, message, field=f"/{unknown[0]}")
    meta = {key: _json_text(source, document, key) for key in _META if key in document}
    if "format_version" not in meta:
        message = f"format_version missing: give {FORMAT_VERSION!r}"
        raise _bad(source, message, field="/format_version")
    _check_version(source, meta, None)
    try:
        build = parse_build(_json_text(source, document, "build"))
    except GenomeBuildError as exc:
        message = f"classification file: {exc.message}"
        raise GenomeBuildError(message, source=source, field="/build") from None
    items = document.get("classifications")
    if not isinstance(items, list):
        raise _bad(source, "classifications must be a list", field="/classifications")
    for index, item in enumerate(items):
        collector.add(_Row(source, _json_fields(source, index, item), index, is_json=True))
    return meta, build


def _json_text(source: str, document: Mapping[str, object], key: str) -> str:
    """A top-level text value (a version may be a number)."""
    value = document.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _bad(source, f"{key} must be text", field=f"/{key}")
    return str(value).strip()


def _json_fields(source: str, index: int, item: object) -> dict[str, str]:
    """A classification object as the text a TSV row would hold."""
    where = f"/classifications/{index}"
    if not isinstance(item, dict):
        raise _bad(source, "each classification must be an object", field=where)
    fields: dict[str, str] = {}
    for key, value in item.items():
        if key not in REQUIRED and key not in OPTIONAL:
            allowed = ", ".join((*REQUIRED, *OPTIONAL))
            raise _bad(source, f"unknown key {key!r}; the keys are {allowed}", field=where)
        fields[key] = _json_value(source, f"{where}/{key}", key, value)
    return fields


def _json_value(source: str, where: str, key: str, value: object) -> str:
    """One value as text: the position a whole number, the condition codes a list."""
    if value is None:
        return ""
    if key == "position":
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise _bad(source, f"bad position {value!r}: give the VCF's POS as a number", field=where)
    if key == "condition_codes":
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        raise _bad(source, 'condition_codes must be a list, e.g. ["OMIM:604370"]', field=where)
    if isinstance(value, str):
        return value.strip()
    raise _bad(source, f"{key} must be text", field=where)


def _check_version(source: str, meta: Mapping[str, str], line: int | None) -> None:
    """A later format may mean other columns: refuse it rather than misread it."""
    version = meta.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise _bad(
            source,
            f"format_version {version!r} is not one this adapter reads ({FORMAT_VERSION!r})",
            line,
            "format_version" if line else "/format_version",
        )


# ---- field parsers: a ValueError says what is wrong and how to write it --------------------


@lru_cache(maxsize=1024)
def _chromosome_name(name: str) -> str | None:
    """Cached: a VCF names few chromosomes, and every allele is looked up."""
    return normalize_chromosome(name)


def _chromosome(text: str) -> str:
    name = _chromosome_name(text)
    if name is None:
        raise ValueError(f"chromosome {text!r} is not 1-22, X, Y or M (chr prefix optional)")
    return name


def _position(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ValueError(f"bad position {text!r}: give the VCF's 1-based POS, a whole number")
    return int(text)


@lru_cache(maxsize=4096)
def _allele(text: str) -> str:
    """Cached: most alleles are one of a few bases."""
    allele = text.upper()
    if _ALLELE.fullmatch(allele) is None:
        raise ValueError(f"{text!r} is no allele: write the bases (A, C, G, T, N) as the VCF does")
    return allele


@lru_cache(maxsize=256)
def _tier(text: str) -> tuple[ClinicalSignificance, str]:
    """The ACMG/AMP tier (any case, '_' for spaces) and its LOINC answer code; cached, as
    every row spells one of five."""
    tier = _TIERS.get(" ".join(text.replace("_", " ").split()).casefold())
    found = significance_tier(tier.replace(" ", "_")) if tier else None
    if found is None:
        tiers = ", ".join(ClinicalSignificance)
        raise ValueError(f"unknown classification {text!r}: use an ACMG/AMP tier ({tiers})")
    return found


@lru_cache(maxsize=4096)
def _date(text: str) -> date:
    """Cached: a lab's file repeats a few hundred dates over many rows."""
    if _DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"bad date {text!r}: give an ISO date, YYYY-MM-DD")


@lru_cache(maxsize=4096)
def _codes(text: str) -> tuple[tuple[str, str], ...]:
    """``MONDO:0011450, OMIM:604370`` as ClinVar's CLNDISDB holds them:
    (("MONDO", "MONDO:0011450"), ("OMIM", "604370"))."""
    pairs = []
    for code in filter(None, (c.strip() for c in text.split(","))):
        match = _CODE.fullmatch(code)
        if match is None:
            raise ValueError(f"condition code {code!r} is not DATABASE:ID (e.g. OMIM:604370)")
        database, value = match.groups()
        if database in _CURIES and not value.startswith(f"{database}:"):
            database, value = _CURIES[database], f"{database}:{value}"
        pairs.append((database, value))
    return tuple(pairs)


def _bad(
    source: str, message: str, line: int | None = None, field: str | None = None
) -> InputError:
    return InputError(f"classification file: {message}", source=source, line=line, field=field)
