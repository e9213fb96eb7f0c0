"""Genomic regions from the command line (samtools-style) and from BED files.

Users write regions 1-based and inclusive (``chr1:100-200``); BED and :class:`GenomicRegion`
are 0-based and half-open, so ``chr1:100-200`` becomes ``GenomicRegion("chr1", 99, 200)``.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from .errors import RegionError
from .model import GenomicRegion

__all__ = ["MAX_END", "merge_regions", "parse_region", "read_bed"]

#: end of a region open to the end of its chromosome (``chrX``, ``chr1:100-``)
MAX_END = 2**31 - 1

_REGION = re.compile(r"(?P<chrom>[^:\s]+)(?::(?P<start>[\d,]+)(?:-(?P<end>[\d,]*))?)?")
_BED_SKIP = ("#", "track", "browser")


def parse_region(text: str) -> GenomicRegion:
    """``chr1:100-200``, ``chr1:100-`` or ``chr1:100`` (100 to the chromosome's end), ``chrX``.

    ``chr:pos`` runs to the chromosome's end, as in samtools; write ``chr1:100-100`` for
    one position.
    """
    match = _REGION.fullmatch(text.strip())
    if match is None:
        raise RegionError(f"not a region: {text!r}; write chr1:100-200, chr1:100 or chrX")
    chrom, start_text, end_text = match.group("chrom", "start", "end")
    start = _position(start_text, text) if start_text else 1
    end = _position(end_text, text) if end_text else MAX_END
    if start > end:
        raise RegionError(f"region {text!r} ends before it starts")
    return GenomicRegion(chrom, start - 1, end)


def _position(digits: str, text: str) -> int:
    value = int(digits.replace(",", "") or "0")
    if not 1 <= value <= MAX_END:
        raise RegionError(f"region {text!r}: positions are 1-based, from 1 to {MAX_END}")
    return value


def read_bed(path: Path) -> list[GenomicRegion]:
    """The intervals of a plain or gzipped BED file, in file order.

    Header lines (``track``, ``browser``, ``#``) and blank lines are skipped; any other line
    needs tab-separated chrom, start and end with 0 <= start < end.
    """
    try:
        with _open_text(path) as lines:
            return [
                _bed_interval(line, path, number)
                for number, line in enumerate(lines, start=1)
                if line.strip() and not line.startswith(_BED_SKIP)
            ]
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise RegionError(f"cannot read the BED file: {exc}", source=str(path)) from exc


def _open_text(path: Path) -> TextIO:
    with path.open("rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _bed_interval(line: str, path: Path, number: int) -> GenomicRegion:
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) < 3:
        raise RegionError(
            "a BED line needs tab-separated chrom, start and end", source=str(path), line=number
        )
    chrom, start_text, end_text = fields[0], fields[1].strip(), fields[2].strip()
    if not (start_text.isdigit() and end_text.isdigit()) or not chrom:
        raise RegionError(
            f"BED start and end must be integers >= 0, got {start_text!r}, {end_text!r}",
            source=str(path),
            line=number,
        )
    start, end = int(start_text), int(end_text)
    if start >= end:
        raise RegionError(
            f"BED interval {chrom}:{start}-{end} is empty or reversed (start must be < end)",
            source=str(path),
            line=number,
        )
    return GenomicRegion(chrom, start, end)


def merge_regions(regions: Iterable[GenomicRegion]) -> list[GenomicRegion]:
    """Sorted per contig, with overlapping and touching intervals joined, so none repeats."""
    merged: list[GenomicRegion] = []
    for region in sorted(regions, key=lambda r: (r.chrom, r.start, r.end)):
        last = merged[-1] if merged else None
        if last is not None and last.chrom == region.chrom and region.start <= last.end:
            merged[-1] = GenomicRegion(last.chrom, last.start, max(last.end, region.end))
        else:
            merged.append(region)
    return merged
