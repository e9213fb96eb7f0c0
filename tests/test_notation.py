"""SPDI, g.HGVS and DNA change types derived from VCF alleles."""

from __future__ import annotations

import re
from itertools import takewhile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.model import StructuralVariant, SvType
from adapter.notation import ChangeType, Notation, describe, describe_structural, ploidy

CHR7 = "NC_000007.14"
CHR1 = "NC_000001.11"


def test_snv_braf_v600e() -> None:
    """BRAF c.1799T>A on GRCh38: SPDI is 0-based, HGVS 1-based."""
    n = describe(CHR7, 140753336, "A", "T")
    assert n == Notation(
        ChangeType.SNV, 140753336, 140753336,
        "NC_000007.14:140753335:A:T", "NC_000007.14:g.140753336A>T",
    )  # fmt: skip


def test_mnv_is_a_delins_in_hgvs() -> None:
    n = describe(CHR1, 100, "AC", "TT")
    assert n is not None
    assert (n.change, n.start, n.end) == (ChangeType.MNV, 100, 101)
    assert n.spdi == "NC_000001.11:99:AC:TT"
    assert n.hgvs == "NC_000001.11:g.100_101delinsTT"


def test_reverse_complement_is_an_inversion() -> None:
    n = describe(CHR1, 100, "AC", "GT")
    assert n is not None
    assert (n.change, n.hgvs) == (ChangeType.INVERSION, "NC_000001.11:g.100_101inv")


def test_deletion_cftr_f508del_is_not_shifted_without_reference() -> None:
    """gnomAD 7-117559590-ATCT-A; the 3'-shifted HGVS would be g.117559593_117559595del."""
    n = describe(CHR7, 117559590, "ATCT", "A")
    assert n is not None
    assert (n.change, n.start, n.end) == (ChangeType.DELETION, 117559590, 117559593)
    assert n.spdi == "NC_000007.14:117559590:TCT:"
    assert n.hgvs == "NC_000007.14:g.117559591_117559593del"


def test_single_base_deletion() -> None:
    n = describe(CHR1, 200, "GA", "G")
    assert n is not None
    assert (n.spdi, n.hgvs) == ("NC_000001.11:200:A:", "NC_000001.11:g.201del")


def test_insertion_spans_its_anchor_base() -> None:
    n = describe(CHR1, 1000, "A", "ATG")
    assert n is not None
    assert (n.change, n.start, n.end) == (ChangeType.INSERTION, 1000, 1000)
    assert n.spdi == "NC_000001.11:1000::TG"
    assert n.hgvs == "NC_000001.11:g.1000_1001insTG"


def test_duplication_only_when_the_anchor_proves_it() -> None:
    n = describe(CHR1, 500, "CAG", "CAGAG")
    assert n is not None
    assert (n.change, n.hgvs) == (ChangeType.DUPLICATION, "NC_000001.11:g.501_502dup")
    assert n.spdi == "NC_000001.11:502::AG"
    single = describe(CHR1, 500, "A", "AA")
    assert single is not None
    assert (single.change, single.hgvs) == (ChangeType.DUPLICATION, "NC_000001.11:g.500dup")


def test_delins() -> None:
    n = describe(CHR1, 300, "ATG", "AC")
    assert n is not None
    assert (n.change, n.start, n.end) == (ChangeType.DELINS, 300, 302)
    assert n.spdi == "NC_000001.11:300:TG:C"
    assert n.hgvs == "NC_000001.11:g.301_302delinsC"


def test_multi_base_anchor_of_a_multiallelic_record() -> None:
    """REF ACGT, ALT ACT: prefix AC then suffix T are trimmed, leaving one deleted G."""
    n = describe(CHR1, 400, "ACGT", "ACT")
    assert n is not None
    assert (n.change, n.start, n.end) == (ChangeType.DELETION, 400, 403)
    assert (n.spdi, n.hgvs) == ("NC_000001.11:401:G:", "NC_000001.11:g.402del")


def test_lowercase_alleles_are_read_as_bases() -> None:
    n = describe(CHR1, 10, "a", "g")
    assert n is not None
    assert n.hgvs == "NC_000001.11:g.10A>G"


def test_insertion_before_the_first_base_has_no_hgvs() -> None:
    n = describe(CHR1, 1, "A", "TA")
    assert n is not None
    assert (n.change, n.spdi, n.hgvs) == (ChangeType.INSERTION, "NC_000001.11:0::T", None)


@pytest.mark.parametrize(("ref", "alt"), [("A", "*"), ("A", "<DEL>"), ("A", "A"), ("N", "A")])
def test_non_sequence_alleles_have_no_notation(ref: str, alt: str) -> None:
    assert describe(CHR1, 10, ref, alt) is None


def test_precise_symbolic_deletion_spans_the_deleted_bases() -> None:
    sv = StructuralVariant(SvType.DEL, end=2000)
    n = describe_structural(CHR1, "1", 1000, sv, 2)
    assert (n.change, n.start, n.end, n.outer) == (ChangeType.DELETION, 1001, 2000, None)
    assert (n.spdi, n.hgvs) == (None, "NC_000001.11:g.1001_2000del")


def test_imprecise_deletion_has_inner_and_outer_ranges() -> None:
    sv = StructuralVariant(SvType.DEL, end=2000, ci_pos=(-10, 10), ci_end=(-20, 20))
    n = describe_structural(CHR1, "1", 1000, sv, 2)
    assert (n.outer, n.inner) == ((991, 2020), (1011, 1980))
    assert n.hgvs == "NC_000001.11:g.(991_1011)_(1980_2020)del"


def test_overlapping_confidence_intervals_leave_no_inner_range() -> None:
    sv = StructuralVariant(SvType.DUP, end=1005, ci_pos=(-50, 50), ci_end=(-50, 50))
    n = describe_structural(CHR1, "1", 1000, sv, 2)
    assert (n.change, n.inner, n.outer) == (ChangeType.DUPLICATION, None, (951, 1055))


def test_precise_inversion() -> None:
    n = describe_structural(CHR1, "1", 99, StructuralVariant(SvType.INV, end=200), 2)
    assert (n.change, n.hgvs) == (ChangeType.INVERSION, "NC_000001.11:g.100_200inv")


@pytest.mark.parametrize(
    ("copies", "normal", "change"),
    [
        (3.0, 2, ChangeType.COPY_NUMBER_GAIN),
        (1.0, 2, ChangeType.COPY_NUMBER_LOSS),
        (2.0, 2, ChangeType.COPY_NUMBER_VARIATION),
        (2.0, 1, ChangeType.COPY_NUMBER_GAIN),
        (3.0, None, ChangeType.COPY_NUMBER_VARIATION),
    ],
)
def test_copy_number_gain_or_loss_needs_the_normal_ploidy(
    copies: float, normal: int | None, change: ChangeType
) -> None:
    sv = StructuralVariant(SvType.CNV, end=5000, copy_number=copies)
    n = describe_structural(CHR1, "1", 1000, sv, normal)
    assert (n.change, n.hgvs, n.start, n.end) == (change, None, 1001, 5000)


def test_breakend_to_another_chromosome_is_a_translocation() -> None:
    sv = StructuralVariant(SvType.BND, end=321681, mate="G]2:321682]")
    n = describe_structural(CHR1, "1", 321681, sv, 2)
    assert (n.change, n.start, n.end, n.hgvs) == (ChangeType.TRANSLOCATION, 321681, 321681, None)
    same = StructuralVariant(SvType.BND, end=1, mate="G]chr1:900000]")
    assert describe_structural(CHR1, "1", 1000, same, 2).change is ChangeType.STRUCTURAL_ALTERATION


def test_symbolic_insertion_spans_the_padding_base() -> None:
    n = describe_structural(CHR1, "1", 700, StructuralVariant(SvType.INS, end=700), 2)
    assert (n.change, n.start, n.end, n.hgvs) == (ChangeType.INSERTION, 700, 700, None)


@pytest.mark.parametrize(
    ("chromosome", "male", "expected"),
    [("7", None, 2), ("X", True, 1), ("X", False, 2), ("X", None, None), ("Y", True, 1),
     ("Y", False, None), ("M", True, None)],
)  # fmt: skip
def test_ploidy(chromosome: str, male: bool | None, expected: int | None) -> None:
    assert ploidy(chromosome, male) == expected


def slow_describe(
    acc: str, pos: int, ref: str, alt: str
) -> tuple[str, int, int, str, str | None] | None:
    """The module's rules spelled out plainly: the oracle the C ``describe`` must match."""
    ref, alt = (ref.upper(), alt.upper()) if ref.isascii() and alt.isascii() else ("", "")
    if not re.fullmatch("[ACGTN]+", ref) or not re.fullmatch("[ACGTN]+", alt) or ref == alt:
        return None
    if len(ref) == len(alt) == 1:
        if "N" in ref + alt:
            return None
        return "SNV", pos, pos, f"{acc}:{pos - 1}:{ref}:{alt}", f"{acc}:g.{pos}{ref}>{alt}"
    prefix = _shared(ref, alt)
    deleted, inserted = ref[prefix:], alt[prefix:]
    suffix = _shared(deleted[::-1], inserted[::-1])
    deleted, inserted = deleted[: len(deleted) - suffix], inserted[: len(inserted) - suffix]
    first, last = pos + prefix, pos + prefix + len(deleted) - 1
    span = f"{first}" if first == last else f"{first}_{last}"
    if not inserted:
        change, hgvs = "deletion", f"{span}del"
    elif not deleted and len(inserted) <= prefix and ref[:prefix].endswith(inserted):
        start = first - len(inserted)
        change = "duplication"
        hgvs = f"{start}dup" if len(inserted) == 1 else f"{start}_{first - 1}dup"
    elif not deleted:
        change, hgvs = "insertion", f"{first - 1}_{first}ins{inserted}" if first > 1 else ""
    elif inserted == deleted[::-1].translate(str.maketrans("ACGTN", "TGCAN")):
        change, hgvs = "inversion", f"{span}inv"
    else:
        change = "MNV" if len(deleted) == len(inserted) else "delins"
        hgvs = f"{span}delins{inserted}"
    spdi = f"{acc}:{first - 1}:{deleted}:{inserted}"
    return change, pos, pos + len(ref) - 1, spdi, f"{acc}:g.{hgvs}" if hgvs else None


def _shared(a: str, b: str) -> int:
    """The length of the common start of two strings."""
    return sum(1 for _ in takewhile(lambda pair: pair[0] == pair[1], zip(a, b, strict=False)))


@given(
    st.integers(1, 2**31),
    st.text("ACGTNacgtn*<>.ß", min_size=1, max_size=12),
    st.text("ACGTNacgtn*<>.ß", min_size=1, max_size=12),
)
def test_describe_follows_the_rules_for_any_alleles(pos: int, ref: str, alt: str) -> None:
    found = describe(CHR1, pos, ref, alt)
    assert (None if found is None else tuple(found[:5])) == slow_describe(CHR1, pos, ref, alt)


@pytest.mark.parametrize(("ref", "alt"), [("CAG", "CAGCAG"), ("ACGT", "ACGTACGT"), ("AT", "AAT")])
def test_describe_follows_the_rules_on_repeats(ref: str, alt: str) -> None:
    found = describe(CHR1, 1000, ref, alt)
    assert found is not None
    assert tuple(found[:5]) == slow_describe(CHR1, 1000, ref, alt)
