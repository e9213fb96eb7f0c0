"""The resources around the variants: report, study, analysis and data files.

All are built after the variants, so the report's ``result`` can be the writer's lazy list of
variant references instead of a million dicts in memory. Order of :meth:`ReportBuilder.build`:
data files (DocumentReference, genomic-data-file), the genomic-study-analysis and
genomic-study Procedures, then the genomic-report DiagnosticReport.

What the conversion concluded beside its results (:class:`Interpretation`) goes in too: the
report's plain-text conclusion, made of findings only (:func:`conclusion`), its
recommended-action Tasks, and on the analysis the sources that decided.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ..model import AnalysisContext, Finding, FindingKind, GenomicRegion
from .codes import concept, effective_time, instant, profile
from .identifiers import (
    URI_SYSTEM,
    IdFactory,
    identifier,
    internal,
    order_reference,
    patient_reference,
    performer_reference,
    specimen_reference,
)

__all__ = ["CONCLUSION_LIMIT", "Interpretation", "ReportBuilder", "conclusion"]

#: Attachment.size is an unsignedInt
_MAX_SIZE = 2**31 - 1
#: the findings a conclusion states before it counts the rest: a report stays readable
CONCLUSION_LIMIT: Final = 20
_RANK: Final = {kind: rank for rank, kind in enumerate(FindingKind)}
_NONE_PATHOGENIC: Final = "No variants classified as pathogenic or likely pathogenic are reported."


@dataclass(frozen=True, slots=True)
class Interpretation:
    """What the report states beyond its list of results, gathered while converting."""

    #: the conclusion's findings, in the order found (file order, then the other results)
    findings: Sequence[Finding] = ()
    #: diagnostic implications by the source that decided; every classification source
    #: used is listed, with 0 if it decided none
    decided: Mapping[str, int] = field(default_factory=dict)
    #: ids of the medication-recommendation Tasks the report recommends
    tasks: Sequence[str] = ()


def conclusion(
    findings: Sequence[Finding], *, classified: bool, limit: int = CONCLUSION_LIMIT
) -> str | None:
    """The report's conclusion, made of ``findings`` alone: their sentences by kind (in the
    order of :class:`FindingKind`, each kind in the order found), at most ``limit`` of them
    and then how many more the report holds; None when there is nothing to say. Without a
    diagnostic finding, when the variants were ``classified`` (a classification source was
    used), it says that none is pathogenic or likely pathogenic: true of what is reported.

    A policy that withholds results (consent) filters ``findings`` before this call, and
    nowhere else: ``conclusion([f for f in findings if withheld.isdisjoint(f.about)], ...)``.
    A withheld finding then leaves no trace: no sentence, and the rest are counted after
    the filter. ``classified`` says whether a source was used, never what it found.
    """
    ordered = sorted(findings, key=lambda f: _RANK[f.kind])
    lines = [f.sentence for f in ordered[:limit]]
    if len(ordered) > limit:
        lines.append(f"{len(ordered) - limit} more findings are listed in the report's results.")
    if classified and not any(f.kind is FindingKind.DIAGNOSTIC for f in ordered):
        lines.insert(0, _NONE_PATHOGENIC)
    return "\n".join(lines) or None


class ReportBuilder:
    """Builds the non-variant resources of one conversion."""

    def __init__(self, ctx: AnalysisContext) -> None:
        self._ctx = ctx
        ids = IdFactory(ctx)
        self._id = {
            kind: ids.resource(kind)
            for kind in ("report", "study", "analysis", "vcf-file", "studied-file", "uncalled-file")
        }
        self._subject = patient_reference(ctx.patient)
        self._effective = effective_time(ctx.file_date, ctx.issued)

    def build(
        self, results: Sequence[dict[str, str]], interpretation: Interpretation | None = None
    ) -> Iterator[dict[str, Any]]:
        """Data files, analysis, study and report; ``results`` are the references to the
        variants and the other results."""
        found = interpretation or Interpretation()
        files = self.data_files()
        yield from files.values()
        yield self.analysis(files, found.decided)
        yield self.study()
        yield self.report(results, found)

    def _resource(self, resource_type: str, kind: str, profile_name: str) -> dict[str, Any]:
        """The opening elements every resource shares: type, id and profile."""
        rid = self._id[kind]
        return {
            "resourceType": resource_type,
            "id": rid,
            "meta": {"profile": [profile(profile_name)]},
        }

    def data_files(self) -> dict[str, dict[str, Any]]:
        """genomic-data-file DocumentReferences, by kind, when the context asks for them."""
        ctx = self._ctx
        if not ctx.include_document_reference:
            return {}
        files = {"vcf-file": self._vcf_file()}
        if ctx.regions_studied:
            name = ctx.regions_studied_name or "regions-studied.bed"
            files["studied-file"] = self._bed_file("studied-file", name, ctx.regions_studied)
        if ctx.uncallable_regions:
            name = ctx.uncallable_regions_name or "uncallable-regions.bed"
            files["uncalled-file"] = self._bed_file("uncalled-file", name, ctx.uncallable_regions)
        return files

    def _document(self, kind: str, description: str, attachment: dict[str, Any]) -> dict[str, Any]:
        """A genomic-data-file DocumentReference around ``attachment``."""
        doc = self._resource("DocumentReference", kind, "genomic-data-file")
        doc["identifier"] = [identifier(doc["id"])]
        doc["status"] = "current"
        doc["subject"] = self._subject
        if (date := instant(self._ctx.issued)) is not None:
            doc["date"] = date
        doc["description"] = description
        doc["content"] = [{"attachment": attachment}]
        doc["context"] = {"related": [internal("DiagnosticReport", self._id["report"])]}
        return doc

    def _vcf_file(self) -> dict[str, Any]:
        """The input VCF, described (not embedded); its SHA-256 as an RFC 6920 ``ni`` URI."""
        ctx = self._ctx
        gzipped = ctx.input_name.endswith((".gz", ".bgz"))
        attachment: dict[str, Any] = {
            "contentType": "application/gzip" if gzipped else "text/plain",
            "title": ctx.input_name,
        }
        if ctx.input_size is not None and ctx.input_size <= _MAX_SIZE:
            attachment["size"] = ctx.input_size
        doc = self._document("vcf-file", "Variant calls (VCF) of this report", attachment)
        if ctx.input_sha256:
            digest = base64.urlsafe_b64encode(bytes.fromhex(ctx.input_sha256)).rstrip(b"=")
            doc["identifier"].append(
                {"system": URI_SYSTEM, "value": f"ni:///sha-256;{digest.decode()}"}
            )
        return doc

    def _bed_file(self, kind: str, name: str, regions: Sequence[GenomicRegion]) -> dict[str, Any]:
        """A BED of ``regions``, embedded with its size and SHA-1 hash."""
        data = "".join(f"{r.chrom}\t{r.start}\t{r.end}\n" for r in regions).encode()
        attachment = {
            "contentType": "text/plain",
            "data": base64.b64encode(data).decode(),
            "size": len(data),
            "hash": base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode(),
            "title": name,
        }
        what = "Regions studied" if kind == "studied-file" else "Uncallable regions"
        return self._document(kind, f"{what} (BED, 0-based half-open)", attachment)

    def analysis(
        self, files: dict[str, dict[str, Any]], decided: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        """The genomic-study-analysis Procedure: method, build, regions and the VCF; as
        notes, the sources and their versions, and how many diagnostic implications each
        classification source decided (``decided``)."""
        ctx = self._ctx
        proc = self._resource("Procedure", "analysis", "genomic-study-analysis")
        proc["extension"] = self._analysis_extensions(files)
        proc["identifier"] = [identifier(proc["id"])]
        proc.update(self._procedure_common())
        if (performer := performer_reference(ctx)) is not None:
            proc["performer"] = [{"actor": performer}]
        counts = "; ".join(f"{source}: {n}" for source, n in (decided or {}).items())
        sources = {
            "Variant caller (VCF ##source)": ctx.caller,
            "Transcript annotation (VCF header)": ctx.annotation,
            "ClinVar release (VCF header)": ctx.clinvar,
            "Actionability knowledge": ctx.knowledge,
            "Lab classifications (decide over ClinVar)": ctx.classifications,
            "Pharmacogenomic calls": ctx.pharmacogenomics,
            "Diagnostic implications by the source that decided": counts,
        }
        notes = [{"text": f"{what}: {name}"} for what, name in sources.items() if name]
        if notes:
            proc["note"] = notes
        return proc

    def _analysis_extensions(self, files: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Extensions of the analysis, in the order of the profile's slices."""
        ctx = self._ctx
        exts = [
            _ext("genomic-study-analysis-method-type", concept("study-method-type", "ngs-mps")),
            _ext("genomic-study-analysis-genome-build", concept("genome-build", ctx.build)),
            # "mixed" has no LOINC answer: text only, as the extensible binding allows
            _ext(
                "genomic-study-analysis-genomic-source-class",
                concept("source-class", ctx.source_class),
            ),
            _ext("genomic-study-analysis-focus", self._subject, "valueReference"),
        ]
        if (specimen := specimen_reference(ctx)) is not None:
            exts.append(_ext("genomic-study-analysis-specimen", specimen, "valueReference"))
        if (regions := self._regions(files)) is not None:
            exts.append(regions)
        exts.append(self._output(files))
        return exts

    def _regions(self, files: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        """The regions extension: a description, and the BED files when they are sent."""
        ctx = self._ctx
        parts = []
        if ctx.regions_studied:
            parts.append(_describe("studied", ctx.regions_studied_name, ctx.regions_studied))
        if ctx.uncallable_regions:
            parts.append(
                _describe("uncallable", ctx.uncallable_regions_name, ctx.uncallable_regions)
            )
        if not parts:
            return None
        subs: list[dict[str, Any]] = [{"url": "description", "valueString": "; ".join(parts)}]
        for kind, url in (("studied-file", "studied"), ("uncalled-file", "uncalled")):
            if kind in files:
                subs.append(
                    {"url": url, "valueReference": internal("DocumentReference", self._id[kind])}
                )
        return {"url": profile("genomic-study-analysis-regions"), "extension": subs}

    def _output(self, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The VCF as the analysis's output: a reference to its DocumentReference, or its name."""
        ctx = self._ctx
        if "vcf-file" in files:
            file = internal("DocumentReference", self._id["vcf-file"])
        else:
            file = {"display": ctx.input_name}
        subs = [
            {"url": "file", "valueReference": file},
            {"url": "type", "valueCodeableConcept": concept("data-format", "vcf")},
        ]
        return {"url": profile("genomic-study-analysis-output"), "extension": subs}

    def _procedure_common(self) -> dict[str, Any]:
        """Status, category, subject and time shared by study and analysis."""
        common: dict[str, Any] = {
            "status": "completed",
            "category": concept("category", "laboratory"),
            "subject": self._subject,
        }
        if self._effective is not None:
            common["performedDateTime"] = self._effective
        return common

    def study(self) -> dict[str, Any]:
        """The genomic-study Procedure, pointing at its one analysis."""
        proc = self._resource("Procedure", "study", "genomic-study")
        analysis = internal("Procedure", self._id["analysis"])
        proc["extension"] = [_ext("genomic-study-analysis-ext", analysis, "valueReference")]
        proc["identifier"] = [identifier(proc["id"])]
        if (order := order_reference(self._ctx)) is not None:
            proc["basedOn"] = [order]
        proc.update(self._procedure_common())
        return proc

    def report(
        self, results: Sequence[dict[str, str]], interpretation: Interpretation | None = None
    ) -> dict[str, Any]:
        """The genomic-report DiagnosticReport; ``result`` is kept as given (may be lazy).
        ``interpretation`` adds a recommended-action per Task and the conclusion."""
        ctx = self._ctx
        found = interpretation or Interpretation()
        rep = self._resource("DiagnosticReport", "report", "genomic-report")
        study = internal("Procedure", self._id["study"])
        rep["extension"] = [_ext("genomic-study-reference", study, "valueReference")]
        rep["extension"] += [
            _ext("recommended-action", internal("Task", task), "valueReference")
            for task in found.tasks
        ]
        rep["identifier"] = [identifier(rep["id"])]
        if (order := order_reference(ctx)) is not None:
            rep["basedOn"] = [order]
        rep["status"] = "final"
        rep["category"] = [concept("category", "genetics")]
        rep["code"] = concept("resource-code", "report")
        rep["subject"] = self._subject
        optional = {
            "effectiveDateTime": self._effective,
            "issued": instant(ctx.issued),
            "performer": [p] if (p := performer_reference(ctx)) else None,
            "specimen": [s] if (s := specimen_reference(ctx)) else None,
            "result": results if len(results) else None,
            "conclusion": conclusion(found.findings, classified=bool(found.decided)),
        }
        rep.update((k, v) for k, v in optional.items() if v is not None)
        return rep


def _ext(name: str, value: dict[str, Any], key: str = "valueCodeableConcept") -> dict[str, Any]:
    """A simple extension of the IG."""
    return {"url": profile(name), key: value}


def _describe(what: str, name: str | None, regions: Sequence[GenomicRegion]) -> str:
    """A one-line summary of a region set, e.g. ``studied: exome.bed (3 regions, 450 bp)``."""
    size = sum(r.end - r.start for r in regions)
    source = name or "regions given as options"
    return f"{what}: {source} ({len(regions)} regions, {size} bp)"
