"""One conversion, end to end: VCF → internal model → FHIR resources → output.

This is the library call behind ``fhir-genomics convert`` and ``POST /v1/convert``; the shells
only parse their options into :class:`ConvertOptions`. Nothing reaches the destination unless
the whole conversion (and validation, when asked) succeeded.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple

import orjson

from .assembly import accession
from .conformance import checker, sharing, variant_checks
from .disclosure import (
    Disclosure,
    GeneRuling,
    HeldCall,
    audited,
    phase_of,
    refusal,
    report_decision,
    report_reference,
    rule_genes,
    secondary_labelled,
    trail,
)
from .errors import InputError, OptionsError
from .fhir.biomarker import biomarker_observations
from .fhir.implication import CLINVAR, Implications, therapeutic_finding
from .fhir.pharmacogenomics import PharmacogenomicResources, pharmacogenomic_resources
from .fhir.phase import PhaseRelationships
from .fhir.report import Interpretation, ReportBuilder
from .fhir.variant import VariantBuilder
from .fhir.writers import Part, ResourceWriter, open_writer, variant_id
from .model import (
    AnalysisContext,
    ConversionSummary,
    Finding,
    FindingKind,
    GenomeBuild,
    GenomicRegion,
    GenomicSourceClass,
    MicrosatelliteStatus,
    PatientRef,
    PharmacogenomicReport,
    Sex,
    TumorBiomarkers,
)
from .parallel import (
    Aside,
    Job,
    ProgressCallback,
    convert_in_parallel,
    make_variants,
    variant_encoding,
    withholding,
)
from .phasing import PhaseRelation, PhaseTracker
from .policy import Decision, Deidentifier, Item, audit_event, labelled
from .readers.annotations import DEFAULT_PRIMARY_ORDER, PrimaryRule, find_sources
from .readers.classifications import ClassificationTable, read_classifications
from .readers.knowledge import KnowledgeBase, read_knowledge
from .readers.pharmacogenomics import read_pharmacogenomics
from .readers.vcf import VcfReader
from .readers.vcf_text import VcfHeader
from .regions import read_bed
from .validation import load_validator

__all__ = [
    "ConvertOptions",
    "OutputFormat",
    "convert_vcf",
    "optional_pair",
    "pair",
    "parse_instant",
    "patient_ref",
    "transcript_order",
    "tumor_biomarkers",
]

#: inputs this large are converted by several processes unless ``jobs`` says otherwise
AUTO_PARALLEL_BYTES = 8 << 20
MAX_AUTO_JOBS = 8  # the parent cuts and writes alone: more pay off less and less
CHUNK_VARIANTS = 2048  # variants encoded before they are handed on together
SPAN_BYTES = 2 << 20  # input text a worker converts at a time
#: a release date in a ClinVar file's name (``clinvar_20240107.vcf.gz``) or VEP's ClinVar="…"
_CLINVAR_RELEASE = re.compile(r"clinvar_(\d{8})|\bClinVar=\"?([^\"\s]+)", re.IGNORECASE)


class OutputFormat(StrEnum):
    """The three output forms of a conversion."""

    TRANSACTION = "transaction"
    COLLECTION = "collection"
    NDJSON = "ndjson"


@dataclass(frozen=True, slots=True)
class ConvertOptions:
    """Everything a user can say about one conversion."""

    patient: PatientRef
    sample: str | None = None
    build: GenomeBuild | None = None
    source_class: GenomicSourceClass = GenomicSourceClass.GERMLINE
    sex: Sex = Sex.UNKNOWN
    output_format: OutputFormat = OutputFormat.TRANSACTION
    regions: Sequence[GenomicRegion] = ()
    regions_bed: Path | None = None
    uncallable_bed: Path | None = None
    include_filtered: bool = False
    validate: bool = False
    include_document_reference: bool = False
    report_id: str | None = None
    specimen_id: str | None = None
    specimen_identifier: tuple[str, str] | None = None
    order_identifier: tuple[str, str] | None = None
    performer: str | None = None
    issued: datetime | None = None
    heteroplasmy_threshold: float = 0.95
    #: what makes a transcript an allele's representative one, tried in order (then the
    #: first the annotation lists)
    transcript_order: tuple[PrimaryRule, ...] = DEFAULT_PRIMARY_ORDER
    input_name: str | None = None
    #: processes that read and build the variants; 0: one per core (up to 8) over 8 MiB
    jobs: int = 0
    #: whole-tumor measures to report beside the variants (molecular-biomarker Observations)
    tumor: TumorBiomarkers | None = None
    #: an actionability knowledge file (see adapter.readers.knowledge)
    knowledge: Path | None = None
    #: a lab's own variant classifications (see adapter.readers.classifications)
    classifications: Path | None = None
    #: pharmacogenomic diplotype calls (see adapter.readers.pharmacogenomics)
    pharmacogenomics: Path | None = None
    #: the disclosure request the output answers (adapter.disclosure); None: no policy is
    #: applied, for a lab's own use of its results (the CLI and the API always give one)
    disclosure: Disclosure | None = None
    #: the secret key of the de-identification (adapter.policy.Deidentifier): when given, the
    #: output is pseudonymised, as a research disclosure must be
    pseudonym_key: bytes | None = field(default=None, repr=False)

    def check(self) -> None:
        """Reject contradictory or impossible options before any work is done."""
        p = self.patient
        has_id = p.id is not None
        has_identifier = p.identifier_system is not None or p.identifier_value is not None
        if has_id == has_identifier:
            raise OptionsError("give the patient either as an id or as an identifier, not both")
        if has_identifier and not (p.identifier_system and p.identifier_value):
            raise OptionsError("a patient identifier needs a system and a value (system|value)")
        if self.specimen_id and self.specimen_identifier:
            raise OptionsError("give the specimen either as an id or as an identifier, not both")
        if self.regions and self.regions_bed:
            raise OptionsError("give --region or --regions-bed, not both")
        if not 0.5 <= self.heteroplasmy_threshold <= 1.0:
            raise OptionsError("the heteroplasmy threshold must lie between 0.5 and 1.0")
        if self.jobs < 0:
            raise OptionsError("jobs must be 0 (automatic) or a number of processes")
        burden = self.tumor.mutational_burden if self.tumor else None
        if burden is not None and not (math.isfinite(burden) and burden >= 0):
            raise OptionsError("the tumor mutational burden is mutations per megabase, 0 or more")
        if self.issued is not None and self.issued.tzinfo is None:
            raise OptionsError("the issued time needs a time zone (e.g. 2026-01-31T12:00:00Z)")
        d = self.disclosure
        research = d is not None and d.request.purpose in d.policy.research
        if research and self.pseudonym_key is None:
            raise OptionsError(
                "a research disclosure is de-identified: give the deployment's pseudonym key "
                "(--pseudonym-key-file)",
                field="pseudonym_key",
            )
        if self.pseudonym_key is not None and self.output_format is not OutputFormat.NDJSON:
            raise OptionsError(
                "de-identified output is Bulk NDJSON (--format ndjson)", field="format"
            )


def convert_vcf(
    source: Path,
    destination: Path,
    options: ConvertOptions,
    *,
    progress: ProgressCallback | None = None,
) -> ConversionSummary:
    """Convert one VCF into ``destination`` (a Bundle file, or an NDJSON folder)."""
    options.check()
    if not source.is_file():
        raise InputError("no such file", source=str(source))
    if options.pseudonym_key is not None:
        return _research(source, destination, options, progress)
    return _convert(source, destination, options, progress)[0]


def _research(
    source: Path, destination: Path, options: ConvertOptions, progress: ProgressCallback | None
) -> ConversionSummary:
    """A research disclosure: the conversion, with its policy, into a private folder beside
    the destination, then each resource de-identified (:class:`Deidentifier`) into it."""
    key = options.pseudonym_key or b""
    deidentifier = Deidentifier(key, options.patient)  # a short key fails before any work
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".identified.") as folder:
        identified = Path(folder) / "ndjson"
        summary, ctx = _convert(source, identified, options, progress)
        with open_writer(OutputFormat.NDJSON.value, destination, ctx) as writer:
            for path in sorted(identified.iterdir()):
                with path.open("rb") as lines:
                    for line in lines:
                        writer.add(deidentifier.deidentified(orjson.loads(line)))
            summary.resources_written = writer.counts()
    return summary


def _convert(
    source: Path, destination: Path, options: ConvertOptions, progress: ProgressCallback | None
) -> tuple[ConversionSummary, AnalysisContext]:
    """:func:`convert_vcf`'s work, and the conversion's context."""
    studied = read_bed(options.regions_bed) if options.regions_bed else ()
    uncallable = read_bed(options.uncallable_bed) if options.uncallable_bed else ()
    sources = _read_sources(options)
    digest, size = _sha256(source)
    summary = ConversionSummary()
    reading: dict[str, Any] = {
        "sample": options.sample,
        "build": options.build,
        "sex": options.sex,
        "regions": tuple(options.regions) or tuple(studied),
        "include_filtered": options.include_filtered,
        "heteroplasmy_threshold": options.heteroplasmy_threshold,
        "transcript_order": options.transcript_order,
    }
    with VcfReader(source, summary=summary, **reading) as reader:
        if sources.classifications is not None:
            sources.classifications.check_build(reader.build)
        ctx = _context(
            options, reader, source, digest, size, studied=studied, uncallable=uncallable
        )
        ctx = _named_sources(ctx, reader.header, sources)
        disclosure = options.disclosure
        report = _permitted(disclosure, ctx) if disclosure is not None else None
        hold = (disclosure.held_genes(), disclosure.indication.genes) if disclosure else None
        validator = load_validator() if options.validate else None
        check = checker(validator, summary) if validator else _unchecked
        form = options.output_format.value
        with (
            sharing(validator) as share,
            open_writer(form, destination, ctx) as writer,
            _Gathering(ctx, writer, check, _decided(ctx, reader.header)) as gathering,
        ):
            workers, chunk = _workers(options.jobs, size), CHUNK_VARIANTS
            if workers > 1 and reader.index is None:  # indexed regions: read in one process
                job = Job(source, reading, ctx, form, options.validate, workers, chunk, SPAN_BYTES)
                job = replace(
                    job,
                    knowledge=sources.knowledge,
                    classifications=sources.classifications,
                    hold=hold,
                )
                convert_in_parallel(job, reader, writer, summary, progress, take=gathering.take)
            else:
                builder = VariantBuilder(
                    ctx,
                    accession,
                    share=share,
                    knowledge=sources.knowledge,
                    classifications=sources.classifications,
                )
                out = _Writing(writer, summary, progress, gathering.take)
                checks = variant_checks(validator, builder, summary)
                encode = variant_encoding(builder, writer, checks)
                held = withholding(hold, encode, builder, sources.classifications)
                make_variants(reader, builder, held or encode, out, chunk=chunk)
            rulings: dict[str, GeneRuling] = {}
            disclosed: dict[str, list[str]] = {}
            if disclosure is not None:
                rulings, disclosed = gathering.release(disclosure, summary)
            gathering.write_later()
            interpretation = _other_results(ctx, sources, gathering, summary)
            for resource in ReportBuilder(ctx).build(writer.result_references(), interpretation):
                check(resource)
                writer.add(resource)
            if disclosure is not None and report is not None:
                events, records = trail(ctx, disclosure, report, rulings, disclosed)
                for record in records:
                    check(record)
                    writer.add(record)
                audited(disclosure.audit_log, events)  # before the output is committed
            summary.resources_written = writer.counts()
    return summary, ctx


def _permitted(disclosure: Disclosure, ctx: AnalysisContext) -> Decision:
    """The decision on the report's primary results; a deny is audited and raised."""
    decision = report_decision(disclosure)
    if not decision.permitted:
        event = audit_event(decision, disclosure.request, report_reference(ctx), ctx)
        audited(disclosure.audit_log, [event])
        raise refusal(decision)
    return decision


class _Sources(NamedTuple):
    """What the user gave beside the VCF to interpret it, each read and checked."""

    knowledge: KnowledgeBase | None
    classifications: ClassificationTable | None
    pharmacogenomics: PharmacogenomicReport | None
    pharmacogenomics_path: Path | None


def _read_sources(options: ConvertOptions) -> _Sources:
    """The knowledge, classification and PGx files, read before any output: a bad one
    fails the conversion before anything is written."""
    return _Sources(
        read_knowledge(options.knowledge) if options.knowledge else None,
        read_classifications(options.classifications) if options.classifications else None,
        read_pharmacogenomics(options.pharmacogenomics) if options.pharmacogenomics else None,
        options.pharmacogenomics,
    )


def _named_sources(ctx: AnalysisContext, header: VcfHeader, sources: _Sources) -> AnalysisContext:
    """The context naming the sources of the interpretation and their versions, for the
    analysis to list: the header's annotation tool and ClinVar release, and the files."""
    tool = next(iter(find_sources(header)), None)
    pgx, pgx_path = sources.pharmacogenomics, sources.pharmacogenomics_path
    return replace(
        ctx,
        annotation=f"{tool.tool.value} {tool.version or '(version not stated)'}" if tool else None,
        clinvar=_clinvar_release(header),
        knowledge=sources.knowledge.label() if sources.knowledge else None,
        classifications=sources.classifications.label() if sources.classifications else None,
        pharmacogenomics=_pharmacogenomics_label(pgx, pgx_path) if pgx and pgx_path else None,
    )


def _clinvar_release(header: VcfHeader) -> str | None:
    """The ClinVar release a file's ClinVar INFO comes from, when its header dates it: VEP
    names it (``##VEP=... ClinVar="202301"``), annotators name the ClinVar file they read
    (``clinvar_20240107.vcf.gz``)."""
    if "CLNSIG" not in header.infos:
        return None
    for value in header.meta.values():
        if (found := _CLINVAR_RELEASE.search(value)) is not None:
            return found.group(1) or found.group(2)
    return None


def _pharmacogenomics_label(report: PharmacogenomicReport, path: Path) -> str:
    """E.g. ``PharmCAT 3.2.0 (data 2025-10-01) from sample.report.json; recommendations: …``."""
    version = f" {report.version}" if report.version else ""
    data = f" (data {report.data_version})" if report.data_version else ""
    return (
        f"{report.source}{version}{data} from {path.name}; recommendations: CPIC guidelines "
        "as the adapter's table transcribes them, each cited by its implication"
    )


def _decided(ctx: AnalysisContext, header: VcfHeader) -> dict[str, int]:
    """The classification sources in use, none of their implications yet: the lab's file
    first, then ClinVar when the file carries its INFO."""
    decided = {ctx.classifications: 0} if ctx.classifications else {}
    if "CLNSIG" in header.infos:
        decided[CLINVAR] = 0
    return decided


def _other_results(
    ctx: AnalysisContext, sources: _Sources, gathering: _Gathering, summary: ConversionSummary
) -> Interpretation:
    """The results after the variants (biomarkers and what the knowledge says of them, the
    PGx Observations) and the recommended Tasks, checked and written as ``gathering``
    does; what the report states of them and of the variants."""
    writer, check, findings = gathering.writer, gathering.check, gathering.findings
    for resource, finding in _findings(ctx, sources.knowledge):
        check(resource)
        writer.add_result(resource)
        findings.append(finding)
    pgx = PharmacogenomicResources()
    if sources.pharmacogenomics is not None:
        pgx = pharmacogenomic_resources(ctx, sources.pharmacogenomics)
    for resource in pgx.results:
        check(resource)
        writer.add_result(resource)
    for task in pgx.tasks:
        check(task)
        writer.add(task)
    for reason, count in pgx.skipped.items():
        summary.skip(f"pharmacogenomics_{reason}", count)
    findings += pgx.findings
    return Interpretation(findings, gathering.decided, [t["id"] for t in pgx.tasks])


def _findings(
    ctx: AnalysisContext, knowledge: KnowledgeBase | None
) -> Iterator[tuple[dict[str, Any], Finding]]:
    """The results beside the variants: biomarkers, then what the knowledge says of them;
    each with its finding for the conclusion."""
    biomarkers = biomarker_observations(ctx)
    for kind, observation in biomarkers.items():
        yield observation, _biomarker_finding(ctx, kind, observation["id"])
    if knowledge is not None and ctx.tumor is not None:
        implications = Implications(ctx)
        for kind, rule in knowledge.for_tumor(ctx.tumor):
            measured = biomarkers[kind]["id"]
            implication = implications.therapeutic(knowledge, rule, measured)
            yield implication, therapeutic_finding(rule, implication["id"], measured)


def _biomarker_finding(ctx: AnalysisContext, kind: str, rid: str) -> Finding:
    """The conclusion's sentence on a measured biomarker: its value."""
    tumor = ctx.tumor or TumorBiomarkers()
    if kind == "tmb":
        sentence = f"Tumor mutational burden: {tumor.mutational_burden:g} mutations/Mb."
    else:
        sentence = f"Microsatellite status: {tumor.microsatellite_status}."
    return Finding(FindingKind.BIOMARKER, sentence, (rid,))


def _unchecked(_resource: dict[str, Any]) -> None:
    """No validation asked for."""


def _workers(jobs: int, size: int) -> int:
    """Processes to build variants in: as asked, or by the machine for a large input."""
    if jobs > 0:
        return jobs
    if size < AUTO_PARALLEL_BYTES:
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), MAX_AUTO_JOBS))


class _Writing:
    """The one process's :class:`Sink`: chunks straight into the writer, counted, and what
    they bring beside taken."""

    def __init__(
        self,
        writer: ResourceWriter,
        summary: ConversionSummary,
        progress: ProgressCallback | None,
        take: Callable[[Aside], None],
    ) -> None:
        self.writer, self.summary, self.progress, self.take = writer, summary, progress, take

    def send(
        self, pieces: list[bytes], ids: bytearray, count: int, records: int, aside: Aside
    ) -> None:
        self.writer.add_encoded(pieces, bytes(ids))
        self.summary.variants_converted += count
        self.take(aside)
        if self.progress is not None:
            self.progress(records, self.summary.variants_converted)


class _Gathering:
    """What the variants bring beside their encodings, taken in file order (from one
    process's chunks or the workers' spans alike): phased alleles related by one
    :class:`PhaseTracker`, the findings, and the implications each source decided.

    The phase Observations are results known only as the variants stream past; they are
    encoded into a temporary file beside the output meanwhile and written after the
    variants (:meth:`write_later`), so they are never all in memory and land in one place
    whatever the number of processes.
    """

    def __init__(
        self,
        ctx: AnalysisContext,
        writer: ResourceWriter,
        check: Callable[[dict[str, Any]], None],
        decided: dict[str, int],
    ) -> None:
        self.ctx, self.writer, self.check, self.decided = ctx, writer, check, decided
        self.tracker = PhaseTracker()
        self.phase = PhaseRelationships(ctx)
        self.findings: list[Finding] = []
        self._later: IO[bytes] | None = None
        self._length = 0
        self._ids = bytearray()
        #: the calls held for the disclosure policy, and the phase relations touching them
        self.held: list[HeldCall] = []  # their data in the held file, at held_at
        self.held_at: list[tuple[int, int]] = []
        self.held_ids: set[str] = set()
        self._held_file: IO[bytes] | None = None
        self.waiting: list[tuple[PhaseRelation, list[dict[str, Any]], Finding | None]] = []

    def __enter__(self) -> _Gathering:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for file in (self._later, self._held_file):
            if file is not None:
                file.close()

    def _scratch(self) -> IO[bytes]:
        """The file held calls' encodings wait in, beside the output."""
        if self._held_file is None:
            folder = self.writer.destination.parent
            self._held_file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 - see __exit__
        return self._held_file

    def _spill(self, data: bytes) -> tuple[int, int]:
        """``data`` appended to the held file: where it is."""
        file = self._scratch()
        offset = file.seek(0, os.SEEK_END)
        file.write(data)
        file.flush()
        return offset, len(data)

    def take(self, aside: Aside) -> None:
        """One chunk's or span's Aside, in file order. Held calls' encodings wait in a file
        (a genome holds thousands of them, each several kB), the rest of them in memory."""
        for call in aside.held:
            self.held.append(call._replace(data=b""))
            self.held_at.append(self._spill(call.data))
        self.held_ids.update(h.variant_id for h in aside.held)
        for allele in aside.phased:
            for relation in self.tracker.add(allele):
                made, finding = self.phase.resources(relation)
                if self.held_ids and not self.held_ids.isdisjoint(_related(relation)):
                    self.waiting.append((relation, made, finding))
                    continue
                for resource in made:
                    self._keep(resource)
                if finding is not None:
                    self.findings.append(finding)
        self.findings += aside.findings
        for source, count in aside.decided.items():
            self.decided[source] = self.decided.get(source, 0) + count

    def _keep(self, resource: dict[str, Any]) -> None:
        """A result checked and encoded now, written by :meth:`write_later`."""
        self.check(resource)
        if self._later is None:
            folder = self.writer.destination.parent
            self._later = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 - see __exit__
        self._length += self._later.write(self.writer.encode_variant(resource))
        self._ids += variant_id(resource)

    def release(
        self, disclosure: Disclosure, summary: ConversionSummary
    ) -> tuple[dict[str, GeneRuling], dict[str, list[str]]]:
        """The held calls the policy discloses written (labelled secondary findings), with
        their findings, counts and phase Observations; the rest dropped without a trace.
        Each held gene's ruling, and the ids of what was disclosed of each gene."""
        genes = {call.variant_id: call.gene for call in self.held}
        pairs = ((*_related(r), r.relation) for r, _, _ in self.waiting)
        rulings = rule_genes(self.held, phase_of(pairs, genes), self.ctx.sex, disclosure)
        disclosed: dict[str, list[str]] = {}
        released: set[str] = set()
        for call, (offset, length) in zip(self.held, self.held_at, strict=True):
            if call.variant_id not in rulings[call.gene].disclosed:
                continue
            data = os.pread(self._scratch().fileno(), length, offset)
            self.writer.add_encoded([secondary_labelled(data, call.ids)], call.ids)
            summary.variants_converted += 1
            self.findings += call.findings
            for source, count in call.decided.items():
                self.decided[source] = self.decided.get(source, 0) + count
            disclosed.setdefault(call.gene, []).extend(_uuids(call.ids))
            released.add(call.variant_id)
        withheld = self.held_ids - released
        for relation, made, finding in self.waiting:
            related = _related(relation)
            if not withheld.isdisjoint(related):
                continue
            gene = next(genes[vid] for vid in related if vid in genes)
            item = rulings[gene].item or Item()
            for resource in made:
                self._keep(labelled(resource, item))
                disclosed[gene].append(resource["id"])
            if finding is not None:
                self.findings.append(finding)
        return rulings, disclosed

    def write_later(self) -> None:
        """The results kept so far, written after the variants."""
        if self._later is not None:
            self._later.flush()
            self.writer.add_encoded(Part(self._later.fileno(), 0, self._length), bytes(self._ids))


def _related(relation: PhaseRelation) -> tuple[str, str]:
    return relation.first.variant_id, relation.second.variant_id


def _uuids(ids: bytes) -> list[str]:
    """16-byte ids as UUID text."""
    return [str(uuid.UUID(bytes=ids[i : i + 16])) for i in range(0, len(ids), 16)]


def _context(
    options: ConvertOptions,
    reader: VcfReader,
    source: Path,
    digest: str,
    size: int,
    *,
    studied: Sequence[GenomicRegion],
    uncallable: Sequence[GenomicRegion],
) -> AnalysisContext:
    """The non-variant facts of this conversion, with a stable key for identifiers."""
    return AnalysisContext(
        patient=options.patient,
        build=reader.build,
        sample=reader.sample,
        source_class=options.source_class,
        sex=options.sex,
        issued=options.issued or _default_issued(reader.header.file_date, source),
        input_name=options.input_name or source.name,
        input_sha256=digest,
        input_size=size,
        report_key=_report_key(options, reader, digest),
        specimen_id=options.specimen_id,
        specimen_identifier=options.specimen_identifier,
        order_identifier=options.order_identifier,
        performer=options.performer,
        regions_studied=tuple(studied) or tuple(options.regions),
        regions_studied_name=options.regions_bed.name if options.regions_bed else None,
        uncallable_regions=tuple(uncallable),
        uncallable_regions_name=options.uncallable_bed.name if options.uncallable_bed else None,
        include_document_reference=options.include_document_reference,
        caller=reader.header.source,
        file_date=reader.header.file_date,
        tumor=options.tumor,
    )


def _report_key(options: ConvertOptions, reader: VcfReader, digest: str) -> str:
    """The report's identity: the lab's report id, else the input's content and subject.

    With ``report_id`` a corrected VCF for the same report updates the resources sent
    before instead of creating new ones.
    """
    if options.report_id:
        return f"report:{options.report_id}"
    p = options.patient
    subject = p.id or f"{p.identifier_system}|{p.identifier_value}"
    return "|".join(
        ["vcf", digest, reader.sample, reader.build.value, options.source_class.value, subject]
    )


def _default_issued(file_date: str | None, source: Path) -> datetime:
    """A deterministic report time: the VCF's ##fileDate, else the file's modification time.

    Using "now" would make two runs over the same input differ byte for byte.
    """
    for fmt in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(file_date or "", fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return datetime.fromtimestamp(int(source.stat().st_mtime), tz=UTC)


def _sha256(path: Path) -> tuple[str, int]:
    """Content hash and size of the input, read in large blocks."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def patient_ref(literal: str | None, identifier: str | None) -> PatientRef:
    """A PatientRef from ``123``/``Patient/123`` or ``system|value``."""
    if literal:
        pid = literal.removeprefix("Patient/")
        if not pid or "/" in pid:
            raise OptionsError(f"not a Patient id: {literal!r}", field="patient")
        return PatientRef(id=pid)
    if identifier:
        system, value = pair(identifier, "patient identifier")
        return PatientRef(identifier_system=system, identifier_value=value)
    raise OptionsError("name the patient by id or by identifier (system|value)", field="patient")


def tumor_biomarkers(burden: float | None, msi: str | None) -> TumorBiomarkers | None:
    """Tumor measures from option values; None when neither is given."""
    if burden is None and msi is None:
        return None
    try:
        status = MicrosatelliteStatus(msi) if msi is not None else None
    except ValueError:
        allowed = ", ".join(s.value for s in MicrosatelliteStatus)
        raise OptionsError(f"msi must be one of {allowed}; got {msi!r}", field="msi") from None
    return TumorBiomarkers(burden, status)


def transcript_order(text: str | None) -> tuple[PrimaryRule, ...]:
    """A transcript order from option text: flags, comma-separated (``canonical,picked``);
    empty for the first listed transcript always; the default when absent."""
    if text is None:
        return DEFAULT_PRIMARY_ORDER
    names = [name.strip() for name in text.split(",") if name.strip()]
    allowed = ", ".join(rule.value for rule in PrimaryRule)
    try:
        order = tuple(PrimaryRule(name) for name in names)
    except ValueError:
        raise OptionsError(
            f"transcript order {text!r}: use a comma-separated list of {allowed}",
            field="transcript_order",
        ) from None
    if len(set(order)) != len(order):
        raise OptionsError(
            f"transcript order {text!r} names a flag twice", field="transcript_order"
        )
    return order


def pair(text: str, what: str) -> tuple[str, str]:
    """Split ``system|value``, both parts required."""
    system, sep, value = text.partition("|")
    if not sep or not system or not value:
        raise OptionsError(f"{what} must be SYSTEM|VALUE, got {text!r}", field=what)
    return system, value


def optional_pair(text: str | None, what: str) -> tuple[str, str] | None:
    """``pair`` for an option that may be absent."""
    return pair(text, what) if text else None


def parse_instant(text: str, field: str = "issued") -> datetime:
    """An ISO 8601 instant with a zone (``Z`` accepted), the option ``field``'s value."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise OptionsError(f"not an ISO 8601 time: {text!r}", field=field) from None
    if value.tzinfo is None:
        raise OptionsError(f"the time needs a zone, e.g. {text}Z", field=field)
    return value
