"""therapeutic-implication Observations: what a knowledge rule says of a finding.

Each is derived from the finding it was matched on (a biomarker here) and shaped as the IG's
examples TMB-therapuDrug and EGFR-L858R-therapuDrug1: the predicted effect, the treatment
context, the medication assessed and the level of evidence, with the rule's source cited.
"""

from __future__ import annotations

from typing import Any

from ..model import AnalysisContext, ClinVarAssertion, TranscriptConsequence
from ..readers.annotations import sequence_ontology
from ..readers.knowledge import ActionabilityRule, KnowledgeBase
from .codes import ENSEMBL, HGVS, REFSEQ, coding, concept, effective_time, instant, profile
from .identifiers import (
    IdFactory,
    identifier,
    internal,
    patient_reference,
    performer_reference,
)

__all__ = ["diagnostic_implication", "molecular_consequence", "therapeutic_implication"]

_CITATION = profile("workflow-relatedArtifactComponent")
LOINC = "http://loinc.org"
SO = "http://www.sequenceontology.org"
_CLINVAR = {"type": "citation", "label": "ClinVar", "url": "https://www.ncbi.nlm.nih.gov/clinvar/"}


def therapeutic_implication(
    ctx: AnalysisContext, knowledge: KnowledgeBase, rule: ActionabilityRule, finding: str
) -> dict[str, Any]:
    """The implication of ``rule`` for the Observation whose id is ``finding``."""
    obs = _implication(ctx, "therapeutic-implication", f"{finding}|{rule.line}", finding)
    obs["component"] = _components(knowledge, rule)
    return obs


def _implication(ctx: AnalysisContext, kind: str, key: str, finding: str) -> dict[str, Any]:
    """The elements implications share, derived from the Observation ``finding``."""
    rid = IdFactory(ctx).resource(f"{kind}|{key}")
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "meta": {"profile": [profile(kind)]},
        "identifier": [identifier(rid)],
        "status": "final",
        "category": [concept("category", "laboratory"), concept("category", "genetics")],
        "code": concept("resource-code", kind),
        "subject": patient_reference(ctx.patient),
    }
    optional = {
        "effectiveDateTime": effective_time(ctx.file_date, ctx.issued),
        "issued": instant(ctx.issued),
        "performer": [p] if (p := performer_reference(ctx)) else None,
    }
    obs.update((k, v) for k, v in optional.items() if v is not None)
    obs["derivedFrom"] = [internal("Observation", finding)]
    return obs


def diagnostic_implication(
    ctx: AnalysisContext, variant: str, clinvar: ClinVarAssertion
) -> dict[str, Any]:
    """ClinVar's classification of the Variant whose id is ``variant``, as a
    diagnostic-implication: significance (the ACMG tier's LOINC answer, else ClinVar's own
    words), review status as the level of evidence, and the conditions; ClinVar cited as the
    source that decided."""
    obs = _implication(ctx, "diagnostic-implication", f"clinvar|{variant}", variant)
    significance: dict[str, Any] = {"text": clinvar.significance}
    if clinvar.tier is not None and clinvar.answer_code:
        tier = {"system": LOINC, "code": clinvar.answer_code, "display": clinvar.tier.value}
        significance = {"coding": [tier]}
    decided = _part("clinical-significance", significance)
    decided["extension"] = [{"url": _CITATION, "valueRelatedArtifact": _CLINVAR}]
    parts = [decided]
    if clinvar.review_status:
        stars = "" if clinvar.stars is None else f" ({clinvar.stars} of 4 stars)"
        parts.append(_part("evidence-level", {"text": f"ClinVar: {clinvar.review_status}{stars}"}))
    parts += [_part("predicted-phenotype", {"text": c.name}) for c in clinvar.conditions if c.name]
    obs["component"] = parts
    return obs


def molecular_consequence(
    ctx: AnalysisContext, variant: str, consequence: TranscriptConsequence, order: int
) -> dict[str, Any]:
    """One transcript consequence of the Variant whose id is ``variant`` (``order``: its
    place among the allele's consequences, for a stable id): transcript, c. and p. HGVS
    where they name their reference sequence, and the Sequence Ontology terms."""
    key = f"{variant}|{order}|{consequence.transcript or ''}"
    obs = _implication(ctx, "molecular-consequence", key, variant)
    parts = []
    transcript = consequence.transcript
    if transcript:
        system = ENSEMBL if transcript.startswith("ENS") else REFSEQ
        parts.append(_coded("transcript-ref-seq", system, transcript))
    if consequence.hgvs_c:
        hgvs_c = consequence.hgvs_c
        if ":" not in hgvs_c and transcript:
            hgvs_c = f"{transcript}:{hgvs_c}"
        if ":" in hgvs_c:
            parts.append(_coded("coding-hgvs", HGVS, hgvs_c))
    if consequence.hgvs_p and ":" in consequence.hgvs_p:
        parts.append(_coded("protein-hgvs", HGVS, consequence.hgvs_p))
    for term in consequence.consequences:
        found = sequence_ontology(term)
        value = (
            {"coding": [{"system": SO, "code": found[0], "display": found[1]}]}
            if found
            else {"text": term}
        )
        parts.append(_part("feature-consequence", value, "consequence-component"))
    if parts:
        obs["component"] = parts
    return obs


def _coded(name: str, system: str, code: str) -> dict[str, Any]:
    value = {"coding": [{"system": system, "code": code}]}
    return _part(name, value, "consequence-component")


def _components(knowledge: KnowledgeBase, rule: ActionabilityRule) -> list[dict[str, Any]]:
    effect = {**concept("therapeutic-effect", rule.effect), "text": _statement(rule)}
    parts = [
        _part("therapeutic-implication", effect),
        _part("treatment-context", {"text": rule.condition}),
        _part("medication-assessed", {"text": rule.medication}),
    ]
    if rule.evidence:
        parts.append(_part("evidence-level", {"text": rule.evidence}))
    if rule.source:  # cited on the statement, as the IG's examples do
        cited = {"type": "citation", "label": knowledge.label(), "url": rule.source}
        parts[0]["extension"] = [{"url": _CITATION, "valueRelatedArtifact": cited}]
    return parts


def _part(name: str, value: dict[str, Any], group: str = "implication-component") -> dict[str, Any]:
    code = coding(group, name)
    return {"code": {"coding": [code]}, "valueCodeableConcept": value}


def _statement(rule: ActionabilityRule) -> str:
    """E.g. ``MSI-H: Colorectal cancer responsive to pembrolizumab``."""
    what = f"{rule.gene} {rule.alteration}" if rule.gene else rule.alteration
    effect = rule.effect.replace("-", " ")
    return f"{what}: {rule.condition} {effect} to {rule.medication}"
