"""Regenerate the VCF fixtures in this folder and the demo input in examples/.

Run from the repository root: ``.venv/bin/python tests/data/vcf/make_fixtures.py``.

Everything is written deterministically from the text below. Compressed files are real BGZF and
indexes real tabix/CSI, made by the htslib that cyvcf2 bundles (called through ctypes), so no
tabix/bgzip install is needed here, and the tests never call either: they read the committed
files.
"""

from __future__ import annotations

import ctypes
import random
from pathlib import Path

import cyvcf2.cyvcf2

from adapter.assembly import chromosome_length
from adapter.model import GenomeBuild

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[2] / "examples"
NAMES = [str(n) for n in range(1, 23)] + ["X", "Y"]

_HTS = ctypes.CDLL(cyvcf2.cyvcf2.__file__)
_HTS.bgzf_open.restype = ctypes.c_void_p
_HTS.bgzf_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
_HTS.bgzf_write.restype = ctypes.c_ssize_t
_HTS.bgzf_write.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
_HTS.bgzf_close.argtypes = [ctypes.c_void_p]
_HTS.tbx_index_build.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
_TBX_CONF_VCF = ctypes.c_void_p.in_dll(_HTS, "tbx_conf_vcf")


def bgzip(text: str, path: Path) -> None:
    """Write ``text`` as BGZF (bgzip's format, with its end-of-file block)."""
    data = text.encode()
    handle = _HTS.bgzf_open(str(path).encode(), b"w")
    if not handle or _HTS.bgzf_write(handle, data, len(data)) != len(data):
        raise OSError(f"cannot bgzip {path}")
    if _HTS.bgzf_close(handle) != 0:
        raise OSError(f"cannot close {path}")


def index(path: Path, *, csi: bool = False) -> None:
    """Write ``path``.tbi (tabix -p vcf) or ``path``.csi (tabix -C -p vcf)."""
    if _HTS.tbx_index_build(str(path).encode(), 14 if csi else 0, ctypes.addressof(_TBX_CONF_VCF)):
        raise OSError(f"cannot index {path}")


# ---- header pieces ---------------------------------------------------------------------


def contigs(build: GenomeBuild, prefix: str, mito: str, extra: tuple[str, ...] = ()) -> str:
    lines = [
        f"##contig=<ID={prefix}{n},length={chromosome_length(build, n)},assembly={build}>"
        for n in NAMES
    ]
    lines.append(f"##contig=<ID={mito},length=16569>")
    return "\n".join([*lines, *extra]) + "\n"


GRCH38 = contigs(
    GenomeBuild.GRCH38,
    "chr",
    "chrM",
    (
        "##contig=<ID=chr1_KI270706v1_random,length=175055>",
        "##contig=<ID=chrUn_KI270742v1,length=186739>",
        "##contig=<ID=chrEBV,length=171823>",
    ),
)
GRCH37 = contigs(
    GenomeBuild.GRCH37,
    "",
    "MT",
    ("##contig=<ID=GL000192.1,length=547496>", "##contig=<ID=hs37d5,length=35477943>"),
)

FORMATS = """\
##FILTER=<ID=PASS,Description="All filters passed">
##FILTER=<ID=LowQual,Description="Low quality">
##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths for the ref and alt alleles">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Approximate read depth">
##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">
"""
AF = '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fractions of alternate alleles">\n'
PS = '##FORMAT=<ID=PS,Number=1,Type=Integer,Description="Phase set">\n'
COLUMNS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT"


def vcf(meta: str, samples: list[str], records: list[str]) -> str:
    """A VCF from its meta lines, sample names and records (columns separated by spaces)."""
    body = ["\t".join(r.split()) for r in records]
    head = "##fileformat=VCFv4.2\n" + meta + "\t".join([COLUMNS, *samples])
    return "\n".join([head, *body]) + "\n"


def grch38(extra: str = "") -> str:
    return (
        "##fileDate=20260115\n##source=GATK HaplotypeCaller v4.5.0.0\n"
        "##reference=file:///refs/GRCh38/Homo_sapiens_assembly38.fasta\n" + GRCH38 + FORMATS + extra
    )


# ---- the fixtures ----------------------------------------------------------------------

SNV = vcf(
    grch38(),
    ["NA12878"],
    [
        "chr1 69511 rs2691305 A G 1500.77 PASS DP=45 GT:AD:DP:GQ 1/1:0,45:45:99",
        "chr1 930220 rs1234 G A 400.3 PASS DP=30 GT:AD:DP:GQ 0/1:14,16:30:99",
        "chr2 166848646 . G T . PASS . GT:AD:DP:GQ 0/1:20,10:30:60",
        "chr3 37000000 . C A 88 PASS . GT:AD:DP:GQ 1/.:3,9:12:20",
        "chr7 117559590 rs113993960 A G 55 PASS DP=40 GT:AD:DP:GQ 0/0:40,0:40:99",
        "chr13 32316461 . C T . PASS . GT:AD:DP:GQ ./.:.:.:.",
        "chr17 43045712 rs80357906;rs1799966 T C 800 PASS DP=60 GT:AD:GQ 0/1:31,29:99",
        "chr22 42128945 rs1065852 G A 900 PASS DP=50 GT:AD:DP:GQ 1/1:0,50:50:99",
        "chr1_KI270706v1_random 500 . G A 99 PASS . GT:AD:DP:GQ 0/1:5,5:10:50",
        "chrUn_KI270742v1 1000 . A C 99 PASS . GT:AD:DP:GQ 0/1:5,5:10:50",
        "chrEBV 1200 . T G 99 PASS . GT 1/1",
    ],
)

INDELS = vcf(
    grch38(),
    ["NA12878"],
    [
        "chr1 1000000 . A AT 300 PASS . GT:AD:DP 0/1:10,8:18",
        "chr1 2000000 . ACGT A 500 PASS . GT:AD:DP 1/1:0,20:20",
        "chr1 3000000 . AC GT 200 PASS . GT:AD:DP 0/1:12,11:23",
        "chr3 100000 . CAGAGAG C,CAG 700 PASS . GT:AD:DP 1/2:1,10,9:20",
        "chr4 200000 . G GAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA 90 PASS . GT:AD:DP 0/1:7,5:12",
        "chr5 300000 . T *,C 150 PASS . GT:AD:DP 1/2:0,6,9:15",
    ],
)

MULTIALLELIC = vcf(
    grch38(AF),
    ["NA12878"],
    [
        "chr1 1000 . A G,T 99 PASS . GT:AD:DP 1/2:2,10,8:20",
        "chr1 2000 . C A,G 99 PASS . GT:AD:DP 0/2:10,0,10:20",
        "chr1 3000 . G C,T 99 PASS . GT:AD:DP 0/1:12,9,1:22",
        "chr1 4000 . T A,C 99 PASS . GT:AD:DP 2/2:0,1,30:31",
        "chr1 5000 . A C,G,T 99 PASS . GT:AD:DP:AF 1/3:5,10,0,12:27:0.37,0,0.44",
        "chr1 6000 . G A,C 99 PASS . GT:AD 1/2:.,7,6",
    ],
)

TRIO = vcf(
    grch38(),
    ["HG002", "HG003", "HG004"],
    [
        "chr1 10000 . A G 99 PASS . GT:AD:DP 0/1:10,10:20 0/0:20,0:20 0/1:9,11:20",
        "chr2 20000 . C T 99 PASS . GT:AD:DP 1/1:0,25:25 0/1:12,12:24 0/1:10,14:24",
        "chrX 73820651 . G A 99 PASS . GT:AD:DP 1/1:0,20:20 1:0,15:15 0/1:8,9:17",
    ],
)

TUMOR_NORMAL = vcf(
    "##source=Mutect2\n##tumor_sample=TUMOR\n##normal_sample=NORMAL\n"
    "##reference=file:///refs/Homo_sapiens_assembly38.fasta\n"
    + GRCH38
    + FORMATS.replace("LowQual", "germline")
    + AF,
    ["NORMAL", "TUMOR"],
    [
        "chr7 55191822 . T G . PASS . GT:AD:AF:DP 0/0:50,0:0.01:50 0/1:70,30:0.3:100",
        "chr12 25245350 . C T . PASS . GT:AD:AF:DP 0/0:40,0:0.012:40 0/1:45,15:0.25:60",
        "chr17 7674220 . C T . germline . GT:AD:AF:DP 0/1:20,20:0.5:40 0/1:22,18:0.45:40",
    ],
)

GVCF = vcf(
    "##source=GATK HaplotypeCaller -ERC GVCF\n##reference=GRCh38\n"
    + GRCH38
    + FORMATS
    + '##ALT=<ID=NON_REF,Description="Any other allele">\n'
    '##INFO=<ID=END,Number=1,Type=Integer,Description="End of the reference block">\n'
    '##FORMAT=<ID=MIN_DP,Number=1,Type=Integer,Description="Minimum depth in the block">\n',
    ["NA12878"],
    [
        "chr1 10000 . A <NON_REF> . . END=10100 GT:DP:GQ:MIN_DP 0/0:30:90:28",
        "chr1 10101 . G A,<NON_REF> 500 . DP=30 GT:AD:DP:GQ 0/1:15,14,1:30:99",
        "chr1 10102 . T <NON_REF> . . END=10200 GT:DP:GQ:MIN_DP 0/0:31:90:29",
        "chr1 10300 . C CT,G,<NON_REF> 300 . . GT:AD:DP 1/2:0,10,9,0:19",
        "chr1 10400 . A <*> . . END=10500 GT:DP 0/0:25",
        "chr1 10501 . T C,<*> 400 . . GT:AD:DP 1/1:0,22,0:22",
        "chr1 10600 . G <NON_REF> . . END=10700 GT:DP ./.:0",
    ],
)

SV = vcf(
    "##source=Manta\n##reference=GRCh38\n" + GRCH38 + '##ALT=<ID=DEL,Description="Deletion">\n'
    '##ALT=<ID=DUP:TANDEM,Description="Tandem duplication">\n'
    '##ALT=<ID=INS,Description="Insertion">\n'
    '##ALT=<ID=INV,Description="Inversion">\n'
    '##ALT=<ID=CNV,Description="Copy number variant">\n'
    '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of structural variant">\n'
    '##INFO=<ID=END,Number=1,Type=Integer,Description="End position">\n'
    '##INFO=<ID=SVLEN,Number=.,Type=Integer,Description="Length difference">\n'
    '##INFO=<ID=CIPOS,Number=2,Type=Integer,Description="Confidence interval around POS">\n'
    '##INFO=<ID=CIEND,Number=2,Type=Integer,Description="Confidence interval around END">\n'
    '##INFO=<ID=IMPRECISE,Number=0,Type=Flag,Description="Imprecise structural variant">\n'
    '##INFO=<ID=MATEID,Number=.,Type=String,Description="ID of the mate breakend">\n'
    '##INFO=<ID=CN,Number=1,Type=Integer,Description="Copy number of the segment">\n'
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '##FORMAT=<ID=CN,Number=1,Type=Integer,Description="Copy number">\n',
    ["NA12878"],
    [
        "chr1 1000000 DEL001 A <DEL> . PASS "
        "SVTYPE=DEL;END=1005000;SVLEN=-5000;CIPOS=-10,10;CIEND=-20,20;IMPRECISE GT:CN 0/1:1",
        "chr2 2000000 DUP001 G <DUP:TANDEM> . PASS SVTYPE=DUP;END=2010000;SVLEN=10000 GT:CN 0/1:3",
        "chr3 3000000 INS001 T <INS> . PASS SVTYPE=INS;END=3000000;SVLEN=300 GT 0/1",
        "chr4 4000000 INV001 C <INV> . PASS SVTYPE=INV;END=4100000 GT 0/1",
        "chr5 5000000 CNV001 A <CNV> . PASS SVTYPE=CNV;END=5500000 GT:CN 0/1:4",
        "chr6 6000000 CN0 G <CN0> . PASS END=6050000 GT:CN 1/1:0",
        "chr7 7000000 DEL002 A <DEL> . PASS SVTYPE=DEL;SVLEN=-2000 GT 0/1",
        "chr8 8000000 BND001 G G]chr9:9000000] . PASS SVTYPE=BND;MATEID=BND002 GT 0/1",
        "chr9 9000000 BND002 T T]chr8:8000000] . PASS SVTYPE=BND;MATEID=BND001 GT 0/1",
        "chr10 10000000 ODD001 A <FOO> . PASS . GT 0/1",
        "chr11 11000000 DEL003 ACGTACGTAC A . PASS SVTYPE=DEL;SVLEN=-9 GT 0/1",
        "chr12 12000000 DEL004 C <DEL> . PASS SVTYPE=DEL;END=12003000;CN=1 GT 0/1",
    ],
)

SEX_MITO = vcf(
    grch38(AF),
    ["NA12891"],
    [
        "chrX 73820651 . G A 99 PASS . GT:AD:DP 1/1:0,30:30",
        "chrX 100000000 . C T 99 PASS . GT:AD:DP 0/1:15,15:30",
        "chrX 120000000 . A G 99 PASS . GT:AD:DP 1:0,20:20",
        "chrY 2786855 . G A 99 PASS . GT:AD:DP 1:0,12:12",
        "chrY 12000000 . T C 99 PASS . GT:AD:DP 1/1:0,10:10",
        "chrM 750 . A G 99 PASS . GT:AD:DP 0/1:40,960:1000",
        "chrM 3243 . A G 99 PASS . GT:AD:DP:AF 0/1:700,300:1000:0.3",
        "chrM 4216 . T C 99 PASS . GT:AD:DP:AF 1/1:10,990:1000:0.99",
        "chrM 8860 . A G 99 PASS . GT 1/1",
        "chrM 16189 . T C 99 PASS . GT 0/1",
    ],
)

FILTERED = vcf(
    grch38().replace(
        "##INFO=",
        '##FILTER=<ID=q10,Description="Q<10">\n##FILTER=<ID=s50,Description="S">\n##INFO=',
        1,
    ),
    ["NA12878"],
    [
        "chr1 1000 . A G 10 LowQual . GT 0/1",
        "chr1 2000 . C T 50 PASS . GT 0/1",
        "chr1 3000 . G A 5 q10;s50 . GT 1/1",
        "chr1 4000 . T C 60 . . GT 0/1",
    ],
)

PHASED = vcf(
    grch38(PS),
    ["NA12878"],
    [
        "chr6 31000000 . A G 99 PASS . GT:PS 0|1:31000000",
        "chr6 31000500 . C T 99 PASS . GT:PS 1|0:31000000",
        "chr6 31002000 . G C 99 PASS . GT:PS 1|1:31000000",
        "chr6 31005000 . T A 99 PASS . GT:PS 0/1:.",
        "chr6 31006000 . A C 99 PASS . GT 0|1",
    ],
)

GRCH37_FILE = vcf(
    "##reference=file:///refs/human_g1k_v37.fasta\n" + GRCH37 + FORMATS,
    ["NA12878"],
    [
        "1 69511 rs2691305 A G 99 PASS . GT:AD:DP 1/1:0,45:45",
        "7 117199644 rs113993960 A G 99 PASS . GT:AD:DP 0/1:20,19:39",
        "X 73040486 . G A 99 PASS . GT:AD:DP 0/1:10,12:22",
        "MT 3243 . A G 99 PASS . GT:AD:DP 0/1:800,200:1000",
        "GL000192.1 1000 . A C 99 PASS . GT:AD:DP 0/1:5,5:10",
        "hs37d5 500 . G T 99 PASS . GT:AD:DP 0/1:5,5:10",
    ],
)

HG19_CHRM = vcf(
    "##reference=file:///refs/ucsc.hg19.fasta\n"
    + contigs(GenomeBuild.GRCH37, "chr", "chrM").replace("chrM,length=16569", "chrM,length=16571")
    + FORMATS,
    ["NA12878"],
    [
        "chr1 69511 . A G 99 PASS . GT 1/1",
        "chrM 3243 . A G 99 PASS . GT 0/1",
    ],
)

EMPTY = vcf(grch38(), ["NA12878"], [])
SITES_ONLY = vcf(grch38(), [], ["chr1 1000 rs1 A G 99 PASS DP=10"]).replace("\tFORMAT", "")

BAD_HEADER = vcf(
    grch38().replace(
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth">',
        "##INFO=<ID=DP,Number=1,Type=Integer",
    ),
    ["NA12878"],
    ["chr1 1000 . A G 99 PASS DP=10 GT:AD:DP 0/1:5,5:10"],
)

MALFORMED = vcf(
    grch38(),
    ["NA12878"],
    [
        "chr1 1000 . A G 99 PASS . GT:AD:DP 0/1:5,5:10",
        "chr1 2x00 . C T 99 PASS . GT:AD:DP 0/1:5,5:10",
        "chr1 3000 . G A 99 PASS . GT:AD:DP 0/1:5,5:10",
    ],
)

MISMATCH_FORMAT = vcf(
    grch38(),
    ["NA12878"],
    [
        "chr1 1000 . A G 99 PASS . GT:AD:DP 0/1:5,5:10",
        "chr1 2000 . C T 99 PASS . GT:AD:XQ 0/1:5,5:7",
    ],
)

MISMATCH_COLUMNS = vcf(
    grch38(),
    ["NA12878"],
    [
        "chr1 1000 . A G 99 PASS . GT:AD:DP 0/1:5,5:10",
        "chr1 2000 . C T 99 PASS . GT:AD:DP 0/1:5,5:10 1/1:0,9:9",
    ],
)

REGIONS = vcf(
    grch38(
        '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of structural variant">\n'
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End position">\n'
    ),
    ["NA12878"],
    [
        "chr1 1000 . A G 99 PASS . GT 0/1",
        "chr1 1500 DEL1 A <DEL> 99 PASS SVTYPE=DEL;END=2600 GT 0/1",
        "chr1 2000 . C T 99 PASS . GT 0/1",
        "chr1 2700 . G A 99 PASS . GT 0/1",
        "chr2 500 . T C 99 PASS . GT 0/1",
        "chr2 5000 . A C 99 PASS . GT 1/1",
    ],
)


REGIONS_BAD = vcf(
    grch38(),
    ["NA12878"],
    [
        "chr1 100 . A G 50 PASS . GT 0/1",
        "chr1 200 . A G 50 PASS . GT 0/x",
        "chr1 300 . A G 50 PASS . GT:XQ 0/1:3",
    ],
)


def truncation_source() -> str:
    """Enough records for several BGZF blocks, so cutting the file leaves whole blocks."""
    rng = random.Random(7)  # noqa: S311 - fixed, reproducible test data
    records = [
        f"chr1 {100000 + i * 37} . A {rng.choice('CGT')} 99 PASS . GT:AD:DP 0/1:10,9:19"
        for i in range(4000)
    ]
    return vcf(grch38(), ["NA12878"], records)


# ---- the demo input --------------------------------------------------------------------

#: gene, GRCh38 chromosome, a window inside the gene (synthetic positions within it)
PANEL = [
    ("MUTYH", "chr1", 45330000, 45340000),
    ("MSH2", "chr2", 47403000, 47480000),
    ("MLH1", "chr3", 36993000, 37050000),
    ("APC", "chr5", 112707000, 112846000),
    ("CFTR", "chr7", 117480000, 117668000),
    ("PTEN", "chr10", 87863000, 87971000),
    ("ATM", "chr11", 108223000, 108369000),
    ("BRCA2", "chr13", 32315000, 32400000),
    ("PALB2", "chr16", 23603000, 23641000),
    ("TP53", "chr17", 7668000, 7687000),
    ("BRCA1", "chr17", 43044000, 43125000),
    ("CHEK2", "chr22", 28687000, 28742000),
]


def panel() -> str:
    """A realistic single-sample gene-panel VCF: SNVs, indels, multi-allelics, a filtered call."""
    rng = random.Random(20260115)  # noqa: S311 - fixed, reproducible demo data
    records = []
    for gene, chrom, start, end in PANEL:
        for pos in sorted(rng.sample(range(start, end), 4)):
            records.append(_panel_record(rng, gene, chrom, pos))
    records.sort(key=lambda r: (NAMES.index(r.split()[0][3:]), int(r.split()[1])))
    header = (
        "##fileDate=20260115\n##source=GATK HaplotypeCaller v4.5.0.0\n"
        "##reference=file:///refs/GRCh38/Homo_sapiens_assembly38.fasta\n"
        "##comment=Synthetic demo data: realistic layout, invented positions and alleles within "
        "real GRCh38 gene loci; not NA12878's genotypes\n"
        + contigs(GenomeBuild.GRCH38, "chr", "chrM")
        + FORMATS
        + '##INFO=<ID=GENE,Number=1,Type=String,Description="Panel gene">\n'
    )
    return vcf(header, ["NA12878"], records)


def _panel_record(rng: random.Random, gene: str, chrom: str, pos: int) -> str:
    ref = rng.choice("ACGT")
    kind = rng.random()
    others = [b for b in "ACGT" if b != ref]
    ad = [rng.randint(15, 40), rng.randint(15, 40)]
    if kind < 0.12:
        alts, gt, ad = ",".join(others[:2]), "1/2", [1, *ad]
    elif kind < 0.3:
        extra = "".join(rng.choice("ACGT") for _ in range(rng.randint(1, 4)))
        ref, alts = (ref, ref + extra) if rng.random() < 0.5 else (ref + extra, ref)
        gt = "0/1"
    elif kind < 0.75:
        alts, gt = rng.choice(others), "0/1"
    else:
        alts, gt, ad = rng.choice(others), "1/1", [0, rng.randint(20, 60)]
    qual = f"{rng.randint(60, 3000)}.{rng.randint(10, 99)}"
    flt = "LowQual" if float(qual) < 120 else "PASS"
    sample = f"{gt}:{','.join(map(str, ad))}:{sum(ad)}:99"
    return f"{chrom} {pos} . {ref} {alts} {qual} {flt} GENE={gene} GT:AD:DP:GQ {sample}"


# ---- writing ---------------------------------------------------------------------------

PLAIN = {
    "snv.vcf": SNV,
    "indels.vcf": INDELS,
    "multiallelic.vcf": MULTIALLELIC,
    "trio.vcf": TRIO,
    "tumor_normal.vcf": TUMOR_NORMAL,
    "gvcf.g.vcf": GVCF,
    "sv.vcf": SV,
    "sex_mito.vcf": SEX_MITO,
    "filtered.vcf": FILTERED,
    "phased.vcf": PHASED,
    "grch37.vcf": GRCH37_FILE,
    "hg19_chrM.vcf": HG19_CHRM,
    "empty.vcf": EMPTY,
    "sites_only.vcf": SITES_ONLY,
    "bad_header.vcf": BAD_HEADER,
    "malformed_pos.vcf": MALFORMED,
    "mismatch_format.vcf": MISMATCH_FORMAT,
    "mismatch_columns.vcf": MISMATCH_COLUMNS,
    "regions.vcf": REGIONS,
    "not_a_vcf.fa": ">chr1 test sequence\nACGTACGTACGTNNNNACGT\nACGTACGT\n",
}

#: a 1x1 PNG, the kind of file users attach by mistake
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)


def main() -> None:
    for name, text in PLAIN.items():
        (HERE / name).write_text(text)
    (HERE / "not_a_vcf.png").write_bytes(PNG)
    for name in ("regions", "regions_csi", "regions_unindexed"):
        bgzip(REGIONS, HERE / f"{name}.vcf.gz")
    index(HERE / "regions.vcf.gz")
    index(HERE / "regions_csi.vcf.gz", csi=True)
    bgzip(REGIONS_BAD, HERE / "regions_bad.vcf.gz")
    index(HERE / "regions_bad.vcf.gz")
    bgzip(SNV, HERE / "snv.vcf.gz")
    whole = HERE / "truncated_source.vcf.gz"
    bgzip(truncation_source(), whole)
    data = whole.read_bytes()
    whole.unlink()
    (HERE / "truncated.vcf.gz").write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0xFF  # inside a block; the end-of-file block stays intact
    (HERE / "corrupt.vcf.gz").write_bytes(bytes(corrupt))
    EXAMPLES.mkdir(exist_ok=True)
    demo = EXAMPLES / "NA12878-panel.vcf.gz"
    bgzip(panel(), demo)
    index(demo)


if __name__ == "__main__":
    main()
