"""Pharmacogenomic calls as the IG's PGx resources, and the CPIC recommendations they meet.

Shaped as the IG's own PGx examples:

* genotype Observation (Pgx-geno-1001, GenotypeExamplePharmVar): LOINC 84413-4, the diplotype as
  its value, the gene studied coded in HGNC, derived from its two haplotypes;
* haplotype Observation (HaplotypeExamplePharmVar01, bundle-pgxexample): LOINC 84414-2, one per
  allele. Star alleles are sent as text: the IG's PharmVar codings name sub-alleles
  (``CYP2D6*1.001``), which callers do not report;
* therapeutic implication (TxImp01..06): derived from the genotypes of the rule's genes, the
  metabolizer or transporter phenotype coded from genetic-therapeutic-implications-vs (text where
  CPIC's term has no code), the medication assessed in RxNorm, CPIC's guideline cited;
* medication-recommendation Task (PGxRecEx01, med-usage-impact-task-pgx-example): a requested
  proposal for the patient, its reason the implication, CPIC's text as its description.

The rules are ``mappings/cpic_recommendations.csv``: a rule meets the calls when every gene it
names was called with the phenotype (and activity score, if the rule states one) it names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ..errors import PackageError
from ..model import (
    AnalysisContext,
    Finding,
    FindingKind,
    PharmacogenomicCall,
    PharmacogenomicReport,
)
from ..resources import mapping_rows
from .codes import coding, concept, profile, slices
from .identifiers import (
    IdFactory,
    identifier,
    internal,
    observed,
    patient_reference,
    specimen_reference,
)

__all__ = [
    "RECOMMENDED_ACTION",
    "RXNORM",
    "PharmacogenomicResources",
    "Recommendation",
    "pharmacogenomic_resources",
    "recommendations",
]

#: the extension by which a genomic report names the Tasks it recommends
RECOMMENDED_ACTION = profile("recommended-action")
#: RxNorm, as the IG's examples TxImp01..06 name it
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_CITATION = profile("workflow-relatedArtifactComponent")
_ANY = "*"


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One row of ``mappings/cpic_recommendations.csv``."""

    genes: tuple[str, ...]
    phenotypes: tuple[str, ...]  # in the order of ``genes``; "*" meets any call
    activity_score: float | None  # of the (single) gene, when the rule depends on it
    drug: str
    rxnorm: str
    text: str
    classification: str  # CPIC's strength of recommendation; empty when CPIC gives none
    action: str  # key of group medication-action in answer_codes.csv; empty: none coded
    guideline: str
    guideline_date: str
    url: str

    def meets(self, calls: Mapping[str, PharmacogenomicCall]) -> bool:
        """Whether every gene of the rule was called with the rule's phenotype (and score)."""
        for gene, phenotype in zip(self.genes, self.phenotypes, strict=True):
            call = calls.get(gene)
            if call is None:
                return False
            if phenotype != _ANY and _term(gene, call.phenotype) != phenotype.casefold():
                return False
            if self.activity_score is not None and call.activity_score != self.activity_score:
                return False
        return True


@dataclass(slots=True)
class PharmacogenomicResources:
    """What one PGx input becomes: the report's results, its recommended Tasks, the calls
    that met no recommendation, counted by reason, and the conclusion's findings (a gene's
    phenotype and the drugs recommended for it)."""

    results: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


@cache
def recommendations() -> tuple[Recommendation, ...]:
    """The CPIC rules of ``mappings/cpic_recommendations.csv``, read once."""
    return tuple(_rule(row) for row in mapping_rows("cpic_recommendations.csv"))


def _rule(row: Mapping[str, str]) -> Recommendation:
    genes = tuple(row["genes"].split("+"))
    phenotypes = tuple(row["phenotypes"].split("+"))
    if len(genes) != len(phenotypes) or not row["rxnorm"] or not row["recommendation"]:
        raise PackageError(f"cpic_recommendations.csv: malformed row {dict(row)}")
    score = row["activity_score"]
    return Recommendation(
        genes,
        phenotypes,
        float(score) if score else None,
        row["drug"],
        row["rxnorm"],
        row["recommendation"],
        row["classification"],
        row["action"],
        row["guideline"],
        row["guideline_date"],
        row["guideline_url"],
    )


def pharmacogenomic_resources(
    ctx: AnalysisContext, report: PharmacogenomicReport
) -> PharmacogenomicResources:
    """Genotype and haplotype Observations for every call, and an implication and a Task for
    every CPIC rule the calls meet; calls meeting none are counted, as the reader's skips are."""
    ids = IdFactory(ctx)
    found = PharmacogenomicResources(skipped=dict(report.skipped))
    calls = {call.diplotype.gene: call for call in report.calls}
    genotypes: dict[str, str] = {}
    for call in report.calls:
        haplotypes = _haplotypes(ctx, ids, call)
        genotype = _genotype(ctx, ids, call, [h["id"] for h in haplotypes])
        genotypes[call.diplotype.gene] = genotype["id"]
        found.results += [genotype, *haplotypes]
    met: dict[str, list[tuple[Recommendation, str, str]]] = {gene: [] for gene in calls}
    for rule in recommendations():
        if rule.meets(calls):
            implication = _implication(ctx, ids, rule, calls, genotypes)
            task = _task(ctx, ids, rule, implication["id"])
            found.results.append(implication)
            found.tasks.append(task)
            for gene in rule.genes:
                met[gene].append((rule, implication["id"], task["id"]))
    for gene in sorted(gene for gene, rules in met.items() if not rules):
        reason = _unmet(gene, calls)
        found.skipped[reason] = found.skipped.get(reason, 0) + 1
    found.findings = [_finding(call, genotypes, met[call.diplotype.gene]) for call in report.calls]
    return found


def _finding(
    call: PharmacogenomicCall,
    genotypes: Mapping[str, str],
    met: Sequence[tuple[Recommendation, str, str]],
) -> Finding:
    """The conclusion's sentence on a gene's call: its diplotype, its phenotype, and the
    drugs CPIC recommends for it; about the genotype, its implications and Tasks."""
    gene = call.diplotype.gene
    phenotype = f" ({call.phenotype})" if call.phenotype else ""
    drugs = ", ".join(dict.fromkeys(rule.drug for rule, _, _ in met))
    recommended = f": CPIC recommendations for {drugs}" if drugs else ""
    sentence = f"{gene} {call.diplotype.label}{phenotype}{recommended}."
    about = (genotypes[gene], *(i for _, i, _ in met), *(t for _, _, t in met))
    return Finding(FindingKind.PHARMACOGENOMIC, sentence, about)


def _unmet(gene: str, calls: Mapping[str, PharmacogenomicCall]) -> str:
    """Why a call met no rule: its gene is in none, a partner gene was not called, or the
    table has no row for its phenotype."""
    rules = [r for r in recommendations() if gene in r.genes]
    if not rules:
        return "gene_not_in_table"
    if all(any(g not in calls for g in r.genes) for r in rules):
        return "partner_gene_not_called"
    return "phenotype_not_in_table"


def _term(gene: str, phenotype: str | None) -> str:
    """A CPIC phenotype term for comparison: case-folded, without a leading gene symbol
    (CPIC's 2025 tables write ``CYP2C19 Poor Metabolizer``)."""
    term = (phenotype or "").strip()
    if term.upper().startswith(f"{gene.upper()} "):
        term = term[len(gene) + 1 :]
    return term.casefold()


def _observation(ctx: AnalysisContext, rid: str, kind: str, code: dict[str, Any]) -> dict[str, Any]:
    """What every PGx Observation states, in the order the IG's examples give it."""
    return {
        "resourceType": "Observation",
        "id": rid,
        "meta": {"profile": [profile(kind)]},
        "identifier": [identifier(rid)],
        "status": "final",
        "category": [concept("category", "laboratory"), concept("category", "genetics")],
        "code": code,
        **observed(ctx),
    }


def _gene_studied(gene: str) -> dict[str, Any]:
    """The gene-studied component, HGNC-coded where the table knows the gene."""
    return {
        "code": slices()["gene-studied"].concept(),
        "valueCodeableConcept": concept("hgnc-gene", gene),
    }


def _with_specimen(ctx: AnalysisContext, obs: dict[str, Any]) -> dict[str, Any]:
    """``obs`` with the specimen the user named, if any."""
    if (specimen := specimen_reference(ctx)) is not None:
        obs["specimen"] = specimen
    return obs


def _haplotypes(
    ctx: AnalysisContext, ids: IdFactory, call: PharmacogenomicCall
) -> list[dict[str, Any]]:
    """One haplotype Observation per allele of the diplotype."""
    gene = call.diplotype.gene
    found = []
    for number, allele in enumerate((call.diplotype.allele1, call.diplotype.allele2), 1):
        rid = ids.resource(f"pgx-haplotype|{gene}|{number}")
        obs = _observation(ctx, rid, "haplotype", concept("resource-code", "haplotype"))
        obs["valueCodeableConcept"] = {"text": f"{gene} {allele}"}
        obs["component"] = [_gene_studied(gene)]
        found.append(_with_specimen(ctx, obs))
    return found


def _genotype(
    ctx: AnalysisContext, ids: IdFactory, call: PharmacogenomicCall, haplotypes: Sequence[str]
) -> dict[str, Any]:
    """The diplotype, derived from its haplotypes (``haplotypes``: their ids)."""
    gene = call.diplotype.gene
    rid = ids.resource(f"pgx-genotype|{gene}")
    obs = _observation(ctx, rid, "genotype", concept("resource-code", "genotype"))
    obs["valueCodeableConcept"] = {"text": f"{gene} {call.diplotype.label}"}
    obs = _with_specimen(ctx, obs)
    obs["derivedFrom"] = [internal("Observation", h) for h in haplotypes]
    obs["component"] = [_gene_studied(gene)]
    return obs


def _implication(
    ctx: AnalysisContext,
    ids: IdFactory,
    rule: Recommendation,
    calls: Mapping[str, PharmacogenomicCall],
    genotypes: Mapping[str, str],
) -> dict[str, Any]:
    """What ``rule`` says of the calls it met, derived from their genotypes, CPIC cited."""
    rid = ids.resource(f"pgx-implication|{rule.drug}|{'+'.join(rule.genes)}")
    code = concept("resource-code", "therapeutic-implication")
    obs = _observation(ctx, rid, "therapeutic-implication", code)
    obs["derivedFrom"] = [internal("Observation", genotypes[g]) for g in rule.genes]
    parts = [_phenotype(calls[g]) for g in rule.genes]
    cited = {"type": "citation", "label": rule.guideline, "url": rule.url}
    parts[0]["extension"] = [{"url": _CITATION, "valueRelatedArtifact": cited}]
    parts.append(_part("medication-assessed", _medication(rule)))
    obs["component"] = parts
    obs["note"] = [{"text": f"{rule.drug}: {rule.text}{_strength(rule)}"}]
    return obs


def _phenotype(call: PharmacogenomicCall) -> dict[str, Any]:
    """The call's phenotype: coded where the IG's value set has the term, always as text."""
    gene = call.diplotype.gene
    term = call.phenotype
    text = f"{gene} {term}" if term else f"{gene} {call.diplotype.label}: no phenotype assigned"
    if call.activity_score is not None:
        text += f" (activity score {call.activity_score:g})"
    value = concept("pgx-phenotype", _canonical(gene, term)) if term else {}
    value.pop("text", None)
    return _part("therapeutic-implication", {**value, "text": text})


def _canonical(gene: str, phenotype: str) -> str:
    """The table key of a phenotype term: CPIC's capitalisation, without a gene prefix."""
    return _term(gene, phenotype).title()


def _medication(rule: Recommendation) -> dict[str, Any]:
    """The drug in RxNorm, as CPIC's drug table codes it."""
    return {"coding": [{"system": RXNORM, "code": rule.rxnorm, "display": rule.drug}]}


def _part(name: str, value: dict[str, Any]) -> dict[str, Any]:
    """An implication component coded as the implication profiles' slices require."""
    return {
        "code": {"coding": [coding("implication-component", name)]},
        "valueCodeableConcept": value,
    }


def _strength(rule: Recommendation) -> str:
    """E.g. `` (CPIC classification of recommendation: Strong)``; empty when CPIC gives none."""
    if not rule.classification:
        return ""
    return f" (CPIC classification of recommendation: {rule.classification})"


def _task(
    ctx: AnalysisContext, ids: IdFactory, rule: Recommendation, implication: str
) -> dict[str, Any]:
    """The medication recommendation of ``rule``, proposed for the patient because of the
    implication whose id is ``implication``."""
    rid = ids.resource(f"pgx-task|{rule.drug}|{'+'.join(rule.genes)}")
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": rid,
        "meta": {"profile": [profile("medication-recommendation")]},
        "identifier": [identifier(rid)],
        "status": "requested",
        "intent": "proposal",
    }
    if rule.action:
        task["code"] = concept("medication-action", rule.action)
    task["description"] = f"{rule.drug}: {rule.text}{_strength(rule)}. Source: {rule.url}"
    task["for"] = patient_reference(ctx.patient)
    task["reasonReference"] = internal("Observation", implication)
    medication = {"coding": [coding("implication-component", "medication-assessed")]}
    task["input"] = [{"type": medication, "valueCodeableConcept": _medication(rule)}]
    return task
