"""ACMG secondary findings: which pathogenic and likely pathogenic alleles of the genes on the
ACMG SF v3.3 list a report returns as secondary findings, by each gene's reporting rule.

The list is ``mappings/acmg_secondary_findings.csv``, one row per gene; its source, columns,
rule codes and unverified rows are described in ``mappings/acmg_secondary_findings.md``.
:func:`evaluate_secondary_findings` takes every candidate allele of one report and the
patient's sex and returns, for each listed gene with a candidate, whether it is reportable,
the rule applied and a one-sentence reason. Genes off the list get no decision. Whether a
finding is primary (it answers the indication) or secondary is decided elsewhere.

Policy decided here:

* Only Pathogenic and Likely pathogenic alleles count. VUS, likely benign and benign alleles
  are never reported.
* ``plp_biallelic``: reported when one P/LP allele is homozygous (or hemizygous: no other copy
  is present), or when two different heterozygous P/LP alleles lie on both copies of the gene.
  Two alleles stated in cis do not count. Two alleles of unknown phase *are* reported, and the
  reason says that their phase is unknown. This is ACMG's own rule, in the v3.3 table's
  reporting guidance: "If phase is unknown for two heterozygous P/LP variants, the variants
  are acceptable for return as SFs if the variants do not have prior evidence of existing in
  cis (on the same copy of the gene)." A candidate's ``phase`` gives its relation to the
  gene's other P/LP alleles: ``"Trans"`` if at least one of them is on the other copy,
  ``"Cis"`` if all of them are on its own copy, ``None`` if unknown. These are codes of
  http://terminology.hl7.org/CodeSystem/sequence-phase-relationship-cs.
* ``xl_hemi_or_biallelic_female`` (ABCD1): in a male, any P/LP allele is reported, since he has
  one X. Otherwise the biallelic rule applies, so a single heterozygous allele in a female, or
  in a patient of unknown sex, is not reported. ``xl_hemi_het_hom`` (GLA, OTC): any P/LP
  allele is reported, in either sex.
* ``hfe_c282y_homozygous_only``: only p.Cys282Tyr, homozygous. It is recognised by its p.HGVS,
  three- or one-letter (``p.C282Y``), with or without the reference sequence.
* ``plp_truncating_only`` (TTN): the allele must be truncating. That means one of its Sequence
  Ontology consequences is in :data:`adapter.readers.knowledge.LOSS_OF_FUNCTION_TERMS`.
* The ``variant_restriction`` texts that a candidate's own data can check are enforced: APOB
  missense alleles only; no truncating alleles of PCSK9, RET or TGFBR1; none of SMAD4's four
  Myhre syndrome missense variants. The rest need the condition a variant was classified for,
  exon usage or case-level evidence, which the candidates lack. The .md lists them as not
  machine-enforced.
* A candidate is one allele, not one transcript. The same allele given twice, alleles stated
  both in cis and in trans, or a mitochondrial zygosity on a listed (nuclear) gene is a
  :class:`PolicyError`. None of them is ever guessed at.
* The reason of a row that is not fully verified against the ACMG publication says so.

Specs: ACMG SF v3.3 (Lee K et al., Genet Med 2025; see the .md for what is verified);
HGVS protein nomenclature https://hgvs-nomenclature.org/stable/recommendations/protein/;
Sequence Ontology http://www.sequenceontology.org/.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Final, NamedTuple

from ..errors import PolicyError
from ..model import ClinicalSignificance, Sex, Zygosity
from ..phasing import Relation
from ..readers.knowledge import LOSS_OF_FUNCTION_TERMS
from ..resources import data_dir

__all__ = [
    "AcmgSfList",
    "CandidateAllele",
    "Category",
    "ListedGene",
    "ReportingRule",
    "SecondaryFindingDecision",
    "Verified",
    "acmg_sf_list",
    "evaluate_secondary_findings",
]

TABLE: Final = "acmg_secondary_findings.csv"
COLUMNS: Final = (
    "gene",
    "hgnc_id",
    "condition",
    "mondo",
    "category",
    "inheritance",
    "rule",
    "variant_restriction",
    "adult_onset",
    "sf_version_added",
    "verified",
    "source_note",
)


class Category(StrEnum):
    """The project's four phenotype categories of the list."""

    CANCER = "cancer"
    CARDIOVASCULAR = "cardiovascular"
    METABOLIC = "metabolic"
    MISCELLANEOUS = "miscellaneous"


class Verified(StrEnum):
    """How far a row was checked against public copies of the ACMG table."""

    YES = "yes"
    PARTLY = "partly"
    NO = "no"


class ReportingRule(StrEnum):
    """Which of a gene's P/LP alleles are secondary findings (codes of the .md)."""

    PLP_ANY = "plp_any"
    PLP_BIALLELIC = "plp_biallelic"
    HFE_C282Y_HOMOZYGOUS_ONLY = "hfe_c282y_homozygous_only"
    PLP_TRUNCATING_ONLY = "plp_truncating_only"
    XL_HEMI_HET_HOM = "xl_hemi_het_hom"
    XL_HEMI_OR_BIALLELIC_FEMALE = "xl_hemi_or_biallelic_female"


@dataclass(frozen=True, slots=True)
class ListedGene:
    """One row of the list."""

    gene: str  # HGNC symbol
    hgnc_id: str  # e.g. "HGNC:1100"
    condition: str
    mondo: tuple[str, ...]  # MONDO ids where the source gives them
    category: Category
    inheritance: str  # AD, AR or XL
    rule: ReportingRule
    variant_restriction: str  # ACMG's restriction, as the source words it; empty: none
    adult_onset: bool | None  # derived by this project, never ACMG's; None: not derived
    sf_version_added: str  # e.g. "3.0"
    verified: Verified
    source_note: str
    line: int  # in the table, for messages


@dataclass(frozen=True, slots=True)
class AcmgSfList:
    """The list: its ACMG SF version, its genes by symbol, and the file read."""

    version: str  # e.g. "3.3"
    genes: Mapping[str, ListedGene]
    source: str


@dataclass(frozen=True, slots=True)
class CandidateAllele:
    """One allele of one gene in the patient, as its report classifies it."""

    gene: str  # HGNC symbol
    tier: ClinicalSignificance
    zygosity: Zygosity
    hgvs_c: str | None = None  # with or without its transcript, e.g. "NM_007294.4:c.68_69del"
    hgvs_p: str | None = None  # e.g. "p.Glu23ValfsTer17", "NP_000401.1:p.(Cys282Tyr)", "p.C282Y"
    consequences: tuple[str, ...] = ()  # Sequence Ontology terms, e.g. ("frameshift_variant",)
    phase: Relation | None = None  # to the gene's other P/LP alleles; None: unknown

    @property
    def truncating(self) -> bool:
        """Whether a consequence ends the protein (a loss-of-function term)."""
        return not LOSS_OF_FUNCTION_TERMS.isdisjoint(self.consequences)

    @property
    def protein_change(self) -> str | None:
        """The p.HGVS change in three-letter code without prefixes, e.g. ``Cys282Tyr``."""
        return _protein_change(self.hgvs_p)

    @property
    def label(self) -> str:
        """How a reason names the allele: its p.HGVS, else its c.HGVS."""
        if change := self.protein_change:
            return f"p.{change}"
        return self.hgvs_c.rpartition(":")[2] if self.hgvs_c else "an allele without HGVS"

    @property
    def key(self) -> str | None:
        """What identifies the allele within its gene (c. before p.); None when neither."""
        return (self.hgvs_c.rpartition(":")[2] if self.hgvs_c else None) or self.protein_change


@dataclass(frozen=True, slots=True)
class SecondaryFindingDecision:
    """Whether a listed gene's candidate alleles make a secondary finding, and why."""

    gene: str
    reportable: bool
    rule: ReportingRule
    reason: str  # one sentence, starting with the gene, e.g. "HFE: p.Cys282Tyr homozygous"
    alleles: tuple[CandidateAllele, ...]  # every candidate of the gene
    listing: ListedGene  # the gene's row: category, adult_onset, verified
    #: the alleles the finding is made of, to return when reportable (none when not): the
    #: P/LP ones the gene's rule and restrictions admit (HFE: homozygous p.Cys282Tyr alone,
    #: TTN: the truncating ones)
    disclosed: tuple[CandidateAllele, ...] = ()


class _Verdict(NamedTuple):
    reportable: bool
    reason: str
    #: of the admitted alleles, those the finding is made of, when they are not all of them
    only: tuple[CandidateAllele, ...] | None = None


# ---- the table ----------------------------------------------------------------------------

_PATTERNS: Final = {
    "gene": (re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*"), "an HGNC gene symbol is required"),
    "hgnc_id": (re.compile(r"HGNC:\d+"), "the HGNC id (HGNC:<digits>) is required"),
    "mondo": (re.compile(r"(MONDO:\d{7}(;MONDO:\d{7})*)?"), "MONDO ids (';'-separated) or none"),
    "sf_version_added": (re.compile(r"\d+\.\d+"), "the list version that added it, e.g. 3.0"),
}
_CHOICES: Final[dict[str, tuple[str, ...]]] = {
    "category": tuple(Category),
    "inheritance": ("AD", "AR", "XL"),
    "rule": tuple(ReportingRule),
    "adult_onset": ("yes", "no", ""),
    "verified": tuple(Verified),
}


def acmg_sf_list(path: Path | None = None) -> AcmgSfList:
    """The list at ``path`` (default: the installed mappings), read and checked once."""
    return _read(path or data_dir("mappings") / TABLE)


@cache
def _read(path: Path) -> AcmgSfList:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(
            f"cannot read the ACMG secondary-findings list: {exc}", source=str(path)
        ) from exc
    version, rows = _rows(path, lines)
    genes: dict[str, ListedGene] = {}
    for number, fields in rows:
        entry = _entry(path, number, fields)
        if first := genes.get(entry.gene):
            raise _bad(
                path,
                number,
                "gene",
                f"{entry.gene} is listed again (first on line {first.line}); keep one row per gene",
            )
        genes[entry.gene] = entry
    return AcmgSfList(version, MappingProxyType(genes), str(path))


def _rows(path: Path, lines: list[str]) -> tuple[str, list[tuple[int, list[str]]]]:
    """The ``# version:`` and the rows (line number, fields) after the exact header."""
    version, header, rows = "", False, []
    for number, text in enumerate(lines, 1):
        if text.startswith("#"):
            key, _, value = text.lstrip("# ").partition(":")
            version = value.strip() if key.strip() == "version" else version
        elif text.strip():
            fields = next(csv.reader([text]))
            if header:
                rows.append((number, _full(path, number, fields)))
            elif tuple(fields) == COLUMNS:
                header = True
            else:
                raise _bad(path, number, None, f"the header must be: {','.join(COLUMNS)}")
    if not header:
        raise _bad(path, None, None, "no header line")
    if not version:
        raise _bad(path, None, None, "no '# version: <ACMG SF version>' line")
    return version, rows


def _full(path: Path, number: int, fields: list[str]) -> list[str]:
    if len(fields) != len(COLUMNS):
        raise _bad(
            path,
            number,
            None,
            f"{len(fields)} fields where the header names {len(COLUMNS)}; quote a field that "
            "holds a comma",
        )
    return fields


def _entry(path: Path, number: int, fields: list[str]) -> ListedGene:
    row = dict(zip(COLUMNS, fields, strict=True))
    for column, (pattern, needed) in _PATTERNS.items():
        if not pattern.fullmatch(row[column]):
            raise _bad(path, number, column, f"{needed}, not {row[column]!r}")
    for column, allowed in _CHOICES.items():
        if row[column] not in allowed:
            raise _bad(
                path,
                number,
                column,
                f"unknown {column} {row[column]!r}; use one of: "
                f"{', '.join(a or '(empty)' for a in allowed)}",
            )
    return ListedGene(
        gene=row["gene"],
        hgnc_id=row["hgnc_id"],
        condition=row["condition"],
        mondo=tuple(filter(None, row["mondo"].split(";"))),
        category=Category(row["category"]),
        inheritance=row["inheritance"],
        rule=ReportingRule(row["rule"]),
        variant_restriction=row["variant_restriction"],
        adult_onset={"yes": True, "no": False}.get(row["adult_onset"]),
        sf_version_added=row["sf_version_added"],
        verified=Verified(row["verified"]),
        source_note=row["source_note"],
        line=number,
    )


def _bad(path: Path, line: int | None, column: str | None, message: str) -> PolicyError:
    return PolicyError(
        f"{message} (the ACMG secondary-findings list: see mappings/acmg_secondary_findings.md)",
        source=str(path),
        line=line,
        field=column,
    )


# ---- the decision -------------------------------------------------------------------------

_DISEASE: Final = frozenset(
    {ClinicalSignificance.PATHOGENIC, ClinicalSignificance.LIKELY_PATHOGENIC}
)
_ALL_COPIES: Final = frozenset({Zygosity.HOMOZYGOUS, Zygosity.HEMIZYGOUS})
_MITOCHONDRIAL: Final = frozenset({Zygosity.HOMOPLASMIC, Zygosity.HETEROPLASMIC})
_C282Y: Final = "Cys282Tyr"
#: restrictions a candidate's own data can check; the .md lists those it cannot
_MISSENSE_ONLY: Final = {"APOB": "missense variants only (not hypobetalipoproteinemia LoF)"}
_NOT_TRUNCATING: Final = {
    "PCSK9": "gain-of-function variants only",
    "RET": "gain-of-function variants only",
    "TGFBR1": "kinase-domain missense variants only (truncating ones cause MSSE)",
}
_MYHRE: Final = {"SMAD4": frozenset({"Ile500Val", "Ile500Thr", "Ile500Met", "Arg496Cys"})}
_UNVERIFIED: Final = {
    Verified.PARTLY: " [list row only partly verified against the ACMG publication]",
    Verified.NO: " [list row not verified against the ACMG publication]",
}


def evaluate_secondary_findings(
    candidates: Iterable[CandidateAllele], sex: Sex, *, sf_list: AcmgSfList | None = None
) -> dict[str, SecondaryFindingDecision]:
    """Per listed gene with a candidate, in symbol order, whether it is a secondary finding."""
    listed = sf_list or acmg_sf_list()
    by_gene: dict[str, list[CandidateAllele]] = {}
    for allele in candidates:
        if allele.gene in listed.genes:
            by_gene.setdefault(allele.gene, []).append(allele)
    return {
        gene: _decide(listed.genes[gene], tuple(by_gene[gene]), sex) for gene in sorted(by_gene)
    }


def _decide(
    entry: ListedGene, alleles: tuple[CandidateAllele, ...], sex: Sex
) -> SecondaryFindingDecision:
    _check_alleles(entry.gene, alleles)
    checked = [(a, _restricted(entry.gene, a)) for a in alleles if a.tier in _DISEASE]
    admitted = tuple(a for a, why in checked if why is None)
    excluded = [f"{a.label} {why}" for a, why in checked if why is not None]
    if admitted:
        verdict = _RULES[entry.rule](admitted, sex)
    elif excluded:
        verdict = _Verdict(False, "; ".join(excluded))
    else:
        tiers = ", ".join(f"{a.label}: {a.tier}" for a in alleles)
        verdict = _Verdict(
            False, f"no P/LP allele ({tiers}); VUS, likely benign and benign are not reported"
        )
    reason = f"{entry.gene}: {verdict.reason}{_UNVERIFIED.get(entry.verified, '')}"
    disclosed = (admitted if verdict.only is None else verdict.only) if verdict.reportable else ()
    return SecondaryFindingDecision(
        entry.gene, verdict.reportable, entry.rule, reason, alleles, entry, disclosed
    )


def _check_alleles(gene: str, alleles: tuple[CandidateAllele, ...]) -> None:
    """Refuse candidates that cannot be one allele each of a nuclear gene."""
    keys = [a.key for a in alleles if a.key is not None]
    if len(keys) != len(set(keys)):
        raise PolicyError(
            f"{gene}: the same allele is given twice ({', '.join(keys)}); give each allele once, "
            "with its zygosity (a homozygous allele is one candidate)",
            field="alleles",
        )
    if mitochondrial := [a.label for a in alleles if a.zygosity in _MITOCHONDRIAL]:
        raise PolicyError(
            f"{gene}: {', '.join(mitochondrial)} has a mitochondrial zygosity on a nuclear gene; "
            "give heterozygous, homozygous or hemizygous",
            field="zygosity",
        )


def _restricted(gene: str, allele: CandidateAllele) -> str | None:
    """Why ACMG's restriction for ``gene`` excludes ``allele``; None when it does not."""
    if gene in _MISSENSE_ONLY and "missense_variant" not in allele.consequences:
        return f"is not missense; ACMG reports {_MISSENSE_ONLY[gene]}"
    if gene in _NOT_TRUNCATING and allele.truncating:
        return f"is truncating; ACMG reports {_NOT_TRUNCATING[gene]}"
    if allele.protein_change in _MYHRE.get(gene, ()):
        return "is a Myhre syndrome variant, which ACMG excludes"
    return None


def _any(alleles: tuple[CandidateAllele, ...], sex: Sex) -> _Verdict:
    return _Verdict(True, _described(alleles))


def _biallelic(alleles: tuple[CandidateAllele, ...], sex: Sex) -> _Verdict:
    if whole := [a for a in alleles if a.zygosity in _ALL_COPIES]:
        return _Verdict(True, _described(whole[:1]))
    names = " and ".join(a.label for a in alleles)
    if len(alleles) == 1:
        return _Verdict(
            False, f"one heterozygous P/LP allele ({names}); the recessive rule needs two"
        )
    phase = _phase(alleles)
    if phase == "Cis":
        return _Verdict(False, f"{names} in cis, on one copy; the recessive rule needs both copies")
    if phase == "Trans":
        return _Verdict(True, f"{names} heterozygous, in trans")
    return _Verdict(
        True,
        f"{names} heterozygous, phase unknown: reported, as ACMG accepts two P/LP variants "
        "without prior evidence of cis",
    )


def _phase(alleles: tuple[CandidateAllele, ...]) -> Relation | None:
    stated = {a.phase for a in alleles if a.phase is not None}
    if len(stated) > 1:
        raise PolicyError(
            f"{alleles[0].gene}: {', '.join(a.label for a in alleles)} are stated both in cis "
            "and in trans; correct the phase (None when it is unknown)",
            field="phase",
        )
    return stated.pop() if stated else None


def _hfe(alleles: tuple[CandidateAllele, ...], sex: Sex) -> _Verdict:
    c282y = [a for a in alleles if a.protein_change == _C282Y]
    if homozygous := tuple(a for a in c282y if a.zygosity is Zygosity.HOMOZYGOUS):
        return _Verdict(True, f"p.{_C282Y} homozygous", homozygous)
    return _Verdict(False, f"{_described(alleles)}; only homozygous p.{_C282Y} is reported")


def _truncating(alleles: tuple[CandidateAllele, ...], sex: Sex) -> _Verdict:
    if truncating := tuple(a for a in alleles if a.truncating):
        return _Verdict(True, f"{_described(truncating)}, truncating", truncating)
    return _Verdict(
        False, f"{_described(alleles)}, not truncating; only truncating variants are reported"
    )


def _x_any(alleles: tuple[CandidateAllele, ...], sex: Sex) -> _Verdict:
    return _Verdict(True, f"{_in(sex)}, {_described(alleles)}")


def _x_male_or_biallelic(alleles: tuple[CandidateAllele, ...], sex: Sex) -> _Verdict:
    if sex is Sex.MALE:
        return _Verdict(True, f"in a male, {' and '.join(a.label for a in alleles)} hemizygous")
    verdict = _biallelic(alleles, sex)
    if verdict.reportable or len(alleles) > 1:
        return _Verdict(verdict.reportable, f"{_in(sex)}, {verdict.reason}")
    return _Verdict(
        False,
        f"{_in(sex)}, one heterozygous P/LP allele ({alleles[0].label}); only a hemizygous male "
        "or a biallelic female is reported",
    )


def _described(alleles: Iterable[CandidateAllele]) -> str:
    return " and ".join(f"{a.label} {a.zygosity}" for a in alleles)


def _in(sex: Sex) -> str:
    return "sex unknown" if sex is Sex.UNKNOWN else f"in a {sex}"


_RULES: Final[dict[ReportingRule, Callable[[tuple[CandidateAllele, ...], Sex], _Verdict]]] = {
    ReportingRule.PLP_ANY: _any,
    ReportingRule.PLP_BIALLELIC: _biallelic,
    ReportingRule.HFE_C282Y_HOMOZYGOUS_ONLY: _hfe,
    ReportingRule.PLP_TRUNCATING_ONLY: _truncating,
    ReportingRule.XL_HEMI_HET_HOM: _x_any,
    ReportingRule.XL_HEMI_OR_BIALLELIC_FEMALE: _x_male_or_biallelic,
}

# ---- p.HGVS --------------------------------------------------------------------------------

_THREE_LETTER: Final = {
    "A": "Ala", "R": "Arg", "N": "Asn", "D": "Asp", "C": "Cys", "Q": "Gln", "E": "Glu",
    "G": "Gly", "H": "His", "I": "Ile", "L": "Leu", "K": "Lys", "M": "Met", "F": "Phe",
    "P": "Pro", "S": "Ser", "T": "Thr", "W": "Trp", "Y": "Tyr", "V": "Val", "*": "Ter",
}  # fmt: skip
_AMINO_ACID: Final = "[" + re.escape("".join(_THREE_LETTER)) + "]"
_ONE_LETTER_SUBSTITUTION: Final = re.compile(f"({_AMINO_ACID})(\\d+)({_AMINO_ACID})")


def _protein_change(hgvs_p: str | None) -> str | None:
    """``NP_000401.1:p.(Cys282Tyr)``, ``p.Cys282Tyr`` and ``p.C282Y`` alike as ``Cys282Tyr``."""
    if not hgvs_p:
        return None
    change = hgvs_p.rpartition(":")[2].removeprefix("p.").removeprefix("(").removesuffix(")")
    if one := _ONE_LETTER_SUBSTITUTION.fullmatch(change):
        return f"{_THREE_LETTER[one[1]]}{one[2]}{_THREE_LETTER[one[3]]}"
    return change or None
