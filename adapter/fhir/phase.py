"""Phase relationships as the IG's sequence-phase-relationship Observations, and compound
heterozygotes as genotype Observations.

Shaped as the IG's examples: bundle-sequence-phase-relation-CYP2C19 (allelic phase, valued
Cis or Trans, derived from both Variants) and, for two pathogenic or likely pathogenic
alleles in trans in one gene, bundle-compound-heterozygote: a genotype named in HGVS allele
notation (``NM_022787.3(NMNAT1):c.[53A>G];[769G>A]``: the brackets apart mean trans). As
the genotype profile's derivedFrom:variant slice and its examples GenotypeExamplePharmVar and
Pgx-geno-1001 do, the genotype is derived from its Variants and names its gene.
"""

from __future__ import annotations

from typing import Any

from ..model import AnalysisContext, Finding, FindingKind
from ..phasing import PhasedAllele, PhaseRelation
from .codes import HGNC, concept, profile, slices
from .identifiers import IdFactory, identifier, internal, observed
from .variant import _qualified

__all__ = ["PhaseRelationships"]


class PhaseRelationships:
    """Builds the phase Observations of one conversion: what they share (subject, times,
    categories, codes) is made once."""

    def __init__(self, ctx: AnalysisContext) -> None:
        self._ids = IdFactory(ctx)
        self._shared: dict[str, Any] = {
            "status": "final",
            "category": [concept("category", "laboratory"), concept("category", "genetics")],
        }
        self._observed = observed(ctx)
        self._phase = _kind("sequence-phase-relationship")
        self._genotype = _kind("genotype")
        self._values = {r: concept("phase-relationship", r) for r in ("Cis", "Trans")}

    def observation(self, relation: PhaseRelation) -> dict[str, Any]:
        """The sequence-phase-relationship of the two Variants ``relation`` relates."""
        a, b = relation.first.variant_id, relation.second.variant_id
        obs = self._observation(self._phase, f"phase|{a}|{b}")
        obs["valueCodeableConcept"] = self._values[relation.relation]
        obs["derivedFrom"] = [internal("Observation", a), internal("Observation", b)]
        return obs

    def genotype(self, relation: PhaseRelation) -> dict[str, Any] | None:
        """The compound heterozygous genotype ``relation`` shows, or None if it shows none."""
        if not relation.compound_heterozygous:
            return None
        first, second = relation.first, relation.second
        key = f"compound-heterozygote|{first.variant_id}|{second.variant_id}"
        obs = self._observation(self._genotype, key)
        obs["valueCodeableConcept"] = {"text": _genotype_name(first, second)}
        obs["derivedFrom"] = [
            {**internal("Observation", a.variant_id), "display": _name(a)} for a in (first, second)
        ]
        obs["component"] = [_gene_studied(first)]
        return obs

    def resources(self, relation: PhaseRelation) -> tuple[list[dict[str, Any]], Finding | None]:
        """The relation's Observation, and for a compound heterozygote its genotype and the
        conclusion's finding, about the genotype, the relation and both Variants."""
        made = [self.observation(relation)]
        genotype = self.genotype(relation)
        sentence = self.conclusion(relation)
        if genotype is None or sentence is None:
            return made, None
        made.append(genotype)
        variants = (relation.first.variant_id, relation.second.variant_id)
        about = (genotype["id"], made[0]["id"], *variants)
        return made, Finding(FindingKind.COMPOUND_HETEROZYGOTE, sentence, about)

    @staticmethod
    def conclusion(relation: PhaseRelation) -> str | None:
        """The report's sentence on a compound heterozygote (None for other relations)."""
        if not relation.compound_heterozygous:
            return None
        a, b = relation.first, relation.second
        return (
            f"{a.gene}: compound heterozygous, {_name(a)} ({a.tier}) and "
            f"{_name(b)} ({b.tier}) are in trans."
        )

    def _observation(self, kind: tuple[dict[str, Any], dict[str, Any]], key: str) -> dict[str, Any]:
        """The elements both kinds share, in the order the IG's examples give them."""
        meta, code = kind
        rid = self._ids.resource(key)
        return {
            "resourceType": "Observation",
            "id": rid,
            "meta": meta,
            "identifier": [identifier(rid)],
            **self._shared,
            "code": code,
            **self._observed,
        }


def _kind(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The profile and code of an Observation kind, shared by every one made."""
    return {"profile": [profile(name)]}, concept("resource-code", name)


def _name(allele: PhasedAllele) -> str:
    """The allele for people: its c.HGVS with the transcript, else where it lies."""
    if allele.hgvs_c:
        return _qualified(allele.hgvs_c, allele.transcript)
    return f"chr{allele.chromosome}:{allele.position}"


def _genotype_name(first: PhasedAllele, second: PhasedAllele) -> str:
    """HGVS allele notation when both changes are on one transcript, else in words."""
    sequence, _, a = _name(first).partition(":c.")
    other, _, b = _name(second).partition(":c.")
    if a and b and sequence == other:
        return f"{sequence}({first.gene}):c.[{a}];[{b}]"
    return f"{first.gene}: {_name(first)} in trans with {_name(second)}"


def _gene_studied(allele: PhasedAllele) -> dict[str, Any]:
    """The gene, HGNC-coded when its id is known, as the genotype examples state it."""
    part = slices()["gene-studied"]
    value: dict[str, Any]
    if allele.hgnc_id:
        value = {"coding": [{"system": HGNC, "code": allele.hgnc_id, "display": allele.gene}]}
    else:
        value = {"text": allele.gene}
    return {"code": part.concept(), part.value_key: value}
