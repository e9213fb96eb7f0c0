"""Phase relationships between the phased calls of one sample: which ALT alleles lie on the
same haplotype (cis) and which on different ones (trans).

A phased GT (``0|1``) says which haplotype carries each allele; two alleles can be compared
only within one phase set (FORMAT ``PS``; a phased GT without PS belongs, as the VCF
specification says, to the one phase set of all such GTs on its chromosome). Relations are
kept within one gene, where cis or trans has a clinical meaning: two heterozygous
pathogenic or likely pathogenic alleles in trans in one gene are a compound heterozygote,
biallelic as a recessive disease needs.

:class:`PhaseTracker` reads alleles in file order and holds only the blocks the file has not
yet moved past, so a whole genome passes through it in little memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, Literal

from .errors import MalformedRecordError
from .model import ClinicalSignificance, VariantCall

__all__ = [
    "DEFAULT_REACH",
    "PhaseRelation",
    "PhaseTracker",
    "PhasedAllele",
    "Relation",
    "phased_allele",
]

#: How far (bases) the file may move past a block's last allele before the block closes:
#: more than the longest human genes span (DMD, CNTNAP2: about 2.2-2.3 Mb), so no two
#: alleles of one gene are ever kept apart.
DEFAULT_REACH: Final = 2_500_000

#: The sequence-phase-relationship codes the tracker states (the IG's CodeSystem also has
#: Indeterminate and Unknown, which a phased GT never gives).
Relation = Literal["Cis", "Trans"]

_DISEASE: Final = frozenset(
    {ClinicalSignificance.PATHOGENIC, ClinicalSignificance.LIKELY_PATHOGENIC}
)
#: Alleles a clinician weighs together: each is related to every other one of its block.
_NOTABLE: Final = _DISEASE | {ClinicalSignificance.UNCERTAIN_SIGNIFICANCE}


@dataclass(frozen=True, slots=True)
class PhasedAllele:
    """What phasing needs of one phased ALT allele: small, so workers can send it on."""

    variant_id: str  # the id of the allele's Variant Observation
    chromosome: str  # normalised, as VariantCall.chromosome
    position: int  # VCF POS
    phase_set: int | None  # FORMAT PS; None: absent, the block is the whole chromosome
    haplotypes: tuple[int, ...]  # the GT's haplotypes carrying this ALT: "1|0" -> (0,)
    gene: str | None  # gene symbol of the primary transcript consequence
    tier: ClinicalSignificance | None  # the allele's five-tier class, when known
    ploidy: int = 2  # haplotypes in the GT ("0|1": 2)
    hgnc_id: str | None = None  # e.g. "HGNC:17877"
    transcript: str | None = None  # the primary transcript, e.g. "NM_022787.3"
    hgvs_c: str | None = None  # its c.HGVS as the annotation tool wrote it

    @property
    def homozygous(self) -> bool:
        """Carried on every haplotype: cis with every allele, trans with none."""
        return len(self.haplotypes) >= self.ploidy


@dataclass(frozen=True, slots=True)
class PhaseRelation:
    """The phase of two alleles of one gene and phase set, ``first`` earlier in the file."""

    first: PhasedAllele
    second: PhasedAllele
    relation: Relation

    @property
    def compound_heterozygous(self) -> bool:
        """Two heterozygous pathogenic or likely pathogenic alleles in trans in one gene."""
        return (
            self.relation == "Trans"
            and self.first.tier in _DISEASE
            and self.second.tier in _DISEASE
        )


def phased_allele(
    call: VariantCall, variant_id: str, classification: ClinicalSignificance | None = None
) -> PhasedAllele | None:
    """The phasing record of ``call`` (None when its GT is not phased).

    ``classification`` is the lab's own class of the allele, which decides over ClinVar's.
    """
    if not call.phased:
        return None
    alleles = call.genotype.split("|")
    mine = str(call.alt_index)
    haplotypes = tuple(i for i, allele in enumerate(alleles) if allele == mine)
    if not haplotypes:
        raise MalformedRecordError(
            f"the phased genotype {call.genotype!r} does not carry ALT {call.alt_index} "
            f"({call.alt}) on any haplotype; a phased GT separates its alleles with '|' "
            "(e.g. 0|1): correct the GT or leave the call unphased",
            line=call.line,
            field="GT",
        )
    primary = call.annotation.primary if call.annotation is not None else None
    tier = classification or (call.clinvar.tier if call.clinvar is not None else None)
    return PhasedAllele(
        variant_id,
        call.chromosome,
        call.pos,
        call.phase_set,
        haplotypes,
        primary.gene_symbol if primary is not None else None,
        tier,
        len(alleles),
        primary.hgnc_id if primary is not None else None,
        primary.transcript if primary is not None else None,
        primary.hgvs_c if primary is not None else None,
    )


@dataclass(slots=True)
class _Block:
    """The open alleles of one phase set and gene: the latest, and the notable ones."""

    last: PhasedAllele
    notable: list[PhasedAllele] = field(default_factory=list)


class PhaseTracker:
    """Relates the phased alleles of a file, given in file order, as they arrive.

    Which pairs: alleles of one chromosome, phase set and gene. Each allele is related to
    the allele before it in its block, so the phase of any two follows along that chain
    (cis then trans is trans), and every pathogenic, likely pathogenic or uncertain allele
    to every earlier such allele of its block, so the pairs a clinician weighs (a compound
    heterozygote above all) are stated directly. Relating every pair would grow with the
    square of a gene's variants, millions of Observations for a large gene in a genome.

    Not related: alleles without a gene, homozygous alleles (carried on every haplotype,
    they are cis with everything and add nothing the allelic state does not say), and, in
    polyploid GTs, alleles sharing some haplotypes but not all.

    Memory: a block closes and is dropped when the chromosome changes, or at the first sweep
    after the file is ``reach`` bases past its last allele; sweeps run once every ``reach``
    bases, so only the blocks of the last ``2 * reach`` bases are held, each with its
    latest allele and its notable ones. The file must be sorted, as indexed VCFs are.
    """

    def __init__(self, reach: int = DEFAULT_REACH) -> None:
        self.reach = reach
        self._chromosome: str | None = None
        self._swept = 0
        self._blocks: dict[tuple[int | None, str], _Block] = {}

    @property
    def open_blocks(self) -> int:
        """Blocks still held: what the memory bound bounds."""
        return len(self._blocks)

    def relate(self, alleles: Iterable[PhasedAllele]) -> Iterator[PhaseRelation]:
        """The relations of ``alleles`` (in file order), each as soon as it is known."""
        for allele in alleles:
            yield from self.add(allele)

    def add(self, allele: PhasedAllele) -> list[PhaseRelation]:
        """The relations ``allele`` has with the open alleles before it, earliest first."""
        self._advance(allele)
        if allele.gene is None or allele.homozygous:
            return []
        key = (allele.phase_set, allele.gene)
        block = self._blocks.get(key)
        if block is None:
            self._blocks[key] = _Block(allele, [allele] if _notable(allele) else [])
            return []
        partners = list(block.notable) if _notable(allele) else []
        if not partners or partners[-1] is not block.last:
            partners.append(block.last)
        found = [
            PhaseRelation(other, allele, relation)
            for other in partners
            if (relation := _phase(other, allele)) is not None
        ]
        block.last = allele
        if _notable(allele):
            block.notable.append(allele)
        return found

    def _advance(self, allele: PhasedAllele) -> None:
        """Close the blocks the file has moved past: another chromosome, or out of reach."""
        if allele.chromosome != self._chromosome:
            self._blocks.clear()
            self._chromosome, self._swept = allele.chromosome, allele.position
        elif allele.position - self._swept > self.reach:
            horizon = allele.position - self.reach
            self._blocks = {k: b for k, b in self._blocks.items() if b.last.position >= horizon}
            self._swept = allele.position


def _notable(allele: PhasedAllele) -> bool:
    return allele.tier in _NOTABLE


def _phase(a: PhasedAllele, b: PhasedAllele) -> Relation | None:
    """Cis on the same haplotypes, trans on none in common, else nothing to state."""
    if a.haplotypes == b.haplotypes:
        return "Cis"
    if set(a.haplotypes).isdisjoint(b.haplotypes):
        return "Trans"
    return None
