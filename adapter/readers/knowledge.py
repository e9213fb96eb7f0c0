"""An actionability knowledge file: which alterations make which drugs work or fail, as the
user's organisation decides (the adapter ships no clinical knowledge of its own; see
``examples/actionability.tsv`` for the format and a documented example).

A tab-separated file; ``#`` lines are comments, except ``# name:`` and ``# version:``, which the
report records as the knowledge source. Columns, in this order:

``match``      ``variant`` (gene + p.HGVS, matched on any transcript of an annotated allele),
               ``class`` (gene + a variant class, see below) or ``biomarker`` (``MSI-H``,
               ``MSI-L``, ``MSS``, or a mutational burden threshold ``TMB>=10``, mutations/Mb)
``gene``       HGNC symbol (empty for biomarkers)
``alteration`` the p.HGVS, class or biomarker
``condition``  the treatment context, e.g. ``Non-small cell lung cancer``
``medication`` the drug assessed
``effect``     ``responsive``, ``resistant``, ``presumed-responsive``, ``presumed-resistant``
               or ``presumed-non-responsive``
``evidence``   the level of evidence, as the source states it
``source``     where the statement comes from (a URL)

Variant classes (the ``alteration`` of a ``class`` rule):

``loss_of_function``  a truncating consequence (:data:`LOSS_OF_FUNCTION_TERMS`) on a transcript
                      of the gene
``amplification``     a copy-number gain of the gene: a ``DUP`` or ``CNV`` structural call whose
                      copy number (``CN``, as the caller wrote it) is above the normal copies of
                      its chromosome (2, or by sex on X and Y:
                      :func:`adapter.notation.ploidy`), annotated (VEP, SnpEff) with a
                      consequence on a transcript of the gene that is more than nearby
                      (:data:`NEARBY_TERMS`). A call without a copy number is no amplification.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from ..errors import InputError
from ..model import (
    AlleleAnnotation,
    SvType,
    TranscriptConsequence,
    TumorBiomarkers,
    VariantCall,
)
from ..notation import ploidy
from .tabular import TableError, read_table

__all__ = ["ActionabilityRule", "Effect", "KnowledgeBase", "Match", "read_knowledge"]

_COLUMNS = (
    "match",
    "gene",
    "alteration",
    "condition",
    "medication",
    "effect",
    "evidence",
    "source",
)
_TMB = "TMB>="
LOSS_OF_FUNCTION = "loss_of_function"
#: consequences that end a transcript's protein (the class rule ``loss_of_function``); the
#: VEP/Sequence Ontology terms of its "HIGH" impact truncating kind
LOSS_OF_FUNCTION_TERMS = frozenset(
    {
        "transcript_ablation",
        "splice_acceptor_variant",
        "splice_donor_variant",
        "stop_gained",
        "frameshift_variant",
        "start_lost",
    }
)
AMPLIFICATION = "amplification"
#: structural calls that can gain copies of a region (the class rule ``amplification``)
GAIN_TYPES = frozenset({SvType.DUP, SvType.CNV})
#: consequences that only place a gene near a variant (VEP's 5 kb up- and downstream, and
#: SnpEff's), which makes no amplification of that gene
NEARBY_TERMS = frozenset(
    {"upstream_gene_variant", "downstream_gene_variant", "intergenic_variant", "intergenic_region"}
)
CLASSES = (LOSS_OF_FUNCTION, AMPLIFICATION)
_MSI = frozenset({"MSI-H", "MSI-L", "MSS"})


class Match(StrEnum):
    """What a rule is matched against."""

    VARIANT = "variant"
    CLASS = "class"
    BIOMARKER = "biomarker"


class Effect(StrEnum):
    """Predicted effect of the medication (the IG's genetic-therapeutic-implications-vs)."""

    RESPONSIVE = "responsive"
    RESISTANT = "resistant"
    PRESUMED_RESPONSIVE = "presumed-responsive"
    PRESUMED_RESISTANT = "presumed-resistant"
    PRESUMED_NON_RESPONSIVE = "presumed-non-responsive"


@dataclass(frozen=True, slots=True)
class ActionabilityRule:
    """One row of the knowledge file."""

    match: Match
    gene: str
    alteration: str
    condition: str
    medication: str
    effect: Effect
    evidence: str
    source: str
    line: int  # in the knowledge file, for messages and stable ids


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    """The rules of one knowledge file and what it calls itself."""

    name: str
    version: str | None
    rules: tuple[ActionabilityRule, ...]
    #: variant and class rules by gene, for matching alleles
    by_gene: Mapping[str, tuple[ActionabilityRule, ...]] = field(default_factory=dict)

    def label(self) -> str:
        """Name and version, as the report records the source."""
        return f"{self.name} {self.version}" if self.version else self.name

    def for_tumor(self, tumor: TumorBiomarkers) -> list[tuple[str, ActionabilityRule]]:
        """The biomarker rules the tumor meets, each with the biomarker (``tmb``, ``msi``)."""
        found = []
        for rule in self.rules:
            if rule.match is not Match.BIOMARKER:
                continue
            if rule.alteration.startswith(_TMB):
                burden = tumor.mutational_burden
                if burden is not None and burden >= float(rule.alteration.removeprefix(_TMB)):
                    found.append(("tmb", rule))
            elif rule.alteration == tumor.microsatellite_status:
                found.append(("msi", rule))
        return found

    def for_allele(self, allele: AlleleAnnotation) -> list[ActionabilityRule]:
        """The variant and class rules an allele meets through any of its transcript
        consequences (a p.HGVS may be named on another transcript than the MANE one)."""
        found: list[ActionabilityRule] = []
        consequences = (allele.primary, *allele.others) if allele.primary else ()
        for each in consequences:
            for rule in self.by_gene.get(each.gene_symbol or "", ()):
                if rule not in found and _meets(rule, each):
                    found.append(rule)
        return found

    def for_call(self, call: VariantCall, male: bool | None) -> list[ActionabilityRule]:
        """The rules an annotated call meets: those of :meth:`for_allele`, then the
        ``amplification`` rules of the genes a copy-number gain covers; ``male`` (None when
        unknown) gives the normal copies of X and Y."""
        allele = call.annotation
        if allele is None:
            return []
        found = self.for_allele(allele)
        if allele.primary is None or not _gained(call, male):
            return found
        for each in (allele.primary, *allele.others):
            if NEARBY_TERMS.issuperset(each.consequences):
                continue
            for rule in self.by_gene.get(each.gene_symbol or "", ()):
                amplified = rule.match is Match.CLASS and rule.alteration == AMPLIFICATION
                if amplified and rule not in found:
                    found.append(rule)
        return found


def _gained(call: VariantCall, male: bool | None) -> bool:
    """Whether the call is a DUP or CNV with more copies than its chromosome normally has;
    where the sex is unknown, more than X or Y can have (a copy number of 8 on X is a gain
    in anyone)."""
    sv = call.structural
    if sv is None or sv.sv_type not in GAIN_TYPES or sv.copy_number is None:
        return False
    normal = ploidy(call.chromosome, male)
    if normal is None and male is None:
        known = [p for p in (ploidy(call.chromosome, True), ploidy(call.chromosome, False)) if p]
        normal = max(known, default=None)
    return normal is not None and sv.copy_number > normal


def _meets(rule: ActionabilityRule, consequence: TranscriptConsequence) -> bool:
    if rule.match is Match.VARIANT:
        return _protein_change(consequence.hgvs_p) == _protein_change(rule.alteration)
    return rule.alteration == LOSS_OF_FUNCTION and bool(
        LOSS_OF_FUNCTION_TERMS.intersection(consequence.consequences)
    )


def _protein_change(hgvs_p: str | None) -> str | None:
    """``ENSP…:p.(Val600Glu)`` and ``p.Val600Glu`` alike as ``Val600Glu``."""
    if not hgvs_p:
        return None
    change = hgvs_p.rpartition(":")[2].removeprefix("p.")
    return change.removeprefix("(").removesuffix(")") or None


def read_knowledge(path: Path) -> KnowledgeBase:
    """The knowledge file at ``path``, every row checked; a bad row names its line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the knowledge file: {exc}", source=str(path)) from exc
    try:
        table = read_table(lines, _COLUMNS)
    except TableError as exc:
        raise _bad(path, exc.line, exc.message) from None
    rules = [_rule(path, number, fields) for number, fields in table.rows]
    meta = table.meta
    by_gene: dict[str, tuple[ActionabilityRule, ...]] = {}
    for rule in rules:
        if rule.match is not Match.BIOMARKER:
            by_gene[rule.gene] = (*by_gene.get(rule.gene, ()), rule)
    name = meta.get("name", path.name)
    return KnowledgeBase(name, meta.get("version"), tuple(rules), by_gene)


def _rule(path: Path, number: int, fields: list[str]) -> ActionabilityRule:
    if len(fields) != len(_COLUMNS):
        raise _bad(path, number, f"{len(fields)} columns, expected {len(_COLUMNS)}")
    row = dict(zip(_COLUMNS, fields, strict=True))
    try:
        match, effect = Match(row["match"]), Effect(row["effect"])
    except ValueError:
        allowed = f"match: {', '.join(Match)}; effect: {', '.join(Effect)}"
        raise _bad(path, number, f"unknown match or effect ({allowed})") from None
    for column in ("alteration", "medication", "condition"):
        if not row[column]:
            raise _bad(path, number, f"the {column} is empty")
    if match is not Match.BIOMARKER and not row["gene"]:
        raise _bad(path, number, f"a {match} rule needs a gene")
    if match is Match.CLASS and row["alteration"] not in CLASSES:
        known = ", ".join(CLASSES)
        raise _bad(path, number, f"unknown variant class {row['alteration']!r}; use {known}")
    if match is Match.BIOMARKER:
        _check_biomarker(path, number, row["alteration"])
    return ActionabilityRule(
        match,
        row["gene"],
        row["alteration"],
        row["condition"],
        row["medication"],
        effect,
        row["evidence"],
        row["source"],
        number,
    )


def _check_biomarker(path: Path, number: int, alteration: str) -> None:
    if alteration in _MSI:
        return
    if alteration.startswith(_TMB):
        try:
            threshold = float(alteration.removeprefix(_TMB))
        except ValueError:
            threshold = math.nan
        if math.isfinite(threshold) and threshold >= 0:
            return
    raise _bad(path, number, f"biomarker {alteration!r}: use MSI-H, MSI-L, MSS or TMB>=N")


def _bad(path: Path, line: int | None, message: str) -> InputError:
    return InputError(f"knowledge file: {message}", source=str(path), line=line)
