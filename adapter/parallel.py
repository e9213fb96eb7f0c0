"""Variant Observations made in several processes and written in file order.

Building (and validating) a Variant costs several times more than reading its record, so a
large VCF is shared out by chunks: every worker reads the whole file with the same
:class:`VcfReader`, cuts the calls into the same chunks, and builds, checks and encodes only
its own chunks (chunk ``k`` belongs to worker ``k % workers``). The parent takes the
encoded chunks in turn and writes them, so the output is byte for byte what one process
writes. A chunk ends only where the locus changes, so the repeats at one locus that
:class:`IdFactory` numbers never straddle two workers.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, BinaryIO

from .assembly import accession
from .errors import AdapterError, ValidationFailed, ValidationIssue
from .fhir.variant import VariantBuilder
from .fhir.writers import Part, ResourceWriter, open_writer, variant_id
from .model import AnalysisContext, ConversionSummary
from .readers.vcf import VcfReader
from .validation import Validator, load_validator

__all__ = ["Job", "checker", "convert_in_parallel", "sharing"]

#: callback(records_read, variants_converted)
ProgressCallback = Callable[[int, int], None]
Check = Callable[[dict[str, Any]], None]
_MAX_ISSUES = 50


@dataclass(frozen=True, slots=True)
class Job:
    """What a worker needs to make its share of one conversion's variants."""

    source: Path
    reader: Mapping[str, Any]  # VcfReader's keyword arguments
    ctx: AnalysisContext
    form: str
    validate: bool
    workers: int
    chunk: int  # variants per chunk, at least


def checker(validator: Validator | None, summary: ConversionSummary) -> Check:
    """A per-resource profile check that fails the conversion on the first invalid resource."""
    if validator is None:
        return lambda _resource: None

    def check(resource: dict[str, Any]) -> None:
        issues = [i for i in validator.validate(resource) if i.severity == "error"]
        if issues:
            summary.validation_errors += len(issues)
            raise ValidationFailed(
                f"{resource.get('resourceType')} failed validation against its profile; "
                "nothing was written",
                issues=_prefixed(resource, issues[:_MAX_ISSUES]),
            )

    return check


def _prefixed(resource: dict[str, Any], issues: list[ValidationIssue]) -> list[ValidationIssue]:
    """Name the failing resource by its business identifier in each issue."""
    ident = (resource.get("identifier") or [{}])[0].get("value", "?")
    return [
        ValidationIssue(i.severity, i.path, f"{i.message} (resource {ident})", i.profile)
        for i in issues
    ]


def sharing(validator: Validator | None) -> AbstractContextManager[Callable[[Any], Any]]:
    """The validator's sharing block (see :meth:`Validator.sharing`), or a no-op."""
    if validator is None:
        return nullcontext(lambda value: value)
    return validator.sharing()


def convert_in_parallel(
    job: Job,
    writer: ResourceWriter,
    summary: ConversionSummary,
    progress: ProgressCallback | None,
) -> None:
    """Run the workers and write their chunks in order; ``summary`` gets the counts.

    Workers write their chunks to part files beside the output; only ranges cross the
    pipes, and the kernel copies the bytes.
    """
    spawn = multiprocessing.get_context("spawn")  # fork is unsafe in a threaded server
    with tempfile.TemporaryDirectory(dir=writer.destination.parent, prefix=".parts.") as parts:
        pipes = [spawn.Pipe(duplex=False) for _ in range(job.workers)]
        procs = [
            spawn.Process(target=_work, args=(job, Path(parts), index, sender), daemon=True)
            for index, (_, sender) in enumerate(pipes)
        ]
        for proc in procs:
            proc.start()
        for _, sender in pipes:
            sender.close()
        try:
            finals = _Merge(Path(parts), writer, summary, progress).run(
                [receiver for receiver, _ in pipes]
            )
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
                proc.join()
    read = finals[0]  # every worker read the whole file: any one's reading counts will do
    summary.records_read = read.records_read
    summary.skipped = dict(read.skipped)


class _Merge:
    """The parent's side: chunks in turn from each worker's part file into the writer."""

    def __init__(
        self,
        parts: Path,
        writer: ResourceWriter,
        summary: ConversionSummary,
        progress: ProgressCallback | None,
    ) -> None:
        self.parts, self.writer, self.summary, self.progress = parts, writer, summary, progress

    def run(self, receivers: list[Connection]) -> list[ConversionSummary]:
        """Every chunk until every worker is done; the workers' final summaries."""
        finals: dict[int, ConversionSummary] = {}
        with ExitStack() as files:
            fds: dict[int, int] = {}
            turn = 0
            while len(finals) < len(receivers):
                index = turn % len(receivers)
                turn += 1
                message = _receive(receivers[index])
                if message[0] == "done":  # every later chunk is missing too
                    finals[index] = message[1]
                    continue
                _, offset, length, ids, count, records = message
                if index not in fds:
                    fds[index] = os.open(_part(self.parts, index), os.O_RDONLY)
                    files.callback(os.close, fds[index])
                self.writer.add_encoded(Part(fds[index], offset, length), ids)
                self.summary.variants_converted += count
                if self.progress is not None:
                    self.progress(records, self.summary.variants_converted)
        return [finals[i] for i in range(len(receivers))]


def _part(parts: Path, index: int) -> Path:
    return parts / f"worker-{index}.part"


def _receive(receiver: Connection) -> tuple[Any, ...]:
    """A worker's next message; its error raised here."""
    try:
        message: tuple[Any, ...] = receiver.recv()
    except EOFError:
        raise AdapterError("a conversion worker stopped without a result") from None
    if message[0] == "error":
        raise message[1]
    return message


def _work(job: Job, parts: Path, index: int, sender: Connection) -> None:
    """A worker process: its chunks, then its summary; an error ends it."""
    try:
        with _part(parts, index).open("wb") as part:
            _make_chunks(job, index, _Chunks(part, sender))
    except AdapterError as e:
        sender.send(("error", e))
    except Exception as e:
        sender.send(("error", AdapterError(f"a conversion worker failed: {e!r}")))
    finally:
        sender.close()


class _Chunks:
    """A worker's side: chunks appended to its part file, announced to the parent."""

    def __init__(self, part: BinaryIO, sender: Connection) -> None:
        self.part, self.sender, self.offset = part, sender, 0

    def send(self, pieces: list[bytes], ids: bytearray, count: int, records: int) -> None:
        data = b"".join(pieces)
        self.part.write(data)
        self.part.flush()
        self.sender.send(("chunk", self.offset, len(data), bytes(ids), count, records))
        self.offset += len(data)

    def done(self, summary: ConversionSummary) -> None:
        self.sender.send(("done", summary))


def _make_chunks(job: Job, index: int, out: _Chunks) -> None:
    summary = ConversionSummary()
    validator = load_validator() if job.validate else None
    check = checker(validator, summary)
    encoder = open_writer(job.form, job.source, job.ctx)  # only encodes; never opened
    with (
        VcfReader(job.source, summary=summary, **job.reader) as reader,
        sharing(validator) as share,
    ):
        builder = VariantBuilder(job.ctx, accession, share=share)
        make = builder.build if validator else builder.prepare
        pieces: list[bytes] = []
        ids = bytearray()
        chunk, size, last = 0, 0, None
        for call in reader:
            locus = (call.chrom, call.pos)
            if size >= job.chunk and locus != last:
                if chunk % job.workers == index:
                    out.send(pieces, ids, size, summary.records_read)
                    pieces.clear()
                    ids.clear()
                chunk, size = chunk + 1, 0
            size, last = size + 1, locus
            if chunk % job.workers == index:
                resource = make(call)
                check(resource)
                pieces.append(encoder.encode_variant(resource))
                ids += variant_id(resource)
        if size and chunk % job.workers == index:
            out.send(pieces, ids, size, summary.records_read)
    out.done(summary)
