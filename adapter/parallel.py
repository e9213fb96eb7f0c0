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
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from .assembly import accession
from .conformance import VariantChecks, sharing, variant_checks
from .errors import AdapterError
from .fhir.variant import VariantBuilder
from .fhir.writers import Part, ResourceWriter, open_writer
from .model import AnalysisContext, ConversionSummary
from .readers.vcf import VcfReader
from .validation import load_validator

__all__ = ["Job", "Sink", "convert_in_parallel", "make_variants"]

#: callback(records_read, variants_converted), called after each chunk of variants
ProgressCallback = Callable[[int, int], None]


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
    encoder = open_writer(job.form, job.source, job.ctx)  # only encodes; never opened
    with (
        VcfReader(job.source, summary=summary, **job.reader) as reader,
        sharing(validator) as share,
    ):
        builder = VariantBuilder(job.ctx, accession, share=share)
        checks = variant_checks(validator, builder, summary)
        make_variants(
            reader, builder, encoder, checks, out, chunk=job.chunk, share=(index, job.workers)
        )
    out.done(summary)


class Sink(Protocol):
    """Where :func:`make_variants` hands each chunk: encoded variants and their ids."""

    def send(self, pieces: list[bytes], ids: bytearray, count: int, records: int) -> None:
        """``count`` variants, made after reading ``records`` records."""


def make_variants(
    reader: VcfReader,
    builder: VariantBuilder,
    encoder: ResourceWriter,
    checks: VariantChecks | None,
    out: Sink,
    *,
    chunk: int,
    share: tuple[int, int] = (0, 1),
) -> None:
    """Variants of the reader's calls, encoded as ``encoder`` writes them, a chunk at a
    time, each shown to ``checks`` first.

    ``share`` is (this worker, workers): chunk ``k`` is made only by worker ``k % workers``.
    A chunk holds at least ``chunk`` variants and ends where the locus changes.
    """
    index, workers = share
    encode = builder.encoding(encoder.encode_variant, checks)
    summary = reader.summary
    pieces: list[bytes] = []
    ids = bytearray()
    number, size, last = 0, 0, None
    for call in reader:
        locus = (call.chrom, call.pos)
        if size >= chunk and locus != last:
            if number % workers == index:
                out.send(pieces, ids, size, summary.records_read)
                pieces, ids = [], bytearray()
            number, size = number + 1, 0
        size, last = size + 1, locus
        if number % workers == index:
            data, raw_id = encode(call)
            pieces.append(data)
            ids += raw_id
    if size and number % workers == index:
        out.send(pieces, ids, size, summary.records_read)
