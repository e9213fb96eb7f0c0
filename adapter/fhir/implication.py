"""Implications: what is known of a finding, each an Observation derived from it.

* therapeutic-implication: what a knowledge rule says of a biomarker, shaped as the IG's
  examples TMB-therapuDrug and EGFR-L858R-therapuDrug1 (predicted effect, treatment context,
  medication assessed, level of evidence, the rule's source cited);
* diagnostic-implication: the lab's own classification of a Variant, else ClinVar's (example
  ATR-insertion-significance), the source that decided cited on the significance;
* molecular-consequence: one transcript consequence of a Variant.

Pathogenic and likely pathogenic classifications and therapeutic implications are also
findings (:class:`~adapter.model.Finding`): sentences of the report's conclusion.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any, Final, NamedTuple

from ..model import (
    AnalysisContext,
    ClinicalSignificance,
    ClinVarAssertion,
    ClinVarCondition,
    CodedTerm,
    Finding,
    FindingKind,
    LabClassification,
    ReportedClassification,
    TranscriptConsequence,
    VariantCall,
)
from ..readers.annotations import sequence_ontology
from ..readers.knowledge import ActionabilityRule, KnowledgeBase
from .codes import ENSEMBL, HGVS, REFSEQ, coding, concept, profile
from .identifiers import (
    IdFactory,
    identifier,
    observed,
)

__all__ = [
    "CLINVAR",
    "ConsequenceShape",
    "Implications",
    "diagnostic_finding",
    "term_concept",
    "therapeutic_finding",
]

_CITATION = profile("workflow-relatedArtifactComponent")
LOINC = "http://loinc.org"
SO = "http://www.sequenceontology.org"
#: how the analysis and the conclusion name ClinVar as the source that decided
CLINVAR: Final = "ClinVar"
_CLINVAR = {"type": "citation", "label": CLINVAR, "url": "https://www.ncbi.nlm.nih.gov/clinvar/"}
#: MONDO, as the IG's examples obs-idh-ex and bundle-cgexample code conditions
MONDO: Final = "http://purl.obolibrary.org/obo/mondo.owl"
_MONDO_ID = re.compile(r"MONDO:[0-9]{7}").fullmatch
#: the classes a conclusion reports
_DISEASE: Final = frozenset(
    {ClinicalSignificance.PATHOGENIC, ClinicalSignificance.LIKELY_PATHOGENIC}
)


class ConsequenceShape(NamedTuple):
    """What a molecular-consequence holds, but for its values."""

    system: str | None  # the transcript's (RefSeq or Ensembl); None: no transcript
    coding: bool  # has a c.HGVS that names its reference sequence
    protein: bool  # has a p.HGVS that does
    terms: tuple[str, ...]  # Sequence Ontology terms


class Implications:
    """Builds the implications of one conversion: what they share (subject, times,
    categories, codes) is made once, not per implication."""

    def __init__(self, ctx: AnalysisContext) -> None:
        self._ctx = ctx
        self._ids = IdFactory(ctx)
        self._kinds: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        shared: dict[str, Any] = {
            "status": "final",
            "category": [concept("category", "laboratory"), concept("category", "genetics")],
        }
        self._shared = shared
        self._after_code = observed(ctx)

    def therapeutic(
        self, knowledge: KnowledgeBase, rule: ActionabilityRule, finding: str
    ) -> dict[str, Any]:
        """The implication of ``rule`` for the Observation whose id is ``finding``."""
        rid = self._ids.resource(f"therapeutic-implication|{finding}|{rule.line}")
        obs = self._implication("therapeutic-implication", rid, f"urn:uuid:{finding}")
        obs["component"] = _components(knowledge, rule)
        return obs

    def diagnostic(self, variant: str, clinvar: ClinVarAssertion) -> dict[str, Any]:
        """ClinVar's classification of the Variant whose id is ``variant``: significance
        (the ACMG tier's LOINC answer, else ClinVar's own words), review status as the
        level of evidence, and the conditions; ClinVar cited as the source that decided."""
        rid = self._ids.resource(f"diagnostic-implication|clinvar|{variant}")
        obs = self._implication("diagnostic-implication", rid, f"urn:uuid:{variant}")
        significance: dict[str, Any] = {"text": clinvar.significance}
        if clinvar.tier is not None and clinvar.answer_code:
            tier = {"system": LOINC, "code": clinvar.answer_code, "display": clinvar.tier.value}
            significance = {"coding": [tier]}
        decided = _part("clinical-significance", significance)
        decided["extension"] = [{"url": _CITATION, "valueRelatedArtifact": _CLINVAR}]
        parts = [decided]
        if clinvar.review_status:
            stars = "" if clinvar.stars is None else f" ({clinvar.stars} of 4 stars)"
            level = {"text": f"ClinVar: {clinvar.review_status}{stars}"}
            parts.append(_part("evidence-level", level))
        obs["component"] = parts + _phenotypes(clinvar.conditions)
        return obs

    def classified(self, variant: str, lab: LabClassification, source: str) -> dict[str, Any]:
        """The lab's own classification of the Variant whose id is ``variant``, which decides
        over ClinVar's: the tier's LOINC answer with ``source`` (the classification file's
        label) cited as the source that decided, the evidence as the level of evidence, the
        conditions, and when and by whom it was classified as a note."""
        rid = self._ids.resource(f"diagnostic-implication|lab|{variant}")
        when = f"Classified {lab.tier.value} by {source} on {lab.classified.isoformat()}."
        note: dict[str, str] = {"authorString": lab.classifier} if lab.classifier else {}
        note |= {"time": lab.classified.isoformat(), "text": f"{when} {lab.comment or ''}"}
        note["text"] = note["text"].rstrip()
        obs = self._implication("diagnostic-implication", rid, f"urn:uuid:{variant}", [note])
        tier = {"system": LOINC, "code": lab.answer_code, "display": lab.tier.value}
        decided = _part("clinical-significance", {"coding": [tier]})
        cited = {"type": "citation", "label": source}
        decided["extension"] = [{"url": _CITATION, "valueRelatedArtifact": cited}]
        evidence = _part("evidence-level", {"text": lab.evidence})
        obs["component"] = [decided, evidence, *_phenotypes(lab.conditions)]
        return obs

    def reported(
        self, variant: str, classification: ReportedClassification, source: str
    ) -> dict[str, Any]:
        """A lab report's classification of the Variant whose id is ``variant``: the tier's
        LOINC answer (else the report's words) with ``source`` (the report) cited as the
        source that decided, its evidence, and the conditions it is classified for."""
        rid = self._ids.resource(f"diagnostic-implication|report|{variant}")
        obs = self._implication("diagnostic-implication", rid, f"urn:uuid:{variant}")
        significance: dict[str, Any] = {"text": classification.text}
        tier, code = classification.tier, classification.answer_code
        if tier is not None and code:
            significance = {"coding": [{"system": LOINC, "code": code, "display": tier.value}]}
        decided = _part("clinical-significance", significance)
        cited = {"type": "citation", "label": source}
        decided["extension"] = [{"url": _CITATION, "valueRelatedArtifact": cited}]
        parts = [decided]
        if classification.evidence:
            parts.append(_part("evidence-level", {"text": classification.evidence}))
        parts += [_part("predicted-phenotype", term_concept(c)) for c in classification.conditions]
        obs["component"] = parts
        return obs

    def actionable(
        self, variant: str, therapies: Sequence[CodedTerm], contexts: Sequence[CodedTerm]
    ) -> dict[str, Any]:
        """A report's statement that the Variant whose id is ``variant`` is therapeutically
        actionable: each therapy as a medication assessed, each condition as the treatment
        context. The report says no effect (responsive, resistant), so none is given."""
        rid = self._ids.resource(f"therapeutic-implication|report|{variant}")
        note = [{"text": "Reported as therapeutically actionable."}]
        obs = self._implication("therapeutic-implication", rid, f"urn:uuid:{variant}", note)
        parts = [_part("medication-assessed", term_concept(t)) for t in therapies]
        parts += [_part("treatment-context", term_concept(c)) for c in contexts]
        if parts:
            obs["component"] = parts
        return obs

    def consequence(
        self, variant: str, consequence: TranscriptConsequence, order: int
    ) -> dict[str, Any]:
        """One transcript consequence of the Variant whose id is ``variant`` (``order``: its
        place among the allele's consequences, for a stable id)."""
        return self.consequence_of(*self.consequence_parts(variant, consequence, order))

    def consequence_parts(
        self, variant: str, consequence: TranscriptConsequence, order: int
    ) -> tuple[str, ConsequenceShape, list[str]]:
        """A molecular-consequence as its id, its shape and the values the shape takes (the
        Variant's reference, then transcript, c. and p. HGVS where each names its reference
        sequence): many consequences share a shape, so it can be encoded once as a template."""
        transcript = consequence.transcript
        hgvs_c = consequence.hgvs_c
        if hgvs_c and ":" not in hgvs_c and transcript:
            hgvs_c = f"{transcript}:{hgvs_c}"
        hgvs_p = consequence.hgvs_p
        values = [f"urn:uuid:{variant}"]
        if transcript:
            values.append(transcript)
        if has_c := bool(hgvs_c and ":" in hgvs_c):
            values.append(hgvs_c)  # type: ignore[arg-type]  # has_c: a str
        if has_p := bool(hgvs_p and ":" in hgvs_p):
            values.append(hgvs_p)  # type: ignore[arg-type]  # has_p: a str
        system = (ENSEMBL if transcript.startswith("ENS") else REFSEQ) if transcript else None
        rid = self._ids.resource(f"molecular-consequence|{variant}|{order}|{transcript or ''}")
        return rid, ConsequenceShape(system, has_c, has_p, consequence.consequences), values

    def consequence_of(
        self, rid: str, shape: ConsequenceShape, values: Sequence[str]
    ) -> dict[str, Any]:
        """The molecular-consequence :meth:`consequence_parts` describes (``values`` may be
        placeholders, to make a template): its parts, then the Sequence Ontology terms."""
        obs = self._implication("molecular-consequence", rid, values[0])
        rest = iter(values[1:])
        parts = []
        if shape.system is not None:
            parts.append(_coded("transcript-ref-seq", shape.system, next(rest)))
        if shape.coding:
            parts.append(_coded("coding-hgvs", HGVS, next(rest)))
        if shape.protein:
            parts.append(_coded("protein-hgvs", HGVS, next(rest)))
        parts += [_term(term) for term in shape.terms]
        if parts:
            obs["component"] = parts
        return obs

    def _implication(
        self, kind: str, rid: str, finding: str, notes: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        """The elements implications share, derived from the Observation ``finding`` (a
        reference: ``urn:uuid:`` and its id); ``notes`` in their place, before it."""
        meta, code = self._kinds.get(kind) or self._kind(kind)
        obs = {
            "resourceType": "Observation",
            "id": rid,
            "meta": meta,
            "identifier": [identifier(rid)],
            **self._shared,
            "code": code,
            **self._after_code,
        }
        if notes:
            obs["note"] = notes
        obs["derivedFrom"] = [{"reference": finding, "type": "Observation"}]
        return obs

    def _kind(self, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
        found = self._kinds[kind] = {"profile": [profile(kind)]}, concept("resource-code", kind)
        return found


def diagnostic_finding(
    implication: str,
    variant: str,
    call: VariantCall,
    *,
    source: str,
    lab: LabClassification | None = None,
    hgvs: str | None = None,
) -> Finding | None:
    """The conclusion's sentence on the call's classification (the lab's, else ClinVar's)
    when it is pathogenic or likely pathogenic, else None: gene, HGVS, class, conditions and
    the source that decided. ``hgvs``: the primary transcript's c.HGVS with its reference
    sequence."""
    decided: LabClassification | ClinVarAssertion | None = lab or call.clinvar
    if decided is None or decided.tier is None or decided.tier not in _DISEASE:
        return None
    named = "; ".join(c.name for c in decided.conditions if c.name)
    condition = f" for {named}" if named else ""
    name = _variant_name(call, lab, hgvs)
    sentence = f"{name}: {decided.tier.value}{condition} ({source})."
    return Finding(FindingKind.DIAGNOSTIC, sentence, (implication, variant))


def _variant_name(call: VariantCall, lab: LabClassification | None, hgvs: str | None) -> str:
    """Gene, c.HGVS and p.HGVS as the annotation (else the lab's file) gives them; where the
    allele lies when neither names it."""
    primary = call.annotation.primary if call.annotation is not None else None
    gene = primary.gene_symbol if primary is not None else None
    protein = primary.hgvs_p if primary is not None else None
    if lab is not None:
        gene, hgvs = gene or lab.gene, hgvs or lab.hgvs_c
    where = f"chr{call.chromosome}:{call.pos} {call.ref}>{call.alt}"
    words = [gene, hgvs or where, f"({protein})" if protein and ":" in protein else None]
    return " ".join(w for w in words if w)


def therapeutic_finding(rule: ActionabilityRule, implication: str, finding: str) -> Finding:
    """The conclusion's sentence on a therapeutic implication: what matched, the drug and
    the predicted effect (``finding``: the id of the Observation it was derived from)."""
    return Finding(FindingKind.THERAPEUTIC, f"{_statement(rule)}.", (implication, finding))


def _phenotypes(conditions: Sequence[ClinVarCondition]) -> list[dict[str, Any]]:
    """A predicted-phenotype per condition: its name, and its MONDO ids coded."""
    parts = []
    for condition in conditions:
        value: dict[str, Any] = {}
        mondo = [{"system": MONDO, "code": v} for db, v in condition.codes if db == "MONDO"]
        if mondo := [m for m in mondo if _MONDO_ID(m["code"])]:
            value["coding"] = mondo
        if condition.name:
            value["text"] = condition.name
        if value:
            parts.append(_part("predicted-phenotype", value))
    return parts


def term_concept(term: CodedTerm) -> dict[str, Any]:
    """A report's term as a CodeableConcept: coded with its display when it has a system
    and code, else its words alone."""
    if term.system and term.code:
        coded = {"system": term.system, "code": term.code}
        return {"coding": [coded | ({"display": term.display} if term.display else {})]}
    return {"text": term.display or term.code or ""}


def _term(term: str) -> dict[str, Any]:
    """A feature-consequence component: the Sequence Ontology term, coded when known."""
    found = sequence_ontology(term)
    value = {"coding": [{"system": SO, "code": found[0], "display": found[1]}]} if found else None
    return _part("feature-consequence", value or {"text": term}, "consequence-component")


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
    return {"code": _code(group, name), "valueCodeableConcept": value}


@cache
def _code(group: str, name: str) -> dict[str, Any]:
    """A component's code, made once and shared (resources never change their parts)."""
    return {"coding": [coding(group, name)]}


def _statement(rule: ActionabilityRule) -> str:
    """E.g. ``MSI-H: Colorectal cancer responsive to pembrolizumab``."""
    what = f"{rule.gene} {rule.alteration}" if rule.gene else rule.alteration
    effect = rule.effect.replace("-", " ")
    return f"{what}: {rule.condition} {effect} to {rule.medication}"
