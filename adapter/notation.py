"""Variant notation derived from VCF alleles: SPDI, genomic HGVS and the DNA change type.

Coordinates follow one rule throughout the adapter's Variant Observations:

* ``start``/``end`` are 1-based and inclusive (LOINC LA30102-0, "1-based character
  counting") and span the REF allele *as written in the VCF*, anchor base included:
  ``POS .. POS + len(REF) - 1``. The ref-allele and alt-allele components carry REF and ALT
  as written, so the range and the ref-allele always describe the same bases. An insertion
  therefore spans its anchor base(s); the inserted bases follow them.
* Symbolic structural variants (``<DEL>``, ``<DUP>``, ``<INV>``, ``<CNV>``) span the
  affected bases ``POS + 1 .. END`` (POS is the padding base before the event); ``<INS>``
  and breakends span the padding base ``POS``.
* SPDI and HGVS are derived from the trimmed alleles: the shared prefix is removed first,
  then the shared suffix. SPDI positions are 0-based interbase. Without the reference
  sequence, an indel inside a repeat is neither VOCA-expanded (SPDI) nor shifted to its
  3'-most position (HGVS); a duplication is only called when the alleles themselves prove
  it (the inserted bases equal the anchor bases just before the insertion).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple

from . import _native
from .model import StructuralVariant, SvType

__all__ = ["ChangeType", "Notation", "describe", "describe_structural", "ploidy"]

_DIPLOID = 2


class ChangeType(StrEnum):
    """DNA change types, named by their Sequence Ontology labels."""

    SNV = "SNV"
    MNV = "MNV"
    DELETION = "deletion"
    INSERTION = "insertion"
    DELINS = "delins"
    DUPLICATION = "duplication"
    INVERSION = "inversion"
    COPY_NUMBER_VARIATION = "copy_number_variation"
    COPY_NUMBER_GAIN = "copy_number_gain"
    COPY_NUMBER_LOSS = "copy_number_loss"
    TRANSLOCATION = "translocation"
    STRUCTURAL_ALTERATION = "structural_alteration"


class Notation(NamedTuple):
    """How one allele is described; ranges are 1-based inclusive (see the module doc).

    A NamedTuple, not a frozen dataclass: it is built once per variant on the hot path.
    """

    change: ChangeType
    start: int
    end: int
    spdi: str | None = None
    hgvs: str | None = None
    #: narrowest and widest ranges for imprecise structural variants, else None
    inner: tuple[int, int] | None = None
    outer: tuple[int, int] | None = None


def describe(accession: str, pos: int, ref: str, alt: str) -> Notation | None:
    """SPDI, g.HGVS and change type of one sequence allele; None for non-sequence alleles.

    The work is done in C (``describe`` in adapter/_native.c), on the hot path of every
    variant; the rules are the module's: trim the shared prefix, then the shared suffix; an
    insertion is a dup when the anchor bases prove it; same-length changes are an inversion
    when the inserted bases are the reverse complement of the deleted ones, else an MNV (or
    an SNV for one base). An insertion before the first base has no g.HGVS.
    """
    found = _native.describe(accession, pos, ref, alt)
    if found is None:
        return None
    change, start, end, spdi, hgvs = found
    return Notation(ChangeType(change), start, end, spdi, hgvs)


_SV_CHANGE = {
    SvType.DEL: ChangeType.DELETION,
    SvType.DUP: ChangeType.DUPLICATION,
    SvType.INS: ChangeType.INSERTION,
    SvType.INV: ChangeType.INVERSION,
    SvType.CNV: ChangeType.COPY_NUMBER_VARIATION,
}
_SV_HGVS = {SvType.DEL: "del", SvType.DUP: "dup", SvType.INV: "inv"}
_MATE_CHROM = re.compile(r"[\[\]]([^\[\]:]+):\d+[\[\]]")


def describe_structural(
    accession: str, chromosome: str, pos: int, sv: StructuralVariant, ploidy: int | None
) -> Notation:
    """Change type, ranges and g.HGVS of a symbolic SV or breakend.

    ``ploidy`` (normal copies of the region, None when unknown) turns a ``<CNV>`` with a
    copy number into a gain or a loss. Outer = widest span the confidence intervals allow,
    inner = narrowest (omitted when the intervals overlap so far that it would be empty).
    """
    if sv.sv_type in (SvType.BND, SvType.INS):
        start = end = pos
    else:
        start, end = pos + 1, sv.end
    low_pos, high_pos = sv.ci_pos or (0, 0)
    low_end, high_end = sv.ci_end or (0, 0)
    inner: tuple[int, int] | None = None
    outer: tuple[int, int] | None = None
    if (low_pos, high_pos, low_end, high_end) != (0, 0, 0, 0):
        outer = (max(1, start + low_pos), end + high_end)
        if start + high_pos <= end + low_end:
            inner = (start + high_pos, end + low_end)
    hgvs = _sv_hgvs(accession, sv, start, end)
    change = _sv_change(chromosome, sv, ploidy)
    return Notation(change, start, end, None, hgvs, inner, outer)


def _sv_change(chromosome: str, sv: StructuralVariant, ploidy: int | None) -> ChangeType:
    """SO change type of an SV; a breakend to another chromosome is a translocation."""
    if sv.sv_type is SvType.BND:
        mate = _MATE_CHROM.search(sv.mate or "")
        if mate and mate.group(1).removeprefix("chr") != chromosome.removeprefix("chr"):
            return ChangeType.TRANSLOCATION
        return ChangeType.STRUCTURAL_ALTERATION
    if sv.sv_type is SvType.CNV and sv.copy_number is not None and ploidy is not None:
        if sv.copy_number > ploidy:
            return ChangeType.COPY_NUMBER_GAIN
        if sv.copy_number < ploidy:
            return ChangeType.COPY_NUMBER_LOSS
    return _SV_CHANGE[sv.sv_type]


def _sv_hgvs(accession: str, sv: StructuralVariant, start: int, end: int) -> str | None:
    """g.HGVS of a DEL, DUP or INV, with uncertain breakpoints in parentheses."""
    suffix = _SV_HGVS.get(sv.sv_type)
    if suffix is None or end < start or (sv.sv_type is SvType.INV and end == start):
        return None
    first = _uncertain(start, sv.ci_pos)
    last = _uncertain(end, sv.ci_end)
    span = first if (first == last and start == end) else f"{first}_{last}"
    return f"{accession}:g.{span}{suffix}"


def _uncertain(position: int, ci: tuple[int, int] | None) -> str:
    """A position, or ``(low_high)`` when a confidence interval makes it uncertain."""
    if not ci or ci == (0, 0):
        return str(position)
    return f"({max(1, position + ci[0])}_{position + ci[1]})"


def ploidy(chromosome: str, male: bool | None) -> int | None:
    """Normal copy number of a chromosome: 2 for autosomes, by sex for X and Y."""
    if chromosome == "X":
        return None if male is None else (1 if male else _DIPLOID)
    if chromosome == "Y":
        return 1 if male else None
    if chromosome == "M":
        return None
    return _DIPLOID
