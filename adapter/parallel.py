"""Variant Observations made in several processes and written in file order.

Reading a record costs about as much as building its Variant, and validating costs more, so
a large VCF is cut into spans that worker processes read and convert whole. A span is a run
of whole data lines, about ``span_bytes`` long, that ends where the locus changes, so the
repeats at one locus that :class:`IdFactory` numbers never straddle two spans. The parent
only cuts: it reads the text once (decompressing it if need be), writes each span after the
header as a small plain VCF beside the output, and hands it to an idle worker. The worker
reads it with the same :class:`VcfReader`, builds, checks and encodes its variants into a
part file. Span and part files are scratch files written over in place, span after span
(:class:`_Scratch`). The parent writes the parts in span order, so the output is byte for
byte what one process writes, and the counts are the sums of the spans'. Errors name the
input file and its line, and the first in file order is the one raised.

Beside its part, a worker sends what the span's variants bring for the report (an
:class:`Aside`: phased alleles, findings, implications by deciding source, and the calls the
disclosure policy holds); the parent takes them in span order, so it sees them in file order
as one process does.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, BinaryIO, Final, NamedTuple, Protocol, cast

from .assembly import accession
from .conformance import VariantChecks, sharing, variant_checks
from .disclosure import HeldCall, Withholding
from .errors import AdapterError, TruncatedInputError
from .fhir.variant import Encoding, VariantBuilder
from .fhir.writers import Part, ResourceWriter, open_writer, write_all
from .model import AnalysisContext, ConversionSummary, Finding
from .phasing import PhasedAllele
from .readers.classifications import ClassificationTable
from .readers.knowledge import KnowledgeBase
from .readers.vcf import VcfReader
from .readers.vcf_text import Stream, open_stream
from .validation import load_validator

__all__ = [
    "Aside",
    "Job",
    "Sink",
    "Take",
    "convert_in_parallel",
    "make_variants",
    "variant_encoding",
]

#: callback(records_read, variants_converted), called after each chunk of variants
ProgressCallback = Callable[[int, int], None]


class Aside(NamedTuple):
    """What a run of variants brings beside their encodings, for the parent: the phased
    alleles phasing can relate, the conclusion's findings, how many diagnostic implications
    each source decided, and the calls held for the disclosure policy
    (:mod:`adapter.disclosure`). Small: only variants with something to say add."""

    phased: list[PhasedAllele]
    findings: list[Finding]
    decided: Counter[str]
    held: list[HeldCall]

    def add(self, other: Aside) -> None:
        """Append ``other``, which came after this."""
        self.phased.extend(other.phased)
        self.findings.extend(other.findings)
        self.decided.update(other.decided)
        self.held.extend(other.held)


#: the parent's taker of each Aside, in file order
Take = Callable[[Aside], None]

_READ: Final = 1 << 20  # bytes the parent reads at a time
_AHEAD: Final = 2  # spans cut ahead of the merge, per worker


@dataclass(frozen=True, slots=True)
class Job:
    """What the workers need to convert the spans of one conversion."""

    source: Path
    reader: Mapping[str, Any]  # VcfReader's keyword arguments
    ctx: AnalysisContext
    form: str
    validate: bool
    workers: int
    chunk: int  # variants encoded before they are appended to the part file
    span_bytes: int  # the length of a span, about
    knowledge: KnowledgeBase | None = None  # for the annotated variants' implications
    #: the lab's, deciding the diagnostic implications of the variants they hold
    classifications: ClassificationTable | None = None
    #: the genes whose calls the disclosure policy holds, and the indication's genes
    hold: tuple[frozenset[str], frozenset[str]] | None = None


@dataclass(frozen=True, slots=True)
class _Span:
    """A plain VCF holding the header and a run of the input's data lines."""

    index: int
    path: Path
    lines_before: int  # data lines of the input before the span's first
    part: Path  # where the worker writes the span's encoded variants


class _Scratch:
    """Scratch files of one kind in a folder, handed out and taken back to be written again.

    A file written over in place keeps its pages in the page cache; a new one must be given
    fresh pages, and an unlinked one give them back, which costs more than the writing."""

    def __init__(self, directory: Path, kind: str) -> None:
        self.directory, self.kind = directory, kind
        self.free: list[Path] = []
        self.made = 0

    def take(self) -> Path:
        if self.free:
            return self.free.pop()
        self.made += 1
        return self.directory / f"{self.kind}-{self.made}"

    def give(self, path: Path) -> None:
        self.free.append(path)


def convert_in_parallel(
    job: Job,
    reader: VcfReader,
    writer: ResourceWriter,
    summary: ConversionSummary,
    progress: ProgressCallback | None,
    *,
    take: Take,
) -> None:
    """Convert ``reader``'s whole file in ``job.workers`` processes into ``writer``;
    ``summary`` gets the counts, ``take`` each span's Aside in file order."""
    spawn = multiprocessing.get_context("spawn")  # fork is unsafe in a threaded server
    with tempfile.TemporaryDirectory(dir=writer.destination.parent, prefix=".parts.") as tmp:
        parts = Path(tmp)
        pipes = [spawn.Pipe() for _ in range(job.workers)]
        procs = [spawn.Process(target=_work, args=(job, child), daemon=True) for _, child in pipes]
        for proc in procs:
            proc.start()
        for _, child in pipes:
            child.close()
        try:
            scratch = _Scratch(parts, "span"), _Scratch(parts, "part")
            spans = _spans(reader, scratch, job.span_bytes)
            merge = _Merge(writer, summary, progress, take)
            merge.run([own for own, _ in pipes], spans, scratch)
        except BaseException:
            for proc in procs:
                proc.terminate()
            raise
        finally:
            for own, _ in pipes:
                own.close()  # an idle worker reads the end of its pipe and stops
            for proc in procs:
                proc.join()


# ---- the parent: cutting spans, merging parts -----------------------------------------


def _spans(reader: VcfReader, scratch: tuple[_Scratch, _Scratch], size: int) -> Iterator[_Span]:
    """The spans of the reader's file, each written to a scratch span file (over what it held
    before), each with a scratch part file for its encodings."""
    lines_before = 0
    spans, parts = scratch
    with open_stream(reader.path, reader.compression) as stream:
        header = b"".join(stream.readline() for _ in range(reader.header.lines))
        try:
            for index, body in enumerate(_cut(stream, size)):
                path = spans.take()
                with _in_place(path) as f:
                    f.write(header)
                    f.write(body)
                    f.truncate()
                yield _Span(index, path, lines_before, parts.take())
                lines_before += body.count(b"\n")
        except (EOFError, OSError, zlib.error) as exc:
            raise TruncatedInputError(
                "the compressed data is corrupt or cut short, somewhere after line "
                f"{reader.header.lines + lines_before} ({exc})",
                source=reader.source,
            ) from exc


def _in_place(path: Path, buffering: int = -1) -> BinaryIO:
    """``path`` opened for writing from its start, over what it holds (not truncated)."""
    return open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb", buffering)


def _cut(stream: Stream, size: int) -> Iterator[bytes]:
    """The stream in runs of whole lines of about ``size`` bytes, cut where the locus changes."""
    held = bytearray()
    while block := stream.read(_READ):
        held += block
        while len(held) > size and (cut := _locus_change(held, size)) is not None:
            yield bytes(held[:cut])
            del held[:cut]
    if held:
        yield bytes(held)


def _locus_change(data: bytearray, at: int) -> int | None:
    """The start of the first line after ``at`` whose locus differs from the line before;
    None if ``data`` ends first."""
    end = data.find(b"\n", at)
    if end < 0:
        return None
    last = _locus(data[data.rfind(b"\n", 0, end) + 1 : end])
    while True:
        start, end = end + 1, data.find(b"\n", end + 1)
        if end < 0:
            return None
        locus = _locus(data[start:end])
        if locus != last:
            return start
        last = locus


def _locus(line: bytearray) -> tuple[bytes, int | bytes]:
    """CHROM and POS, as htslib reads them (``010`` is 10)."""
    chrom, _, rest = bytes(line).partition(b"\t")
    pos = rest.partition(b"\t")[0]
    try:
        return chrom, int(pos)
    except ValueError:
        return chrom, pos


class _Merge:
    """Spans to idle workers, their parts into the writer in span order."""

    def __init__(
        self,
        writer: ResourceWriter,
        summary: ConversionSummary,
        progress: ProgressCallback | None,
        take: Take,
    ) -> None:
        self.writer, self.summary, self.progress, self.take = writer, summary, progress, take

    def run(
        self,
        workers: list[Connection],
        spans: Iterator[_Span],
        scratch: tuple[_Scratch, _Scratch],
    ) -> None:
        """Every span converted and written, or the first error in file order raised; each
        span's scratch files given back once read."""
        idle, busy = list(workers), set[Connection]()
        results: dict[int, tuple[Any, ...]] = {}
        sent: dict[int, _Span] = {}
        made = written = 0
        failure: AdapterError | None = None
        more = True
        while True:
            while more and idle and made - written < _AHEAD * len(workers):
                try:
                    span = next(spans)
                except StopIteration:
                    more = False
                    break
                except AdapterError as e:  # raised once the spans before it are written
                    failure, more = e, False
                    break
                conn = idle.pop()
                conn.send(span)
                sent[span.index] = span
                busy.add(conn)
                made += 1
            if written in results:
                self._write(results.pop(written))
                scratch[1].give(sent.pop(written).part)
                written += 1
            elif written == made:
                if failure is not None:
                    raise failure
                if not more:
                    return
            else:
                for ready in wait(list(busy)):
                    conn = cast(Connection, ready)
                    result = _receive(conn)
                    results[result[1]] = result
                    scratch[0].give(sent[result[1]].path)
                    busy.discard(conn)
                    idle.append(conn)

    def _write(self, result: tuple[Any, ...]) -> None:
        if result[0] == "error":
            raise result[2]
        _, _, part, length, ids, span, aside = result
        fd = os.open(part, os.O_RDONLY)
        try:
            self.writer.add_encoded(Part(fd, 0, length), ids)
        finally:
            os.close(fd)
        self.summary.records_read += span.records_read
        self.summary.variants_converted += span.variants_converted
        for reason, count in span.skipped.items():
            self.summary.skip(reason, count)
        self.take(aside)
        if self.progress is not None:
            self.progress(self.summary.records_read, self.summary.variants_converted)


def _receive(conn: Connection) -> tuple[Any, ...]:
    try:
        result: tuple[Any, ...] = conn.recv()
    except (EOFError, OSError):  # the worker died: its end of the pipe closed or reset
        raise AdapterError("a conversion worker stopped without a result") from None
    return result


# ---- the workers ------------------------------------------------------------------------


def _work(job: Job, conn: Connection) -> None:
    """A worker process: spans until the parent closes the pipe."""
    validator = load_validator() if job.validate else None
    with sharing(validator) as share, conn:
        builder = VariantBuilder(
            job.ctx,
            accession,
            share=share,
            knowledge=job.knowledge,
            classifications=job.classifications,
        )
        worker = _Worker(job, builder, variant_checks(validator, builder, ConversionSummary()))
        while True:
            try:
                span: _Span = conn.recv()
            except EOFError:
                return
            conn.send(worker.convert(span))


class _Worker:
    """What a worker keeps from span to span: the builder's and the checks' memories, and
    the encoding with the templates it has learnt."""

    def __init__(self, job: Job, builder: VariantBuilder, checks: VariantChecks | None) -> None:
        self.job, self.builder = job, builder
        encoder = open_writer(job.form, job.source, job.ctx)  # only encodes
        self.encode = variant_encoding(builder, encoder, checks)
        self.withholding = withholding(job.hold, self.encode, builder, job.classifications)

    def convert(self, span: _Span) -> tuple[Any, ...]:
        """("done", index, part file, its length, ids, span summary, span Aside), or
        ("error", index, error)."""
        summary = ConversionSummary()
        try:
            with (
                _in_place(span.part, buffering=0) as f,
                VcfReader(span.path, summary=summary, **self.job.reader) as reader,
            ):
                sink = _PartSink(f)
                encode = self.withholding or self.encode
                make_variants(reader, self.builder, encode, sink, chunk=self.job.chunk)
            summary.variants_converted = sink.count
            ids = bytes(sink.ids)
            return ("done", span.index, span.part, sink.length, ids, summary, sink.aside)
        except AdapterError as e:
            return ("error", span.index, _located(e, self.job, span))
        except Exception as e:
            return ("error", span.index, AdapterError(f"a conversion worker failed: {e!r}"))


def _located(error: AdapterError, job: Job, span: _Span) -> AdapterError:
    """The error as it names the input file and its line, not the span's."""
    if error.source == str(span.path):
        error.source = str(job.source)
        if error.line is not None:
            error.line += span.lines_before
    return error


class _PartSink:
    """A worker's :class:`Sink`: encoded variants appended to the span's part file."""

    def __init__(self, part: BinaryIO) -> None:
        self.part = part
        self.length = self.count = 0
        self.ids = bytearray()
        self.aside = Aside([], [], Counter(), [])

    def send(
        self, pieces: list[bytes], ids: bytearray, count: int, records: int, aside: Aside
    ) -> None:
        self.length += write_all(self.part.fileno(), pieces)
        self.ids += ids
        self.count += count
        self.aside.add(aside)


# ---- shared by one process and the workers ---------------------------------------------


class Sink(Protocol):
    """Where :func:`make_variants` hands each chunk: encoded variants and their ids, and what
    they bring beside."""

    def send(
        self, pieces: list[bytes], ids: bytearray, count: int, records: int, aside: Aside
    ) -> None:
        """``count`` variants, made after reading ``records`` records."""


def variant_encoding(
    builder: VariantBuilder, encoder: ResourceWriter, checks: VariantChecks | None
) -> Encoding:
    """The builder's variants encoded as ``encoder`` writes them, each shown to ``checks``
    first: made once and kept, since it learns a template for each shape it meets."""
    return builder.encoding(
        encoder.encode_variant,
        checks,
        checks.check if checks is not None else None,
        references=encoder.reference_prefix,
    )


def withholding(
    hold: tuple[frozenset[str], frozenset[str]] | None,
    encode: Encoding,
    builder: VariantBuilder,
    classifications: ClassificationTable | None,
) -> Withholding | None:
    """``encode`` holding the calls of the held genes (``hold``: them, and the indication's),
    or None when nothing is held."""
    if hold is None:
        return None
    find = classifications.find if classifications is not None else None
    lab = (lambda call: find(call.chrom, call.pos, call.ref, call.alt)) if find else None
    return Withholding(encode, builder, hold[0], hold[1], lab)


def make_variants(
    reader: VcfReader,
    builder: VariantBuilder,
    encode: Encoding | Withholding,
    out: Sink,
    *,
    chunk: int,
) -> None:
    """Variants of the reader's calls by ``encode`` (:func:`variant_encoding`, or a
    :class:`Withholding` of it), ``chunk`` at a time; with each chunk, what its variants
    brought (the builder's gatherings, the calls held)."""
    summary = reader.summary
    pieces: list[bytes] = []
    ids = bytearray()
    held = encode if isinstance(encode, Withholding) else None
    for call in reader:
        data, raw_id = encode(call)
        if raw_id:  # a held call brings nothing yet
            pieces.append(data)
            ids += raw_id
        if len(pieces) >= chunk:
            out.send(pieces, ids, len(pieces), summary.records_read, _drain(builder, held))
            pieces, ids = [], bytearray()
    if pieces or (held is not None and held.held):
        out.send(pieces, ids, len(pieces), summary.records_read, _drain(builder, held))


def _drain(builder: VariantBuilder, held: Withholding | None) -> Aside:
    """What the builder's encoding gathered since it was last drained, and the calls held."""
    aside = Aside(builder.phased, builder.findings, builder.decided, held.drain() if held else [])
    builder.phased, builder.findings, builder.decided = [], [], Counter()
    return aside
