"""The disclosure policy applied to a conversion, before anything is written.

A conversion discloses a patient's results to whoever reads its output, so it is a request to
:func:`adapter.policy.decide` like any other. Policy decided here:

* **The report is one decision.** Its primary results (everything but the secondary findings)
  are one :class:`~adapter.policy.Item`, decided once before any variant is read. A deny (no
  purpose of use, a purpose never permitted, no consent for it) refuses the conversion:
  :class:`~adapter.errors.DisclosureDenied`, nothing written, the decision audited.
* **A call is held** when one of its genes is on the ACMG secondary-findings list and none is
  in the order's indication. Its genes are the symbols its transcript consequences name, the
  lab's classification names, and ClinVar's ``GENEINFO``; it is held under its primary
  transcript's gene when listed, else under the first listed one. A call no source places in
  a gene is a primary result: the adapter cannot tell it is in a listed gene.
* **Held calls wait for the whole report.** They are encoded like the others, but kept aside
  with what they bring (conclusion findings, implication counts), since ACMG's rules look at
  all of a gene's alleles (two for a recessive gene, their phase). Phase Observations that
  relate a held call wait with it.
* **A held call is disclosed** only when its gene is reportable by the ACMG rule, the call is
  one of the alleles the finding is made of (:attr:`SecondaryFindingDecision.disclosed`: P/LP,
  as the gene's rule admits), and the engine permits the secondary finding under the
  patient's Consents. Every other held call, and every resource, finding and count it
  brought, is dropped: it leaves no trace in the output.
* **Disclosed secondary findings are labelled** ``secondary-finding`` (the adapter's
  genomic-disclosure CodeSystem) on every resource they bring, beside R and GDIS.
* **Every decision is audited**: an AuditEvent for the report's decision and one for each held
  gene's, appended to the audit log (never to the output, which would carry a trace of what
  was withheld); a Provenance for each permitted one, in the output with what it disclosed.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol

import orjson

from .errors import DisclosureDenied, OptionsError, OutputError
from .fhir.codes import SECURITY_LABELS
from .fhir.identifiers import IdFactory, internal
from .fhir.variant import Encoded, Encoding, VariantBuilder
from .model import (
    AlleleAnnotation,
    AnalysisContext,
    Finding,
    LabClassification,
    Sex,
    VariantCall,
)
from .phasing import Relation
from .policy import (
    CandidateAllele,
    Consent,
    Decision,
    Effect,
    Item,
    Policy,
    Reason,
    Request,
    SecondaryFindingDecision,
    acmg_sf_list,
    audit_event,
    decide,
    evaluate_secondary_findings,
    item_of,
    load_policy,
    provenance,
)
from .policy.consent import Reference
from .policy.labels import LABEL_SECONDARY_FINDING, coding_json

__all__ = [
    "Disclosure",
    "GeneRuling",
    "HeldAllele",
    "HeldCall",
    "Indication",
    "Withholding",
    "audit_log_path",
    "audited",
    "deployment_audit_log",
    "disclosure_request",
    "phase_of",
    "refusal",
    "report_decision",
    "report_reference",
    "rule_genes",
    "secondary_labelled",
    "trail",
]

#: a gene symbol as HGNC writes them (letters, digits, '-', '.', '@' for gene groups)
_SYMBOL: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9.@-]*")
#: a phenotype or disease term: HPO, MONDO, OMIM, Orphanet
_PHENOTYPE: Final = re.compile(r"(HP|MONDO|OMIM|ORPHA):\d+")
#: a literal reference, Type/id (https://hl7.org/fhir/R4/references.html#literal)
_LITERAL: Final = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True, slots=True)
class Indication:
    """What the order asked about: the genes tested (a panel's), or phenotype terms, which
    name no gene. With no gene, every listed gene is outside the indication."""

    genes: frozenset[str] = frozenset()
    phenotypes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, texts: Iterable[str]) -> Indication:
        """From option values: comma-separated HGNC symbols and phenotype terms
        (``BRCA1,BRCA2`` or ``HP:0001250``)."""
        genes: set[str] = set()
        phenotypes: list[str] = []
        for text in texts:
            for term in filter(None, (t.strip() for t in text.split(","))):
                if _PHENOTYPE.fullmatch(term):
                    phenotypes.append(term)
                elif _SYMBOL.fullmatch(term):
                    genes.add(term.upper())
                else:
                    raise OptionsError(
                        f"indication {term!r} is neither an HGNC gene symbol nor a phenotype "
                        "term (HP:, MONDO:, OMIM:, ORPHA:)",
                        field="indication",
                    )
        return cls(frozenset(genes), tuple(phenotypes))


@dataclass(frozen=True, slots=True)
class Disclosure:
    """A conversion's disclosure request: who asks, for what, under which consents, policy
    and indication; and where its decisions are audited."""

    request: Request
    policy: Policy
    consents: tuple[Consent, ...] = ()
    indication: Indication = Indication()
    audit_log: Path | None = None  # AuditEvents appended as NDJSON; None: not kept

    def held_genes(self) -> frozenset[str]:
        """The listed genes outside the indication: their calls are held."""
        return frozenset(acmg_sf_list().genes) - self.indication.genes


class HeldAllele(Protocol):
    """What a ruling needs of a held allele, in a conversion or in a Bundle."""

    @property
    def gene(self) -> str: ...
    @property
    def variant_id(self) -> str: ...
    @property
    def candidate(self) -> CandidateAllele | None: ...


class HeldCall(NamedTuple):
    """A held call as encoded, with what it brought; small, for a worker to send on."""

    gene: str
    variant_id: str
    candidate: CandidateAllele | None  # None: no P/LP class, or no zygosity, to judge it by
    data: bytes  # its encoded resources (the Variant, then what it brings)
    ids: bytes  # their 16-byte ids
    findings: list[Finding]
    decided: Counter[str]


class Withholding:
    """An :data:`Encoding` that holds the calls of the held genes: they go to :attr:`held`,
    and the caller gets empty bytes for them (nothing to write yet)."""

    def __init__(
        self,
        encode: Encoding,
        builder: VariantBuilder,
        held_genes: frozenset[str],
        indication: frozenset[str],
        classified: Callable[[VariantCall], LabClassification | None] | None = None,
    ) -> None:
        self._encode, self._builder = encode, builder
        self._held, self._indication, self._classified = held_genes, indication, classified
        self.held: list[HeldCall] = []

    def __call__(self, call: VariantCall, genes: Sequence[tuple[str, str]] = ()) -> Encoded:
        if call.annotation is None and call.clinvar is None and self._classified is None:
            return self._encode(call, genes)
        lab = self._classified(call) if self._classified is not None else None
        gene = self._gene(call, lab)
        if gene is None:
            return self._encode(call, genes)
        builder = self._builder
        found, decided = len(builder.findings), Counter(builder.decided)
        data, raw_id = self._encode(call, genes)
        findings = builder.findings[found:]
        del builder.findings[found:]
        brought = builder.decided - decided
        builder.decided = decided
        rid = str(uuid.UUID(bytes=raw_id[:16]))
        candidate = _candidate(call, gene, lab)
        self.held.append(HeldCall(gene, rid, candidate, data, raw_id, findings, brought))
        return b"", b""

    def drain(self) -> list[HeldCall]:
        """The calls held since the last drain."""
        held, self.held = self.held, []
        return held

    def _gene(self, call: VariantCall, lab: LabClassification | None) -> str | None:
        """The listed gene the call is held under; None when it is a primary result."""
        allele = call.annotation
        if lab is None and call.clinvar is None and allele is not None and not self._lists(allele):
            return None  # most calls, told apart by set lookups alone
        genes = _genes(call, lab)
        found = next((g for g in genes if g in self._held), None)
        if found is None or not self._indication:
            return found
        return None if any(g.upper() in self._indication for g in genes) else found

    def _lists(self, allele: AlleleAnnotation) -> bool:
        """Whether a transcript of ``allele`` is in a held gene (no comprehension: this runs
        for every annotated call, and a comprehension costs a function call)."""
        held = self._held
        if allele.primary is not None and allele.primary.gene_symbol in held:
            return True
        for consequence in allele.others:  # noqa: SIM110 - any() builds a generator: slower
            if consequence.gene_symbol in held:
                return True
        return False


def _symbols(allele: AlleleAnnotation) -> list[str | None]:
    """The gene symbols of an allele's transcript consequences, its primary's first."""
    primary = allele.primary.gene_symbol if allele.primary is not None else None
    return [primary, *[c.gene_symbol for c in allele.others]]


def _genes(call: VariantCall, lab: LabClassification | None) -> list[str]:
    """The call's gene symbols: its transcripts' (the primary's first), the lab's, ClinVar's."""
    found = [g for g in _symbols(call.annotation) if g] if call.annotation is not None else []
    if lab is not None and lab.gene:
        found.append(lab.gene)
    if call.clinvar is not None:
        found += call.clinvar.genes
    return found


def _candidate(
    call: VariantCall, gene: str, lab: LabClassification | None
) -> CandidateAllele | None:
    """The call as an ACMG candidate of ``gene``: its class (the lab's, else ClinVar's), its
    zygosity, and the HGVS and consequences of its transcript in that gene."""
    tier = lab.tier if lab is not None else call.clinvar.tier if call.clinvar else None
    if tier is None or call.zygosity is None:
        return None
    allele = call.annotation
    consequences = (allele.primary, *allele.others) if allele is not None else ()
    mine = next((c for c in consequences if c and (c.gene_symbol or "").upper() == gene), None)
    return CandidateAllele(
        gene,
        tier,
        call.zygosity,
        hgvs_c=mine.hgvs_c if mine is not None else lab.hgvs_c if lab is not None else None,
        hgvs_p=mine.hgvs_p if mine is not None else None,
        consequences=mine.consequences if mine is not None else (),
    )


# ---- deciding --------------------------------------------------------------------------


def report_decision(disclosure: Disclosure) -> Decision:
    """The decision on the report's primary results."""
    return decide(Item(), disclosure.request, disclosure.consents, disclosure.policy)


def refusal(decision: Decision) -> DisclosureDenied:
    """The error of a conversion the policy refuses, with its reasons."""
    why = "; ".join(f"{r.rule}: {r.text}" for r in decision.reasons)
    return DisclosureDenied(f"the policy refuses the disclosure ({why})", field="purpose")


@dataclass(frozen=True, slots=True)
class GeneRuling:
    """What became of one held gene: the ACMG decision (None with no candidate), the
    disclosure decision, and the ids of the held Variants disclosed."""

    gene: str
    first: str  # the id of the gene's first disclosed Variant, else of its first held one
    acmg: SecondaryFindingDecision | None
    decision: Decision
    disclosed: frozenset[str]
    item: Item | None


def rule_genes(
    held: Sequence[HeldAllele],
    phases: Mapping[str, Relation],
    sex: Sex,
    disclosure: Disclosure,
) -> dict[str, GeneRuling]:
    """Each held gene's ruling, in symbol order; ``phases`` gives a held Variant's relation to
    its gene's other P/LP alleles where phasing told it."""
    candidates = {
        h.variant_id: replace(h.candidate, phase=phases.get(h.variant_id))
        for h in held
        if h.candidate is not None
    }
    acmg = evaluate_secondary_findings(candidates.values(), sex)
    firsts: dict[str, str] = {}
    for h in held:
        firsts.setdefault(h.gene, h.variant_id)
    rulings = {}
    for gene, first in sorted(firsts.items()):
        found = acmg.get(gene)
        item = item_of(gene, disclosure.indication.genes, acmg)
        if item is None or found is None:
            text = found.reason if found is not None else f"{gene}: no P/LP allele to report"
            decision = Decision(Effect.DENY, (Reason("acmg-secondary-findings", text),))
            rulings[gene] = GeneRuling(gene, first, found, decision, frozenset(), item)
            continue
        r = disclosure.request
        decision = decide(item, r, disclosure.consents, disclosure.policy)
        admitted = [vid for vid, c in candidates.items() if c.gene == gene and c in found.disclosed]
        ids = frozenset(admitted) if decision.permitted else frozenset()
        about = admitted[0] if ids else first
        rulings[gene] = GeneRuling(gene, about, found, decision, ids, item)
    return rulings


def phase_of(
    pairs: Iterable[tuple[str, str, Relation]], genes: Mapping[str, str]
) -> dict[str, Relation]:
    """Each held Variant's phase to its gene's other held alleles, from ``pairs`` of Variant
    ids and their stated relation (``genes``: each held Variant's gene): Trans when one is on
    the other copy, Cis when those related are all on its own (unknown ones not counted)."""
    stated: dict[str, set[Relation]] = {}
    for a, b, relation in pairs:
        if a in genes and b in genes and genes[a] == genes[b]:
            stated.setdefault(a, set()).add(relation)
            stated.setdefault(b, set()).add(relation)
    return {vid: "Trans" if "Trans" in found else "Cis" for vid, found in stated.items()}


# ---- output ----------------------------------------------------------------------------

_LABELS: Final = orjson.dumps(list(SECURITY_LABELS))
_SECONDARY_LABELS: Final = orjson.dumps([*SECURITY_LABELS, coding_json(LABEL_SECONDARY_FINDING)])


def secondary_labelled(data: bytes, ids: bytes) -> bytes:
    """Encoded resources with the secondary-finding label after R and GDIS, in each of them.

    The writers put the same two labels, encoded the same way, in every resource they encode
    (:func:`adapter.fhir.writers.labelled`); a resource without them is an error here, never
    a finding disclosed unlabelled."""
    count = len(ids) // 16
    if data.count(_LABELS) != count:
        raise OutputError(
            f"{count} held resources do not each carry the genomic labels once; "
            "the secondary-finding label cannot be added, so nothing of them is written"
        )
    return data.replace(_LABELS, _SECONDARY_LABELS)


def disclosure_request(
    consents: Sequence[Consent] = (),
    *,
    purpose: str | None,
    at: datetime | None = None,
    policy: Path | None = None,
    indication: Sequence[str] = (),
    birth_date: str | None = None,
    recipient: str | None = None,
    break_glass: bool = False,
    audit_log: Path | None = None,
) -> Disclosure:
    """A Disclosure from the options of the CLI and the API: the policy file (the shipped one
    when None), the decision's instant (now when None)."""
    when = at or datetime.now(UTC)
    request = Request(
        purpose or None, when, _birth_date(birth_date), _recipient(recipient), break_glass
    )
    return Disclosure(
        request,
        load_policy(policy),
        tuple(consents),
        Indication.parse(indication),
        audit_log,
    )


def _birth_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise OptionsError(
            f"the birth date must be YYYY-MM-DD, got {text!r}", field="birth_date"
        ) from None


def _recipient(text: str | None) -> Reference | None:
    """The requester, as the literal reference Consent provisions name actors by."""
    if not text:
        return None
    if not _LITERAL.fullmatch(text):
        raise OptionsError(
            f"the recipient must be a reference such as Practitioner/123, got {text!r}",
            field="recipient",
        )
    return Reference(text)


#: the deployment's audit log, for what has no output beside which to keep one (the service,
#: the sync commands)
AUDIT_LOG_ENV: Final = "FHIR_GENOMICS_AUDIT_LOG"
DEFAULT_AUDIT_LOG: Final = "fhir-genomics-audit.ndjson"


def deployment_audit_log() -> Path:
    """``$FHIR_GENOMICS_AUDIT_LOG``, else ``fhir-genomics-audit.ndjson`` in the working folder."""
    return Path(os.environ.get(AUDIT_LOG_ENV) or DEFAULT_AUDIT_LOG)


def audit_log_path(destination: Path) -> Path:
    """The default audit log of a conversion: beside its output."""
    return destination.with_name(destination.name + ".audit.ndjson")


def audited(log: Path | None, events: Sequence[dict[str, Any]]) -> None:
    """AuditEvents appended to ``log``, one line each, and flushed to disk before the output
    they speak of is committed."""
    if log is None or not events:
        return
    data = b"".join(orjson.dumps(e, option=orjson.OPT_APPEND_NEWLINE) for e in events)
    try:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise OutputError(f"cannot append to the audit log {log}: {e.strerror}") from e


def report_reference(ctx: AnalysisContext) -> dict[str, str]:
    """The reference to the conversion's genomic report."""
    return internal("DiagnosticReport", IdFactory(ctx).resource("report"))


def trail(
    ctx: AnalysisContext,
    disclosure: Disclosure,
    report: Decision,
    rulings: Mapping[str, GeneRuling],
    disclosed: Mapping[str, Sequence[str]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The AuditEvents (for the log) and Provenances (for the output) of a conversion's
    decisions: the report's, then each held gene's (about :attr:`GeneRuling.first`).
    ``disclosed``: the ids of the resources disclosed of each gene."""
    request = disclosure.request
    about = report_reference(ctx)
    events = [audit_event(report, request, about, ctx)]
    records = [p for p in [provenance([about], report, request, ctx)] if p is not None]
    for gene, ruling in rulings.items():
        targets = [internal("Observation", rid) for rid in disclosed.get(gene, ())]
        first = {**internal("Observation", ruling.first), "display": f"{gene}, held"}
        events.append(audit_event(ruling.decision, request, first, ctx))
        if (made := provenance(targets, ruling.decision, request, ctx)) is not None:
            records.append(made)
    return events, records
