"""Pharmacogenomic diplotype calls: a PharmCAT JSON report or the adapter's own TSV.

**PharmCAT** (``*.report.json``, written with ``-reporterJson``): the top-level
``pharmcatVersion`` names the release (``3.2.0``, or git-describe text such as
``v2.7.1-19-g0d11f2b6``); only major version 3 is read, any other is refused with the version
found. ``genes`` maps each gene symbol to its report (PharmCAT 3's ``ReportContext``); a map keyed
first by guideline source (``{"CPIC": {gene: report}}``, the 2.x shape) is read through its
``CPIC`` part. Of each gene report the ``recommendationDiplotypes`` are read (the diplotypes
PharmCAT matches guidelines with), else the ``sourceDiplotypes``: ``allele1.name``,
``allele2.name``, ``phenotypes`` and ``activityScore``. A gene without a call (allele
``Unknown``), with one allele only, or with several candidate diplotypes or phenotypes is
counted in ``skipped`` by that reason and not converted.

**TSV** (tab-separated, UTF-8): ``#`` lines are comments; the first other line is the header,
exactly ``gene	diplotype	phenotype	activity_score``; then one line per gene::

    gene	diplotype	phenotype	activity_score
    CYP2C19	*1/*2	Intermediate Metabolizer
    CYP2D6	*1/*4	Intermediate Metabolizer	1.0

``gene`` is the HGNC symbol; ``diplotype`` two allele names joined by one ``/``; ``phenotype``
the CPIC term (``Poor Metabolizer``, ``Decreased Function``…) or empty when none was assigned;
``activity_score`` a number or empty (trailing empty columns may be left out). A gene may appear
once. A bad line is an error naming its line and column.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..model import Diplotype, PharmacogenomicCall, PharmacogenomicReport
from .tabular import TableError, read_table

__all__ = ["SUPPORTED_PHARMCAT_MAJOR", "TSV_COLUMNS", "read_pharmacogenomics"]

#: PharmCAT major versions whose report layout this reader knows
SUPPORTED_PHARMCAT_MAJOR = (3,)
TSV_COLUMNS = ("gene", "diplotype", "phenotype", "activity_score")
_VERSION = re.compile(r"v?(\d+)\.(\d+)")
#: what PharmCAT writes where it could not call a gene
_NO_CALL = frozenset({"", "unknown", "no result", "n/a", "indeterminate"})


def read_pharmacogenomics(path: Path) -> PharmacogenomicReport:
    """The calls in ``path``: a PharmCAT JSON report when it starts with ``{``, else a TSV."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(path, None, f"cannot read the file: {exc}") from exc
    if text.lstrip().startswith("{"):
        return _pharmcat(path, text)
    return _tsv(path, text)


# -- PharmCAT ----------------------------------------------------------------------------


def _pharmcat(path: Path, text: str) -> PharmacogenomicReport:
    """The calls of a PharmCAT report, after its version is checked."""
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(path, exc.lineno, f"not valid JSON ({exc.msg})") from exc
    if not isinstance(report, dict) or "pharmcatVersion" not in report:
        raise _bad(path, None, "JSON without pharmcatVersion: give a PharmCAT *.report.json")
    version = str(report["pharmcatVersion"])
    _check_version(path, version)
    genes = _gene_reports(path, report.get("genes"))
    skipped: dict[str, int] = {}
    calls = []
    for symbol, gene in sorted(genes.items()):
        found = _gene_call(symbol, gene)
        if isinstance(found, str):
            skipped[found] = skipped.get(found, 0) + 1
        else:
            calls.append(found)
    data = report.get("dataVersion")
    return PharmacogenomicReport(
        tuple(calls), "PharmCAT", version, str(data) if data else None, skipped
    )


def _check_version(path: Path, version: str) -> None:
    """Refuse a report of a major version whose layout is not known."""
    found = _VERSION.match(version.strip())
    if found is None or int(found.group(1)) not in SUPPORTED_PHARMCAT_MAJOR:
        supported = ", ".join(f"{major}.x" for major in SUPPORTED_PHARMCAT_MAJOR)
        raise InputError(
            f"PharmCAT version {version!r} is not supported (supported: {supported}); "
            "rerun the sample with a supported PharmCAT release or give the calls as a TSV",
            source=str(path),
            field="pharmcatVersion",
        )


def _gene_reports(path: Path, genes: Any) -> Mapping[str, Any]:
    """Gene reports by symbol, from PharmCAT 3's flat map or the per-source (CPIC) one."""
    if not isinstance(genes, dict):
        raise InputError(
            "the report has no 'genes' object; give the report.json PharmCAT writes with "
            "-reporterJson",
            source=str(path),
            field="genes",
        )
    if all(isinstance(g, dict) and "geneSymbol" in g for g in genes.values()):
        return genes
    cpic = genes.get("CPIC")
    if isinstance(cpic, dict):
        return cpic
    raise InputError(
        "'genes' holds no gene reports (objects with geneSymbol)", source=str(path), field="genes"
    )


def _gene_call(symbol: str, gene: Any) -> PharmacogenomicCall | str:
    """The gene's call, or the reason it has none."""
    diplotypes = (
        gene.get("recommendationDiplotypes") or gene.get("sourceDiplotypes") or []
        if isinstance(gene, dict)
        else []
    )
    if len(diplotypes) > 1:
        return "ambiguous_diplotype"
    if not diplotypes or not isinstance(diplotypes[0], dict):
        return "no_call"
    found = diplotypes[0]
    first, second = (_allele(found.get(key)) for key in ("allele1", "allele2"))
    phenotypes = [str(p) for p in found.get("phenotypes") or [] if str(p).lower() not in _NO_CALL]
    if first is None:
        return "no_call"
    if second is None:  # a haploid call (e.g. G6PD in males) is no diplotype
        return "single_allele_call"
    if len(phenotypes) > 1:
        return "ambiguous_phenotype"
    score = _score(found.get("activityScore"))
    phenotype = phenotypes[0] if phenotypes else None
    return PharmacogenomicCall(Diplotype(symbol, first, second), phenotype, score)


def _allele(allele: Any) -> str | None:
    """An allele's name, or None where PharmCAT could not call it."""
    name = str(allele.get("name") or "") if isinstance(allele, dict) else ""
    return None if name.lower() in _NO_CALL else name


def _score(value: Any) -> float | None:
    """An activity score PharmCAT wrote (``"1.5"``, ``"n/a"``, ``null``), as a number."""
    try:
        found = float(value)
    except (TypeError, ValueError):
        return None
    return found if math.isfinite(found) else None


# -- TSV ---------------------------------------------------------------------------------


def _tsv(path: Path, text: str) -> PharmacogenomicReport:
    """The calls of the TSV, every line checked; a gene listed twice is an error."""
    try:
        table = read_table(text.splitlines(), TSV_COLUMNS)
    except TableError as exc:
        if exc.line is None:
            exc.message = "neither a PharmCAT JSON report nor a TSV with a header line"
        raise _bad(path, exc.line, exc.message) from None
    calls: list[PharmacogenomicCall] = []
    seen: dict[str, int] = {}
    for number, fields in table.rows:
        call = _row(path, number, fields)
        gene = call.diplotype.gene
        if gene in seen:
            raise _bad(path, number, f"{gene} is listed twice (lines {seen[gene]} and {number})")
        seen[gene] = number
        calls.append(call)
    return PharmacogenomicReport(tuple(calls), "TSV")


def _row(path: Path, number: int, fields: list[str]) -> PharmacogenomicCall:
    """One TSV line's call; a bad value names its column."""
    if not 2 <= len(fields) <= len(TSV_COLUMNS):
        raise _bad(path, number, f"{len(fields)} columns, expected {len(TSV_COLUMNS)}")
    gene, diplotype, phenotype, score = [*fields, "", ""][:4]
    if not re.fullmatch(r"[A-Z0-9][A-Z0-9-]*", gene):
        raise _bad(path, number, f"gene {gene!r} is not an HGNC symbol", "gene")
    alleles = diplotype.split("/")
    if len(alleles) != 2 or not all(a.strip() for a in alleles):
        raise _bad(path, number, f"diplotype {diplotype!r}: write two alleles as A/B", "diplotype")
    activity = _score(score) if score else None
    if score and activity is None:
        raise _bad(path, number, f"activity score {score!r} is not a number", "activity_score")
    return PharmacogenomicCall(
        Diplotype(gene, alleles[0].strip(), alleles[1].strip()), phenotype or None, activity, number
    )


def _bad(path: Path, line: int | None, message: str, field: str | None = None) -> InputError:
    return InputError(f"pharmacogenomic calls: {message}", source=str(path), line=line, field=field)
