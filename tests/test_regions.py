"""Regions: samtools-style strings and BED files to 0-based half-open intervals."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from adapter.errors import RegionError
from adapter.model import GenomicRegion
from adapter.regions import MAX_END, merge_regions, parse_region, read_bed


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("chr1:100-200", GenomicRegion("chr1", 99, 200)),
        ("1:100-100", GenomicRegion("1", 99, 100)),
        ("1:100", GenomicRegion("1", 99, MAX_END)),
        ("chr1:100-", GenomicRegion("chr1", 99, MAX_END)),
        ("chrX", GenomicRegion("chrX", 0, MAX_END)),
        ("chr1:1,000-2,000", GenomicRegion("chr1", 999, 2000)),
        (" chr2:5-6 ", GenomicRegion("chr2", 4, 6)),
    ],
)
def test_regions_are_1_based_inclusive_in_0_based_half_open_out(
    text: str, region: GenomicRegion
) -> None:
    assert parse_region(text) == region


@pytest.mark.parametrize(
    "text", ["", "chr1:", "chr1:0-5", "chr1:200-100", "chr1:a-b", "chr1:1-2-3", "chr1 :5"]
)
def test_bad_region_strings_are_refused(text: str) -> None:
    with pytest.raises(RegionError):
        parse_region(text)


BED = (
    "browser position chr1:1-1000\n"
    'track name="panel"\n'
    "# exons\n"
    "chr1\t100\t200\tEXON1\n"
    "\n"
    "chr2\t0\t50\n"
    "chrX\t5\t6\tname\t0\t+\r\n"
)


def test_bed_skips_headers_and_blank_lines(tmp_path: Path) -> None:
    expected = [
        GenomicRegion("chr1", 100, 200),
        GenomicRegion("chr2", 0, 50),
        GenomicRegion("chrX", 5, 6),
    ]
    assert read_bed(_write(tmp_path / "panel.bed", BED)) == expected


def test_gzipped_bed_reads_the_same(tmp_path: Path) -> None:
    path = _write(tmp_path / "panel.bed.gz", BED, compress=True)
    assert len(read_bed(path)) == 3


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("chr1\t100", "chrom, start and end"),
        ("chr1 100 200", "chrom, start and end"),
        ("chr1\tten\t200", "integers"),
        ("chr1\t-5\t200", "integers"),
        ("chr1\t200\t200", "start must be < end"),
        ("chr1\t300\t200", "start must be < end"),
    ],
)
def test_bad_bed_lines_are_named_by_file_and_line(tmp_path: Path, line: str, needle: str) -> None:
    path = _write(tmp_path / "bad.bed", f"# header\nchr1\t1\t2\n{line}\n")
    with pytest.raises(RegionError, match=needle) as caught:
        read_bed(path)
    assert caught.value.line == 3
    assert str(caught.value).startswith(f"{path}:3")


def test_missing_bed_file_is_a_region_error(tmp_path: Path) -> None:
    with pytest.raises(RegionError, match="cannot read"):
        read_bed(tmp_path / "nope.bed")


def test_merge_joins_overlapping_and_touching_intervals_per_contig() -> None:
    merged = merge_regions(
        [
            GenomicRegion("chr2", 10, 20),
            GenomicRegion("chr1", 50, 60),
            GenomicRegion("chr1", 0, 10),
            GenomicRegion("chr1", 10, 15),
            GenomicRegion("chr1", 5, 8),
        ]
    )
    assert merged == [
        GenomicRegion("chr1", 0, 15),
        GenomicRegion("chr1", 50, 60),
        GenomicRegion("chr2", 10, 20),
    ]


def _write(path: Path, text: str, *, compress: bool = False) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path
