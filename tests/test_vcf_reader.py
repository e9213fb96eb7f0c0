"""The typed VCF reader: records to VariantCall, skips counted, bad input caught, never silent."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cyvcf2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter._native import lines as scan
from adapter.errors import (
    GenomeBuildError,
    HeaderMismatchError,
    InputError,
    MalformedRecordError,
    NotAVcfError,
    RegionError,
    TruncatedInputError,
    UnknownContigError,
    UnknownSampleError,
)
from adapter.model import (
    ConversionSummary,
    GenomeBuild,
    GenomicRegion,
    Sex,
    StructuralVariant,
    SvType,
    VariantCall,
    Zygosity,
)
from adapter.readers.vcf import VcfReader
from adapter.regions import parse_region

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "vcf"
EXAMPLE = ROOT / "examples" / "NA12878-panel.vcf.gz"
HET, HOM, HEMI = Zygosity.HETEROZYGOUS, Zygosity.HOMOZYGOUS, Zygosity.HEMIZYGOUS
HOMOPLASMIC, HETEROPLASMIC = Zygosity.HOMOPLASMIC, Zygosity.HETEROPLASMIC


def read(path: Path | str, **options: Any) -> tuple[list[VariantCall], ConversionSummary]:
    summary = ConversionSummary()
    with VcfReader(DATA / path, summary=summary, **options) as reader:
        return list(reader), summary


def by_pos(calls: list[VariantCall]) -> dict[tuple[int, str], VariantCall]:
    return {(c.pos, c.alt): c for c in calls}


def header_of(name: str) -> str:
    """The header of a fixture, for files made up in a test."""
    lines = (DATA / name).read_text().splitlines(keepends=True)
    return "".join(line for line in lines if line.startswith("#"))


def snv_like(tmp_path: Path, *records: str, name: str = "t.vcf") -> Path:
    """snv.vcf's header with other records (columns separated by single spaces)."""
    path = tmp_path / name
    body = "".join("\t".join(r.split(" ")) + "\n" for r in records)
    path.write_text(header_of("snv.vcf") + body)
    return path


# ---- single-sample SNVs ----------------------------------------------------------------


def test_a_call_carries_the_record_and_the_sample() -> None:
    calls, _ = read("snv.vcf")
    assert calls[0] == VariantCall(
        chrom="chr1",
        chromosome="1",
        pos=69511,
        ref="A",
        alt="G",
        alt_index=1,
        genotype="1/1",
        zygosity=HOM,
        filters=(),
        record_id="rs2691305",
        quality=1500.77,
        allele_depth=45,
        total_depth=45,
        allele_frequency=1.0,
        phased=False,
        phase_set=None,
        structural=None,
        line=41,
    )


def test_every_record_not_converted_is_counted_by_reason() -> None:
    calls, summary = read("snv.vcf")
    assert len(calls) == 6
    assert summary.records_read == 11
    assert summary.skipped == {"reference_call": 1, "no_call": 1, "unsupported_contig": 3}


def test_line_numbers_point_at_the_record() -> None:
    lines = (DATA / "snv.vcf").read_text().splitlines()
    for call in read("snv.vcf")[0]:
        assert call.line is not None
        assert lines[call.line - 1].split("\t")[1] == str(call.pos)


def test_missing_qual_and_partial_genotype() -> None:
    calls = by_pos(read("snv.vcf")[0])
    assert calls[(166848646, "T")].quality is None
    partial = calls[(37000000, "A")]
    assert partial.genotype == "1/."
    assert partial.zygosity is None  # 1/. : heterozygous or homozygous cannot be told


def test_depth_without_dp_is_the_sum_of_ad() -> None:
    call = by_pos(read("snv.vcf")[0])[(43045712, "C")]
    assert (call.allele_depth, call.total_depth) == (29, 60)
    assert call.allele_frequency == pytest.approx(29 / 60)
    assert call.record_id == "rs80357906;rs1799966"


def test_bgzipped_input_reads_like_plain() -> None:
    assert read("snv.vcf.gz") == read("snv.vcf")


def test_iterating_twice_gives_the_same_calls() -> None:
    with VcfReader(DATA / "snv.vcf") as reader:
        assert list(reader) == list(reader)
        assert reader.sample == "NA12878"
        assert reader.build is GenomeBuild.GRCH38
        assert reader.header.source == "GATK HaplotypeCaller v4.5.0.0"
        assert reader.header.file_date == "20260115"
        assert reader.header.contigs["chr1"] == 248956422


def test_leaving_the_context_closes_an_unfinished_iteration() -> None:
    with VcfReader(DATA / "snv.vcf") as reader:
        iteration = iter(reader)
        next(iteration)
    with pytest.raises(StopIteration):
        next(iteration)


# ---- indels and multi-allelic records --------------------------------------------------


def test_indels_keep_their_anchor_base() -> None:
    calls, summary = read("indels.vcf")
    alleles = [(c.pos, c.ref, c.alt, c.zygosity) for c in calls]
    assert alleles[:3] == [
        (1000000, "A", "AT", HET),
        (2000000, "ACGT", "A", HOM),
        (3000000, "AC", "GT", HET),
    ]
    assert summary.skipped == {"spanning_deletion": 1}
    assert (300000, "C") in by_pos(calls)  # the real ALT beside "*"


@pytest.mark.parametrize(
    ("pos", "alt", "expected"),
    [
        (1000, "G", (1, "1/2", HET, 10, 0.5)),
        (1000, "T", (2, "1/2", HET, 8, 0.4)),
        (2000, "G", (2, "0/2", HET, 10, 0.5)),
        (3000, "C", (1, "0/1", HET, 9, 9 / 22)),
        (4000, "C", (2, "2/2", HOM, 30, 30 / 31)),
        (5000, "C", (1, "1/3", HET, 10, 0.37)),  # FORMAT AF, Number=A
        (5000, "T", (3, "1/3", HET, 12, 0.44)),
        (6000, "A", (1, "1/2", HET, 7, None)),  # REF depth missing, no DP: no total
    ],
)
def test_multiallelic_records_split_per_allele(
    pos: int, alt: str, expected: tuple[int, str, Zygosity, int, float | None]
) -> None:
    call = by_pos(read("multiallelic.vcf")[0])[(pos, alt)]
    alt_index, genotype, zygosity, depth, vaf = expected
    assert (call.alt_index, call.genotype, call.zygosity) == (alt_index, genotype, zygosity)
    assert call.allele_depth == depth
    assert call.allele_frequency == (pytest.approx(vaf) if vaf is not None else None)


def test_alleles_the_sample_lacks_are_not_emitted_but_counted() -> None:
    calls, summary = read("multiallelic.vcf")
    emitted = {(c.pos, c.alt) for c in calls}
    assert (2000, "A") not in emitted  # 0/2
    assert (3000, "T") not in emitted  # 0/1
    assert (4000, "A") not in emitted  # 2/2
    assert (5000, "G") not in emitted  # 1/3
    assert summary.skipped == {"allele_not_in_genotype": 4}


def test_missing_allele_depth_and_a_site_without_alt(tmp_path: Path) -> None:
    path = snv_like(
        tmp_path,
        "chr1 50 . C T 50 PASS . GT:AD:DP 0/1:5,.:10",
        "chr1 60 . A . 50 PASS . GT:AD:DP 0/0:9:9",
    )
    summary = ConversionSummary()
    (call,) = VcfReader(path, summary=summary)
    assert (call.allele_depth, call.total_depth, call.allele_frequency) == (None, 10, None)
    assert summary.skipped == {"reference_call": 1}


@pytest.mark.parametrize(
    ("number", "values", "expected"),
    [("R", "0.6,0.1,0.3", (0.1, 0.3)), ("1", "0.25", (None, None)), (".", "0.1,0.3", (0.1, 0.3))],
)
def test_format_af_of_each_number(
    tmp_path: Path, number: str, values: str, expected: tuple[float | None, float | None]
) -> None:
    header = header_of("snv.vcf").replace(
        "##FORMAT=<ID=GT,",
        f'##FORMAT=<ID=AF,Number={number},Type=Float,Description="VAF">\n##FORMAT=<ID=GT,',
    )
    path = tmp_path / "af.vcf"
    path.write_text(header + f"chr1\t50\t.\tC\tT,G\t50\tPASS\t.\tGT:AF\t1/2:{values}\n")
    assert tuple(c.allele_frequency for c in VcfReader(path)) == expected


# ---- several samples -------------------------------------------------------------------


def test_a_multi_sample_file_needs_a_sample_named() -> None:
    with pytest.raises(UnknownSampleError) as caught:
        VcfReader(DATA / "trio.vcf")
    assert caught.value.samples == ("HG002", "HG003", "HG004")
    assert "HG003" in str(caught.value)


def test_an_unknown_sample_lists_the_samples() -> None:
    with pytest.raises(UnknownSampleError, match="NOBODY") as caught:
        VcfReader(DATA / "trio.vcf", sample="NOBODY")
    assert caught.value.samples == ("HG002", "HG003", "HG004")


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("HG002", [("0/1", HET, 10), ("1/1", HOM, 25), ("1/1", HOM, 20)]),
        ("HG003", [("0/1", HET, 12), ("1", HEMI, 15)]),
        ("HG004", [("0/1", HET, 11), ("0/1", HET, 14), ("0/1", HET, 9)]),
    ],
)
def test_each_trio_member_reads_its_own_column(
    sample: str, expected: list[tuple[str, Zygosity, int]]
) -> None:
    calls, summary = read("trio.vcf", sample=sample)
    assert [(c.genotype, c.zygosity, c.allele_depth) for c in calls] == expected
    assert summary.skipped == ({"reference_call": 1} if sample == "HG003" else {})


def test_tumor_sample_takes_its_vaf_from_format_af() -> None:
    calls, summary = read("tumor_normal.vcf", sample="TUMOR")
    assert [(c.pos, c.allele_frequency, c.allele_depth) for c in calls] == [
        (55191822, 0.3, 30),
        (25245350, 0.25, 15),
    ]
    assert summary.skipped == {"filtered": 1}


def test_tumor_normal_without_a_sample_hints_at_the_tumor() -> None:
    with pytest.raises(UnknownSampleError, match="tumor sample TUMOR"):
        VcfReader(DATA / "tumor_normal.vcf")


def test_a_long_sample_list_is_shortened(tmp_path: Path) -> None:
    names = [f"S{i}" for i in range(25)]
    path = tmp_path / "many.vcf"
    path.write_text(header_of("snv.vcf").replace("\tNA12878", "\t" + "\t".join(names)))
    with pytest.raises(UnknownSampleError, match="and 5 more") as caught:
        VcfReader(path)
    assert len(caught.value.samples) == 25


def test_sites_only_vcf_is_refused() -> None:
    with pytest.raises(UnknownSampleError, match="sites-only"):
        VcfReader(DATA / "sites_only.vcf")


# ---- gVCF ------------------------------------------------------------------------------


def test_gvcf_reference_blocks_are_skipped_and_non_ref_dropped() -> None:
    calls, summary = read("gvcf.g.vcf")
    assert [(c.pos, c.alt, c.alt_index, c.allele_depth) for c in calls] == [
        (10101, "A", 1, 14),
        (10300, "CT", 1, 10),
        (10300, "G", 2, 9),
        (10501, "C", 1, 22),
    ]
    assert summary.skipped == {"gvcf_reference_block": 4}
    assert "<NON_REF>" not in {c.alt for c in calls}


# ---- structural variants ---------------------------------------------------------------


def test_structural_variants_of_every_type() -> None:
    calls = {c.record_id: c for c in read("sv.vcf")[0]}
    assert calls["DEL001"].structural == StructuralVariant(
        SvType.DEL, end=1005000, sv_len=-5000, ci_pos=(-10, 10), ci_end=(-20, 20), copy_number=1.0
    )
    assert calls["DEL001"].alt == "<DEL>"
    assert calls["DUP001"].structural == StructuralVariant(
        SvType.DUP, end=2010000, sv_len=10000, copy_number=3.0
    )
    assert calls["INS001"].structural == StructuralVariant(SvType.INS, end=3000000, sv_len=300)
    assert calls["INV001"].structural == StructuralVariant(SvType.INV, end=4100000)
    assert calls["CNV001"].structural == StructuralVariant(SvType.CNV, end=5500000, copy_number=4.0)


def test_sv_details_from_allele_svlen_and_info() -> None:
    calls = {c.record_id: c for c in read("sv.vcf")[0]}
    cn0 = calls["CN0"].structural
    assert cn0 == StructuralVariant(SvType.CNV, end=6050000, copy_number=0.0)
    assert calls["DEL002"].structural == StructuralVariant(SvType.DEL, end=7002000, sv_len=-2000)
    resolved = calls["DEL003"].structural  # sequence-resolved: END from REF, not invented
    assert resolved == StructuralVariant(SvType.DEL, end=11000009, sv_len=-9)
    info_cn = calls["DEL004"].structural
    assert info_cn is not None
    assert info_cn.copy_number == 1.0


def test_breakends_keep_their_mate() -> None:
    calls = {c.record_id: c for c in read("sv.vcf")[0]}
    bnd = calls["BND001"].structural
    assert bnd == StructuralVariant(SvType.BND, end=8000000, mate="G]chr9:9000000]")


def test_unknown_symbolic_alleles_are_counted_not_converted() -> None:
    calls, summary = read("sv.vcf")
    assert "ODD001" not in {c.record_id for c in calls}
    assert summary.skipped == {"unsupported_allele": 1}


def test_undeclared_sv_keys_and_per_allele_svlen(tmp_path: Path) -> None:
    path = snv_like(
        tmp_path,
        "chr1 1000 . A <DEL>,<DUP> . PASS SVTYPE=CNV;END=5000;SVLEN=-4000,4000;CIPOS=-5,5 GT 1/2",
    )  # no ##INFO lines for these keys: htslib hands their values over as text
    calls = list(VcfReader(path))
    assert [c.structural for c in calls] == [
        StructuralVariant(SvType.CNV, end=5000, sv_len=-4000, ci_pos=(-5, 5)),
        StructuralVariant(SvType.CNV, end=5000, sv_len=4000, ci_pos=(-5, 5)),
    ]


def test_an_end_before_pos_is_malformed(tmp_path: Path) -> None:
    path = snv_like(tmp_path, "chr1 1000 . A <DEL> . PASS SVTYPE=DEL;END=900 GT 0/1")
    with pytest.raises(MalformedRecordError, match="END 900") as caught:
        list(VcfReader(path))
    assert (caught.value.line, caught.value.field) == (41, "END")


def test_snvs_have_no_structural_facts() -> None:
    assert all(c.structural is None for c in read("snv.vcf")[0])


# ---- sex chromosomes and mitochondria --------------------------------------------------


@pytest.mark.parametrize(
    ("sex", "x_hom", "y_hom"),
    [(Sex.MALE, HEMI, HEMI), (Sex.FEMALE, HOM, HOM), (Sex.UNKNOWN, HOM, HOM)],
)
def test_homozygous_calls_on_x_and_y_are_hemizygous_in_a_male(
    sex: Sex, x_hom: Zygosity, y_hom: Zygosity
) -> None:
    calls = by_pos(read("sex_mito.vcf", sex=sex)[0])
    assert calls[(73820651, "A")].zygosity == x_hom
    assert calls[(12000000, "C")].zygosity == y_hom
    assert calls[(100000000, "T")].zygosity == HET
    assert calls[(120000000, "G")].zygosity == HEMI  # haploid GT
    assert calls[(2786855, "A")].zygosity == HEMI


@pytest.mark.parametrize(
    ("threshold", "pos", "alt", "zygosity"),
    [
        (0.95, 750, "G", HOMOPLASMIC),  # 0/1 but VAF 0.96 from AD/DP
        (0.97, 750, "G", HETEROPLASMIC),
        (0.95, 3243, "G", HETEROPLASMIC),  # FORMAT AF 0.3
        (0.95, 4216, "C", HOMOPLASMIC),  # FORMAT AF 0.99
        (0.95, 8860, "G", HOMOPLASMIC),  # no VAF: 1/1
        (0.95, 16189, "C", HETEROPLASMIC),  # no VAF: 0/1
    ],
)
def test_mitochondrial_plasmy_by_vaf_else_genotype(
    threshold: float, pos: int, alt: str, zygosity: Zygosity
) -> None:
    calls = by_pos(read("sex_mito.vcf", heteroplasmy_threshold=threshold)[0])
    assert calls[(pos, alt)].zygosity == zygosity
    assert calls[(pos, alt)].chromosome == "M"


# ---- FILTER, phasing -------------------------------------------------------------------


def test_filtered_records_are_skipped_by_default() -> None:
    calls, summary = read("filtered.vcf")
    assert [c.pos for c in calls] == [2000, 4000]  # PASS and "." (no filters applied)
    assert summary.skipped == {"filtered": 2}


def test_included_filtered_records_carry_their_filters() -> None:
    calls, summary = read("filtered.vcf", include_filtered=True)
    assert [c.filters for c in calls] == [("LowQual",), (), ("q10", "s50"), ()]
    assert summary.skipped == {}


def test_phasing_and_phase_sets() -> None:
    calls = read("phased.vcf")[0]
    assert [(c.genotype, c.phased, c.phase_set, c.zygosity) for c in calls] == [
        ("0|1", True, 31000000, HET),
        ("1|0", True, 31000000, HET),
        ("1|1", True, 31000000, HOM),
        ("0/1", False, None, HET),
        ("0|1", True, None, HET),
    ]


# ---- builds and contigs ----------------------------------------------------------------


def test_grch37_with_bare_contig_names() -> None:
    calls, summary = read("grch37.vcf")
    with VcfReader(DATA / "grch37.vcf") as reader:
        assert reader.build is GenomeBuild.GRCH37
    assert [(c.chrom, c.chromosome) for c in calls] == [
        ("1", "1"),
        ("7", "7"),
        ("X", "X"),
        ("MT", "M"),
    ]
    assert summary.skipped == {"unsupported_contig": 2}  # GL000192.1 and the hs37d5 decoy


def test_a_build_contradicting_the_header_names_contig_and_lengths() -> None:
    with pytest.raises(GenomeBuildError) as caught:
        VcfReader(DATA / "snv.vcf", build=GenomeBuild.GRCH37)
    message = str(caught.value)
    assert "chr1" in message
    assert "248,956,422" in message
    assert "249,250,621" in message
    assert str(DATA / "snv.vcf") in message


def test_an_unknown_build_asks_for_one(tmp_path: Path) -> None:
    path = tmp_path / "nobuild.vcf"
    path.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n"
        "chr1\t100\t.\tA\tG\t50\tPASS\t.\tGT\t0/1\n"
    )
    with pytest.raises(GenomeBuildError, match="--build"):
        VcfReader(path)
    assert [c.pos for c in VcfReader(path, build=GenomeBuild.GRCH38)] == [100]


def test_a_position_past_the_chromosome_end_is_a_build_error(tmp_path: Path) -> None:
    path = snv_like(tmp_path, "chrM 16600 . A G 50 PASS . GT 0/1")
    with pytest.raises(GenomeBuildError, match="beyond the end") as caught:
        list(VcfReader(path))
    assert caught.value.line == 41


def test_hg19_mitochondrion_is_refused_at_its_first_record() -> None:
    with pytest.raises(UnknownContigError, match="rCRS") as caught:
        read("hg19_chrM.vcf")
    assert caught.value.line == 37


def test_a_chromosome_name_the_build_lacks_is_an_error(tmp_path: Path) -> None:
    path = snv_like(tmp_path, "chr23 100 . A G 50 PASS . GT 0/1")
    with pytest.raises(UnknownContigError, match="chr23") as caught:
        list(VcfReader(path))
    assert caught.value.line == 41


# ---- regions ---------------------------------------------------------------------------

REGIONS = [parse_region("chr1:900-1600"), parse_region("1:2500-3000"), parse_region("chr2:4000")]


@pytest.mark.parametrize("name", ["regions.vcf.gz", "regions_csi.vcf.gz"])
def test_an_index_restricts_reading_to_the_regions(name: str) -> None:
    calls, summary = read(name, regions=REGIONS)
    assert [(c.chrom, c.pos) for c in calls] == [
        ("chr1", 1000),
        ("chr1", 1500),  # the deletion reaching into both chr1 regions, once
        ("chr1", 2700),
        ("chr2", 5000),
    ]
    assert all(c.line is None for c in calls)
    assert summary.records_read == 4


@pytest.mark.parametrize("name", ["regions_unindexed.vcf.gz", "regions.vcf"])
def test_without_an_index_records_outside_the_regions_are_skipped(name: str) -> None:
    calls, summary = read(name, regions=REGIONS)
    assert [(c.chrom, c.pos, c.line) for c in calls] == [
        ("chr1", 1000, 43),
        ("chr1", 1500, 44),
        ("chr1", 2700, 46),
        ("chr2", 5000, 48),
    ]
    assert summary.skipped == {"outside_regions": 2}


@pytest.mark.parametrize(
    ("region", "error", "needle"),
    [
        ("chr1:200-200", MalformedRecordError, "chr1:200-200"),
        ("chr1:300-300", HeaderMismatchError, "XQ"),
    ],
)
def test_bad_records_are_caught_in_indexed_regions_too(
    region: str, error: type[Exception], needle: str
) -> None:
    assert [c.pos for c in read("regions_bad.vcf.gz", regions=[parse_region("chr1:1-150")])[0]]
    with pytest.raises(error, match=needle):
        read("regions_bad.vcf.gz", regions=[parse_region(region)])


@pytest.mark.parametrize("name", ["regions.vcf.gz", "regions.vcf"])
def test_regions_on_contigs_without_records_yield_nothing(name: str) -> None:
    regions = [GenomicRegion("chrX", 0, 1000), GenomicRegion("chr7", 0, 10)]
    assert read(name, regions=regions)[0] == []


# ---- input that is not a VCF, or is damaged --------------------------------------------


@pytest.mark.parametrize(
    ("name", "needle"),
    [("not_a_vcf.png", "PNG"), ("not_a_vcf.fa", "FASTA")],
)
def test_files_that_are_not_vcf(name: str, needle: str) -> None:
    with pytest.raises(NotAVcfError, match=needle):
        VcfReader(DATA / name)


def test_a_header_that_never_reaches_chrom(tmp_path: Path) -> None:
    path = tmp_path / "h.vcf"
    path.write_text(header_of("snv.vcf").split("#CHROM")[0])
    with pytest.raises(MalformedRecordError, match="no #CHROM"):
        VcfReader(path)


def test_text_without_fileformat_is_not_a_vcf(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("patient notes\n")
    with pytest.raises(NotAVcfError, match="##fileformat"):
        VcfReader(tmp_path / "notes.txt")


def test_an_empty_file_is_not_a_vcf(tmp_path: Path) -> None:
    (tmp_path / "empty.vcf").write_bytes(b"")
    with pytest.raises(NotAVcfError, match="empty"):
        VcfReader(tmp_path / "empty.vcf")


def test_a_header_without_records_yields_nothing() -> None:
    calls, summary = read("empty.vcf")
    assert calls == []
    assert summary.records_read == 0


def test_a_broken_header_line_is_refused_before_htslib_swallows_the_rest() -> None:
    with pytest.raises(MalformedRecordError, match="not closed") as caught:
        VcfReader(DATA / "bad_header.vcf")
    assert caught.value.field == "header"
    lines = (DATA / "bad_header.vcf").read_text().splitlines()
    assert caught.value.line is not None
    assert lines[caught.value.line - 1] == "##INFO=<ID=DP,Number=1,Type=Integer"


@pytest.mark.parametrize(
    ("replace", "by", "needle"),
    [
        ('Type=Integer,Description="Approximate', 'Type=Integr,Description="Approximate', "Type"),
        ("\tINFO\tFORMAT", "\tFORMAT", "#CHROM"),
        ("\tNA12878", "\tNA12878\tNA12878", "unique"),
        ("##fileDate=20260115", "#fileDate=20260115", "start with ##"),
        ("chr1,length=248956422", "chr1,length=big", "length"),
        ("##fileDate=20260115", "##fileDate", "##key=value"),
        ("##INFO=<ID=DP,", "##INFO=<", "attributes"),
        ('Description="Total depth">', 'Description="Total depth"x>', "attributes"),
    ],
)
def test_header_errors_name_their_line(tmp_path: Path, replace: str, by: str, needle: str) -> None:
    path = tmp_path / "h.vcf"
    path.write_text((DATA / "snv.vcf").read_text().replace(replace, by, 1))
    with pytest.raises(MalformedRecordError, match=needle) as caught:
        VcfReader(path)
    assert caught.value.field == "header"
    assert caught.value.line is not None


def test_a_truncated_bgzip_file_is_refused_up_front() -> None:
    with pytest.raises(TruncatedInputError, match="end-of-file block"):
        VcfReader(DATA / "truncated.vcf.gz")


def test_a_corrupt_block_is_caught_before_any_call() -> None:
    iteration = iter(VcfReader(DATA / "corrupt.vcf.gz"))
    with pytest.raises(TruncatedInputError, match="corrupt"):
        next(iteration)


def test_a_truncated_plain_gzip_file(tmp_path: Path) -> None:
    data = gzip.compress((DATA / "snv.vcf").read_bytes())  # gzip, not bgzip: no EOF block
    path = tmp_path / "cut.vcf.gz"
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(TruncatedInputError):
        list(VcfReader(path))


def test_a_gzip_file_cut_inside_its_header(tmp_path: Path) -> None:
    data = gzip.compress((DATA / "snv.vcf").read_bytes())
    path = tmp_path / "cut.vcf.gz"
    path.write_bytes(data[:300])
    with pytest.raises(TruncatedInputError, match="header"):
        VcfReader(path)


@pytest.mark.parametrize("name", ["missing.vcf", ""])
def test_a_path_that_is_no_readable_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="cannot read"):
        VcfReader(tmp_path / name)


def test_an_unreadable_index_is_a_region_error(tmp_path: Path) -> None:
    path = tmp_path / "r.vcf.gz"
    path.write_bytes((DATA / "regions.vcf.gz").read_bytes())
    (tmp_path / "r.vcf.gz.tbi").write_bytes(gzip.compress(b"not an index"))
    with pytest.raises(RegionError, match="tabix"):
        list(VcfReader(path, regions=REGIONS))


def test_regions_over_plain_gzip_are_filtered_while_streaming(tmp_path: Path) -> None:
    path = tmp_path / "r.vcf.gz"
    path.write_bytes(gzip.compress((DATA / "regions.vcf").read_bytes()))
    calls, summary = read(path, regions=REGIONS)
    assert [c.pos for c in calls] == [1000, 1500, 2700, 5000]
    assert summary.skipped == {"outside_regions": 2}


# ---- malformed records: htslib errors, warnings and crashes ---------------------------


def test_a_non_integer_pos_is_named() -> None:
    with pytest.raises(MalformedRecordError, match="2x00") as caught:
        read("malformed_pos.vcf")
    assert (caught.value.line, caught.value.field) == (42, "POS")


@pytest.mark.parametrize(
    ("record", "field", "needle"),
    [
        ("chr1 100 . A G 50 PASS . GT:AD:DP 0/x:5,5:10", "GT", "GT must be"),
        ("chr1 100 . A G 50 PASS . GT:AD:DP 0/1:5,x:10", "AD", "AD must hold numbers"),
        ("chr1 100 . A G 50 PASS . GT:AD:DP 0/3:5,5:10", "GT", "allele 3"),
        ("chr1 100 . A G,,T 50 PASS . GT 0/1", "ALT", "empty"),
        ("chr1 -5 . A G 50 PASS . GT 0/1", "POS", "POS"),
    ],
)
def test_bad_values_are_named_by_line_and_field(
    tmp_path: Path, record: str, field: str, needle: str
) -> None:
    path = snv_like(tmp_path, "chr1 50 . C T 50 PASS . GT 0/1", record)
    with pytest.raises(MalformedRecordError, match=needle) as caught:
        list(VcfReader(path))
    assert (caught.value.line, caught.value.field) == (42, field)


@pytest.mark.parametrize(
    ("records", "needle", "line"),
    [
        (["chr1 50 . C T 50 PASS . GT 0/1", "", "chr1 60 . C T 50 PASS . GT 0/1"], "blank", 42),
        (["chr1 50 . C T 50 PASS . GT 0/1", "#note", "chr1 60 . A G 50 PASS . GT 0/1"], "'#'", 42),
        (["chr1 50 . C T 50 PASS", "chr1 60 . A G 50 PASS . GT 0/1"], "8 or more", 41),
        ([" chr1 50 . C T 50 PASS . GT 0/1"], "empty CHROM", 41),
    ],
)
def test_lines_that_would_crash_or_mislead_htslib(
    tmp_path: Path, records: list[str], needle: str, line: int
) -> None:
    path = snv_like(tmp_path, *records)  # " chr1 ..." becomes a line starting with a tab
    with pytest.raises(MalformedRecordError, match=needle) as caught:
        list(VcfReader(path))
    assert caught.value.line == line


def test_trailing_blank_lines_crlf_and_a_missing_final_newline_are_fine(tmp_path: Path) -> None:
    path = snv_like(tmp_path, "chr1 50 . C T 50 PASS . GT 0/1", "chr1 60 . A G 50 PASS . GT 1/1")
    text = path.read_text()
    for variant in (text + "\n\n", text.replace("\n", "\r\n"), text.rstrip("\n")):
        path.write_bytes(variant.encode())
        assert [c.pos for c in VcfReader(path)] == [50, 60]


def test_an_undeclared_format_key_is_a_header_mismatch() -> None:
    with pytest.raises(HeaderMismatchError, match="XQ") as caught:
        read("mismatch_format.vcf")
    assert (caught.value.line, caught.value.field) == (42, "FORMAT")


@pytest.mark.parametrize(
    ("name", "record"),
    [
        ("mismatch_columns.vcf", None),
        (None, "chr1 60 . A G 50 PASS . GT"),  # FORMAT but no sample column
        (None, "chr1 60 . A G 50 PASS ."),  # no FORMAT at all
    ],
)
def test_sample_columns_must_match_the_header(
    tmp_path: Path, name: str | None, record: str | None
) -> None:
    path = (
        DATA / name if name else snv_like(tmp_path, "chr1 50 . C T 50 PASS . GT 0/1", str(record))
    )
    with pytest.raises(HeaderMismatchError, match="sample") as caught:
        list(VcfReader(path))
    assert caught.value.line == 42


def test_a_record_without_gt_is_counted(tmp_path: Path) -> None:
    path = snv_like(tmp_path, "chr1 50 . C T 50 PASS . AD 5,5", "chr1 60 . A G 50 PASS . GT 0/1")
    summary = ConversionSummary()
    calls = list(VcfReader(path, summary=summary))
    assert [c.pos for c in calls] == [60]
    assert summary.skipped == {"no_genotype": 1}


def test_htslib_stopping_early_is_never_silent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = VcfReader(DATA / "snv.vcf")
    vcf = cyvcf2.VCF(str(DATA / "snv.vcf"))
    first_two = [next(vcf), next(vcf)]

    class Stops:
        def __iter__(self) -> Iterator[Any]:
            return iter(first_two)

        def close(self) -> None:
            vcf.close()

    monkeypatch.setattr(reader, "_open_vcf", Stops)
    with pytest.raises(TruncatedInputError, match="2 of 11") as caught:
        list(reader)
    assert caught.value.line == 43


# ---- the demo input --------------------------------------------------------------------


def test_the_shipped_example_reads_cleanly() -> None:
    summary = ConversionSummary()
    with VcfReader(EXAMPLE, summary=summary) as reader:
        calls = list(reader)
        assert reader.build is GenomeBuild.GRCH38
        assert reader.sample == "NA12878"
        assert "Synthetic" in reader.header.meta["comment"]
    assert summary.records_read == 48
    assert summary.skipped == {"filtered": 1}
    assert len(calls) == 52  # 47 records kept, 5 of them 1/2
    assert EXAMPLE.with_name(EXAMPLE.name + ".tbi").is_file()


def test_the_example_can_be_read_by_region() -> None:
    brca1 = [GenomicRegion("chr17", 43044294, 43125482)]
    calls, _ = read(EXAMPLE, regions=brca1)
    assert calls
    assert all(c.chrom == "chr17" and 43044294 < c.pos <= 43125482 for c in calls)


# ---- the C scan of a block's lines, held to numpy's reading ----------------------------


def _numpy_lines(body: bytes, tabs: int) -> tuple[list[int], list[int], list[int]] | None:
    """What adapter._native.lines finds, the slow way: (tabs then newline of each line,
    colons and commas from each line's FORMAT column on)."""
    if not body.endswith(b"\n"):
        return None
    grid, colons, commas = [], [], []
    start = 0
    for line in body[:-1].split(b"\n"):
        cuts = [start + i for i, c in enumerate(line) if c == 9]
        if len(cuts) != tabs or line.startswith(b"\t"):
            return None
        grid += [*cuts, start + len(line)]
        after = cuts[7] + 1 if tabs > 7 else start + len(line)
        colons += [start + i for i, c in enumerate(line) if c == 58 and start + i > after - 1]
        commas += [start + i for i, c in enumerate(line) if c == 44 and start + i > after - 1]
        start += len(line) + 1
    return grid, colons, commas


_COLUMNS = st.lists(st.text(alphabet="ab:,", max_size=4), min_size=9, max_size=11)


@given(st.lists(_COLUMNS, min_size=1, max_size=5), st.booleans())
@settings(max_examples=300, deadline=None)
def test_line_scan_agrees_with_numpy(rows: list[list[str]], ragged_end: bool) -> None:
    """Lines of 9 to 11 columns, some empty (a line may start with a tab)."""
    body = "\n".join("\t".join(r) for r in rows).encode() + (b"" if ragged_end else b"\n")
    tabs = 9
    expected = _numpy_lines(body, tabs)
    found = scan(body, tabs, 7)
    if expected is None:
        assert found is None
        return
    assert found is not None
    assert [np.frombuffer(f, np.intp).tolist() for f in found] == list(expected)


def test_line_scan_declines_a_line_with_one_tab_too_many() -> None:
    line = b"\t".join([b"c"] * 10) + b"\n"
    assert scan(line * 2, 9, -1) is not None
    assert scan(line + line.replace(b"c\n", b"c\tc\n"), 9, -1) is None
