"""Genome builds and their chromosomes, from ``mappings/chromosomes.csv``.

Only the assembled chromosomes 1-22, X, Y and the rCRS mitochondrion have RefSeq accessions
here. Contig names are matched with or without the ``chr`` prefix (``chr1``/``1``,
``chrM``/``MT``); everything else (unplaced, unlocalised, alt, decoy, EBV, HLA) has none.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from functools import cache

from .errors import GenomeBuildError, UnknownContigError
from .model import GenomeBuild
from .resources import data_dir

__all__ = [
    "MITO_LENGTH",
    "accession",
    "check_build",
    "chromosome_length",
    "detect_build",
    "looks_like_chromosome",
    "mito_is_rcrs",
    "normalize_chromosome",
    "parse_build",
]

#: length of the rCRS (NC_012920.1), the only mitochondrion accepted on either build
MITO_LENGTH = 16569

_CHROMOSOME = re.compile(r"(?:chr)?(\d{1,2}|X|Y|M|MT)", re.IGNORECASE)

#: spellings of each build in ##reference lines, FASTA names and user options
_BUILD_NAMES: dict[GenomeBuild, re.Pattern[str]] = {
    GenomeBuild.GRCH38: re.compile(
        r"grch38|hg38|hs38|\bb38\b|assembly38|gca_000001405\.15|gcf_000001405\.(?:2[6-9]|3\d|40)",
        re.IGNORECASE,
    ),
    GenomeBuild.GRCH37: re.compile(
        r"grch37|hg19|hs37|\bb37\b|g1k_v37|assembly19|gcf_000001405\.(?:1[3-9]|2[0-5])",
        re.IGNORECASE,
    ),
}


@cache
def _table() -> dict[tuple[GenomeBuild, str], tuple[str, int]]:
    """(build, chromosome) → (accession, length), read once."""
    path = data_dir("mappings") / "chromosomes.csv"
    with path.open(newline="") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return {
            (GenomeBuild(r["build"]), r["chromosome"]): (r["accession"], int(r["length"]))
            for r in rows
        }


def normalize_chromosome(name: str) -> str | None:
    """``chr1``/``1`` → ``1``, ``chrX`` → ``X``, ``chrM``/``MT`` → ``M``; None if not 1-22/X/Y/M."""
    match = _CHROMOSOME.fullmatch(name)
    if match is None:
        return None
    core = match.group(1).upper()
    if core in ("M", "MT"):
        return "M"
    if core.isdigit() and (core.startswith("0") or int(core) > 22):
        return None
    return core


def looks_like_chromosome(name: str) -> bool:
    """True for names shaped like a main chromosome (``chr23``, ``0``), even if none exists.

    Records on such a name are an error rather than an unplaced contig to skip.
    """
    return _CHROMOSOME.fullmatch(name) is not None


def accession(build: GenomeBuild, chromosome: str) -> str:
    """The RefSeq accession (``NC_000001.11``) of a chromosome or contig name on ``build``."""
    return _entry(build, chromosome)[0]


def chromosome_length(build: GenomeBuild, chromosome: str) -> int:
    """The length in bases of a chromosome or contig name on ``build``."""
    return _entry(build, chromosome)[1]


def _entry(build: GenomeBuild, name: str) -> tuple[str, int]:
    chromosome = normalize_chromosome(name)
    entry = _table().get((build, chromosome)) if chromosome else None
    if entry is None:
        raise UnknownContigError(
            f"contig {name!r} has no RefSeq accession on {build}: only chromosomes 1-22, X, Y "
            "and M (rCRS) can be stated; unplaced, alt and decoy contigs cannot",
            field="CHROM",
        )
    return entry


def parse_build(name: str) -> GenomeBuild:
    """A build from a user's spelling: GRCh38/hg38/b38 or GRCh37/hg19/b37/hs37d5."""
    found = _builds_named(name)
    if len(found) != 1:
        raise GenomeBuildError(
            f"unknown genome build {name!r}; use GRCh38 (hg38) or GRCh37 (hg19, b37)",
            field="build",
        )
    return found.pop()


def _builds_named(text: str) -> set[GenomeBuild]:
    return {build for build, pattern in _BUILD_NAMES.items() if pattern.search(text)}


def detect_build(
    reference_line: str | None, contig_lengths: Mapping[str, int | None]
) -> GenomeBuild | None:
    """The build the header's contig lengths show, else the one its ##reference names.

    Lengths are exact where names are guesses (a path may say ``hg19`` for a b37 FASTA), so
    they win when they are conclusive; lengths matching neither build give None.
    """
    by_length = _build_from_lengths(contig_lengths)
    if by_length is not None:
        return by_length
    if _main_lengths(contig_lengths):
        return None  # lengths of another assembly (e.g. T2T-CHM13): no name can override them
    names = _builds_named(reference_line) if reference_line else set()
    return names.pop() if len(names) == 1 else None


def _main_lengths(contig_lengths: Mapping[str, int | None]) -> dict[str, tuple[str, int]]:
    """Nuclear chromosomes with a stated length: chromosome → (name in file, length)."""
    found = {}
    for name, length in contig_lengths.items():
        chromosome = normalize_chromosome(name)
        if chromosome is not None and chromosome != "M" and length is not None:
            found[chromosome] = (name, length)
    return found


def _build_from_lengths(contig_lengths: Mapping[str, int | None]) -> GenomeBuild | None:
    """The build whose chromosome lengths the header's match; :func:`check_build` vets the rest."""
    table = _table()
    seen = {
        build
        for chromosome, (_, length) in _main_lengths(contig_lengths).items()
        for build in GenomeBuild
        if table[(build, chromosome)][1] == length
    }
    if len(seen) > 1:
        raise GenomeBuildError(
            "the header's contig lengths mix GRCh37 and GRCh38 chromosomes; "
            "the file cannot be placed on one build",
            field="contig",
        )
    return seen.pop() if seen else None


def check_build(build: GenomeBuild, contig_lengths: Mapping[str, int | None]) -> None:
    """Raise GenomeBuildError if a header contig length contradicts ``build``.

    The mitochondrion is left out: its accession is decided per record (hg19's chrM is not
    the rCRS, see :func:`mito_is_rcrs`).
    """
    table = _table()
    for chromosome, (name, length) in _main_lengths(contig_lengths).items():
        expected = table[(build, chromosome)][1]
        if length != expected:
            raise GenomeBuildError(
                f"the header says contig {name} is {length:,} bases long, but on {build} "
                f"chromosome {chromosome} is {expected:,}; check --build or the file's reference",
                field="contig",
            )


def mito_is_rcrs(length: int | None) -> bool:
    """True unless a header length shows a mitochondrion other than the rCRS (hg19: 16571)."""
    return length is None or length == MITO_LENGTH
