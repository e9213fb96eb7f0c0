"""Chromosome names, accessions and the genome build told from a VCF header."""

from __future__ import annotations

import pytest

from adapter.assembly import (
    accession,
    check_build,
    chromosome_length,
    detect_build,
    looks_like_chromosome,
    mito_is_rcrs,
    normalize_chromosome,
    parse_build,
)
from adapter.errors import GenomeBuildError, UnknownContigError
from adapter.model import GenomeBuild

GRCH37, GRCH38 = GenomeBuild.GRCH37, GenomeBuild.GRCH38
LENGTHS_38 = {"chr1": 248956422, "chr2": 242193529, "chrX": 156040895, "chrM": 16569}
LENGTHS_37 = {"1": 249250621, "2": 243199373, "X": 155270560, "MT": 16569}


@pytest.mark.parametrize(
    ("name", "chromosome"),
    [
        ("chr1", "1"),
        ("1", "1"),
        ("chr22", "22"),
        ("chrX", "X"),
        ("Y", "Y"),
        ("chrM", "M"),
        ("MT", "M"),
        ("chrMT", "M"),
        ("M", "M"),
        ("CHR7", "7"),
        ("chrx", "X"),
    ],
)
def test_main_chromosomes_normalise_with_or_without_chr(name: str, chromosome: str) -> None:
    assert normalize_chromosome(name) == chromosome


@pytest.mark.parametrize(
    "name",
    [
        "chr23",
        "chr0",
        "chr01",
        "chrUn_KI270742v1",
        "chr1_KI270706v1_random",
        "chr6_GL000250v2_alt",
        "GL000192.1",
        "hs37d5",
        "chrEBV",
        "HLA-A*01:01:01:01",
        "",
    ],
)
def test_other_contigs_have_no_chromosome(name: str) -> None:
    assert normalize_chromosome(name) is None


def test_chromosome_shaped_names_are_told_from_unplaced_contigs() -> None:
    assert looks_like_chromosome("chr23")
    assert looks_like_chromosome("0")
    assert not looks_like_chromosome("chrUn_KI270742v1")
    assert not looks_like_chromosome("GL000192.1")


@pytest.mark.parametrize(
    ("build", "name", "expected"),
    [
        (GRCH38, "chr1", "NC_000001.11"),
        (GRCH37, "1", "NC_000001.10"),
        (GRCH38, "chrX", "NC_000023.11"),
        (GRCH37, "X", "NC_000023.10"),
        (GRCH38, "Y", "NC_000024.10"),
        (GRCH38, "chrM", "NC_012920.1"),
        (GRCH37, "MT", "NC_012920.1"),
    ],
)
def test_accessions_per_build(build: GenomeBuild, name: str, expected: str) -> None:
    assert accession(build, name) == expected


@pytest.mark.parametrize("name", ["chrUn_KI270742v1", "hs37d5", "chr23", "chrEBV"])
def test_contigs_without_accession_raise_naming_contig_and_build(name: str) -> None:
    with pytest.raises(UnknownContigError) as caught:
        accession(GRCH38, name)
    assert name in str(caught.value)
    assert "GRCh38" in str(caught.value)
    assert caught.value.field == "CHROM"


def test_chromosome_lengths() -> None:
    assert chromosome_length(GRCH38, "chr1") == 248956422
    assert chromosome_length(GRCH37, "1") == 249250621
    assert chromosome_length(GRCH37, "MT") == 16569


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("GRCh38", GRCH38),
        ("hg38", GRCH38),
        ("b38", GRCH38),
        ("GRCh38.p14", GRCH38),
        ("GRCh37", GRCH37),
        ("hg19", GRCH37),
        ("b37", GRCH37),
        ("hs37d5", GRCH37),
    ],
)
def test_user_build_names(name: str, build: GenomeBuild) -> None:
    assert parse_build(name) == build


@pytest.mark.parametrize("name", ["hg18", "T2T-CHM13", "hg19tohg38", ""])
def test_unknown_or_ambiguous_build_names_are_refused(name: str) -> None:
    with pytest.raises(GenomeBuildError, match="GRCh38"):
        parse_build(name)


@pytest.mark.parametrize(
    ("reference", "build"),
    [
        ("file:///refs/GRCh38/Homo_sapiens_assembly38.fasta", GRCH38),
        ("hg38.fa", GRCH38),
        ("/data/hs38DH.fa", GRCH38),
        ("GCA_000001405.15_GRCh38_no_alt_analysis_set.fna", GRCH38),
        ("file:///refs/human_g1k_v37.fasta", GRCH37),
        ("hs37d5.fa.gz", GRCH37),
        ("ucsc.hg19.fasta", GRCH37),
        ("Homo_sapiens_assembly19.fasta", GRCH37),
        ("GRCh37", GRCH37),
        ("/refs/mystery.fa", None),
        (None, None),
    ],
)
def test_build_from_the_reference_line(reference: str | None, build: GenomeBuild | None) -> None:
    assert detect_build(reference, {}) == build


def test_contig_lengths_win_over_the_reference_name() -> None:
    assert detect_build("ucsc.hg38.fa", LENGTHS_37) == GRCH37
    assert detect_build(None, LENGTHS_38) == GRCH38


def test_lengths_of_another_assembly_override_any_name() -> None:
    t2t = {"chr1": 248387328, "chr2": 242696752}
    assert detect_build("GRCh38", t2t) is None


def test_unplaced_or_unsized_contigs_leave_the_name_to_decide() -> None:
    contigs: dict[str, int | None] = {"chrUn_KI270742v1": 186739, "chr1": None}
    assert detect_build("GRCh38.fa", contigs) == GRCH38


def test_lengths_mixing_both_builds_are_refused() -> None:
    with pytest.raises(GenomeBuildError, match="mix"):
        detect_build(None, {"chr1": 248956422, "chr2": 243199373})


def test_header_contradicting_the_given_build_names_contig_and_lengths() -> None:
    with pytest.raises(GenomeBuildError) as caught:
        check_build(GRCH37, LENGTHS_38)
    message = str(caught.value)
    assert "chr1" in message
    assert "248,956,422" in message
    assert "249,250,621" in message


def test_matching_or_unsized_header_passes_the_check() -> None:
    check_build(GRCH38, LENGTHS_38)
    check_build(GRCH37, {"1": None, "GL000192.1": 547496})


def test_only_the_rcrs_is_accepted_as_mitochondrion() -> None:
    assert mito_is_rcrs(16569)
    assert mito_is_rcrs(None)
    assert not mito_is_rcrs(16571)  # hg19's chrM, NC_001807.4
    check_build(GRCH37, {"chrM": 16571, "chr1": 249250621})  # decided per record, not here
