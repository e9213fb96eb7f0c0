"""The VCF text as the adapter checks it itself, before and after htslib parses records.

htslib (through cyvcf2 0.35.0, htslib 1.19) is fast but lenient where a clinical converter
cannot be. Measured here, it

* only warns on stderr and carries on for an undeclared FORMAT key (typing it String), extra
  sample columns (dropped), an unknown ``Type=`` in the header, or an undeclared contig;
* swallows every following header line when a ``##INFO=<`` line lacks its closing ``>``;
* raises a bare ``Exception`` for a line it cannot parse (POS, GT, a number, too few columns, a
  corrupt bgzip block), saying why only on stderr;
* crashes the process (SIGSEGV) on a blank line or a ``#`` line among the records.

So the header is parsed here, every data line's shape is checked here before htslib reads any
record (:class:`BodyScan`), and a line htslib rejected is re-read here to say why
(:func:`diagnose`).
"""

from __future__ import annotations

import gzip
import re
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import BinaryIO, Final, Literal, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from .._native import lines
from ..errors import (
    HeaderMismatchError,
    MalformedRecordError,
    NotAVcfError,
    RegionError,
    TruncatedInputError,
)

__all__ = [
    "BodyScan",
    "Compression",
    "Depths",
    "FieldSpec",
    "Stream",
    "TextDepths",
    "VcfHeader",
    "check_bgzf_eof",
    "compression_of",
    "diagnose",
    "index_contigs",
    "open_stream",
    "read_header",
    "skip_lines",
]

Compression = Literal["plain", "bgzf", "gzip"]
Stream = gzip.GzipFile | BinaryIO

_BGZF_EOF: Final = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_CHUNK: Final = 1 << 20
_HASH = 35  # a byte value
_FIXED_COLUMNS: Final = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
_NOT_VCF: Final = (
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"BCF", "a BCF file; convert it with `bcftools view -Ov -o out.vcf`"),
    (b"BAM\x01", "a BAM file"),
    (b"CRAM", "a CRAM file"),
    (b">", "a FASTA file"),
    (b"@", "a FASTQ file"),
)
_NUMBER = re.compile(r"\d+|[ARGPM.]")
_TYPES: Final = frozenset({"Integer", "Float", "Flag", "Character", "String"})
_ATTRIBUTE = re.compile(r'\s*([\w.\-]+)=("(?:[^"\\]|\\.)*"|[^,"]*)\s*(?:,|$)')
_GT_TEXT = re.compile(r"[|/]?(?:\d+|\.)(?:[|/](?:\d+|\.))*")


# ---- header ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """Number, Type and Description of a declared INFO or FORMAT key.

    The Description matters for annotation keys: VEP's CSQ and SnpEff's ANN name their
    ``|``-separated fields there.
    """

    number: str
    type: str
    description: str = ""  # as written between the quotes


@dataclass(frozen=True, slots=True)
class VcfHeader:
    """What the header says, parsed by the adapter itself (not htslib's lenient parser)."""

    samples: tuple[str, ...]
    contigs: Mapping[str, int | None]  # name → length, in header order
    reference: str | None = None  # ##reference
    source: str | None = None  # ##source (the caller)
    file_date: str | None = None  # ##fileDate
    fileformat: str = ""  # e.g. VCFv4.2
    infos: Mapping[str, FieldSpec] = field(default_factory=dict)
    formats: Mapping[str, FieldSpec] = field(default_factory=dict)
    meta: Mapping[str, str] = field(default_factory=dict)  # first value of other ##key=value
    lines: int = 0  # header lines, the #CHROM line included


class _HeaderParser:
    """Collects header lines into a VcfHeader, failing on what htslib would misread."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.line = 0
        self.contigs: dict[str, int | None] = {}
        self.infos: dict[str, FieldSpec] = {}
        self.formats: dict[str, FieldSpec] = {}
        self.meta: dict[str, str] = {}

    def fail(self, message: str) -> MalformedRecordError:
        return MalformedRecordError(message, source=self.source, line=self.line, field="header")

    def meta_line(self, text: str) -> None:
        key, sep, value = text[2:].partition("=")
        if not sep or not key:
            raise self.fail(f"header lines before #CHROM must be ##key=value, got {text[:60]!r}")
        if value.startswith("<"):
            self.structured(key, value)
        else:
            self.meta.setdefault(key, value)

    def structured(self, key: str, value: str) -> None:
        if not value.endswith(">"):
            raise self.fail(f"the ##{key}=<...> line is not closed by '>'")
        attrs = _attributes(value[1:-1])
        if attrs is None or ("ID" not in attrs and key in ("INFO", "FORMAT", "contig")):
            raise self.fail(f"cannot read the attributes of this ##{key} line (ID=...,...)")
        if key in ("INFO", "FORMAT"):
            self.declare(key, attrs)
        elif key == "contig":
            self.contig(attrs)

    def declare(self, key: str, attrs: dict[str, str]) -> None:
        number, type_ = attrs.get("Number", ""), attrs.get("Type", "")
        if not _NUMBER.fullmatch(number) or type_ not in _TYPES:
            raise self.fail(
                f"##{key} {attrs['ID']}: Number must be an integer, A, R, G or '.', and Type one "
                f"of {', '.join(sorted(_TYPES))}; got Number={number!r}, Type={type_!r}"
            )
        target = self.infos if key == "INFO" else self.formats
        target[attrs["ID"]] = FieldSpec(number, type_, attrs.get("Description", ""))

    def contig(self, attrs: dict[str, str]) -> None:
        length = attrs.get("length")
        if length is not None and not length.isdigit():
            raise self.fail(f"contig {attrs['ID']}: length must be an integer, got {length!r}")
        self.contigs[attrs["ID"]] = int(length) if length is not None else None

    def column_line(self, text: str) -> tuple[str, ...]:
        columns = text.split("\t")
        if tuple(columns[:8]) != _FIXED_COLUMNS or (len(columns) > 8 and columns[8] != "FORMAT"):
            raise self.fail(
                "the #CHROM line must name CHROM POS ID REF ALT QUAL FILTER INFO [FORMAT "
                "samples...], separated by tabs"
            )
        samples = tuple(columns[9:])
        if len(set(samples)) != len(samples) or "" in samples:
            raise self.fail("sample names on the #CHROM line must be unique and not empty")
        return samples

    def header(self, fileformat: str, samples: tuple[str, ...]) -> VcfHeader:
        return VcfHeader(
            samples=samples,
            contigs=self.contigs,
            reference=self.meta.get("reference"),
            source=self.meta.get("source"),
            file_date=self.meta.get("fileDate"),
            fileformat=fileformat,
            infos=self.infos,
            formats=self.formats,
            meta=self.meta,
            lines=self.line,
        )


def _attributes(inner: str) -> dict[str, str] | None:
    """``ID=DP,Number=1,Description="a, b"`` → dict, or None if it does not parse."""
    attrs: dict[str, str] = {}
    pos = 0
    while pos < len(inner):
        match = _ATTRIBUTE.match(inner, pos)
        if match is None or match.end() == pos:
            return None
        value = match.group(2)
        attrs[match.group(1)] = value[1:-1] if value.startswith('"') else value
        pos = match.end()
    return attrs


def read_header(stream: Stream, source: str) -> VcfHeader:
    """Parse the header up to and including the #CHROM line."""
    try:
        return _read_header(stream, source)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise TruncatedInputError(
            f"the compressed header is corrupt or cut short ({exc})", source=source
        ) from exc


def _read_header(stream: Stream, source: str) -> VcfHeader:
    first = stream.readline()
    if not first.startswith(b"##fileformat=VCF"):
        raise NotAVcfError(_not_vcf_message(first), source=source)
    parser = _HeaderParser(source)
    parser.line = 1
    fileformat = first.decode("utf-8", "replace").strip().partition("=")[2]
    for raw in stream:
        parser.line += 1
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        if text.startswith("#CHROM"):
            return parser.header(fileformat, parser.column_line(text))
        if not text.startswith("##"):
            raise parser.fail(
                f"header lines start with ## until the #CHROM line; got {text[:40]!r}"
            )
        parser.meta_line(text)
    raise parser.fail("the header has no #CHROM line")


def _not_vcf_message(first: bytes) -> str:
    for magic, what in _NOT_VCF:
        if first.startswith(magic):
            return f"not a VCF: this looks like {what}"
    if not first:
        return "not a VCF: the file is empty"
    return "not a VCF: it does not start with ##fileformat=VCF"


# ---- compression -----------------------------------------------------------------------


def compression_of(path: Path) -> Compression:
    with path.open("rb") as f:
        head = f.read(14)
    if not head.startswith(b"\x1f\x8b"):
        return "plain"
    return "bgzf" if head[3] & 4 and head[12:14] == b"BC" else "gzip"


def check_bgzf_eof(path: Path) -> None:
    """A bgzip file ends in a fixed 28-byte empty block; without it the file was cut short."""
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - len(_BGZF_EOF)))
        if f.read() != _BGZF_EOF:
            raise TruncatedInputError(
                "the bgzip file lacks its end-of-file block: it is truncated (an incomplete "
                "download or copy?)",
                source=str(path),
            )


def open_stream(path: Path, compression: Compression) -> Stream:
    return gzip.open(path, "rb") if compression != "plain" else path.open("rb")


# ---- data lines a block at a time -------------------------------------------------------

Indices = NDArray[np.intp]


class _Grid(NamedTuple):
    """Where a block's lines start and end, their tabs (a row a line), and the colons and
    commas of their FORMAT and sample columns (when asked for)."""

    starts: Indices
    ends: Indices
    columns: Indices
    colons: Indices
    commas: Indices


def _blocks(stream: Stream) -> Iterator[bytes]:
    """The stream in blocks of whole lines, the last line given its newline if it lacks one."""
    rest = b""
    while chunk := stream.read(_CHUNK):
        chunk = rest + chunk
        cut = chunk.rfind(b"\n") + 1
        rest = chunk[cut:]
        yield chunk[:cut]
    if rest:
        yield rest + b"\n"


def _grid(body: bytes, tabs: int, marks: bool = False) -> _Grid | None:
    """Line starts, line ends and tab positions (a row a line) of a block, if every line holds
    exactly ``tabs`` tabs and none starts with one; None otherwise. ``marks``: the colons and
    commas from each line's FORMAT column on as well (else empty)."""
    found = lines(body, tabs, 7 if marks else -1)
    if found is None:
        return None
    grid = np.frombuffer(found[0], np.intp).reshape(-1, tabs + 1)
    ends = grid[:, tabs]
    starts = np.concatenate(([0], ends[:-1] + 1))
    colons, commas = (np.frombuffer(m, np.intp) for m in found[1:])
    return _Grid(starts, ends, grid[:, :tabs], colons, commas)


def _formats(data: NDArray[np.uint8], columns: Indices) -> list[tuple[bytes, Indices]]:
    """Each distinct FORMAT of a block (between a line's 8th and 9th tab) and its lines."""
    first = columns[:, 7] + 1
    widths = columns[:, 8] - first
    if (widths == widths[0]).all():
        groups = [(int(widths[0]), np.arange(widths.size))]
    else:
        groups = [(int(w), np.flatnonzero(widths == w)) for w in np.unique(widths).tolist()]
    found = []
    for width, rows in groups:
        window = data[first[rows, np.newaxis] + np.arange(width)]
        if (window == window[0]).all():
            found.append((window[0].tobytes(), rows))
            continue
        distinct, which = np.unique(window, axis=0, return_inverse=True)
        which = which.reshape(-1)
        found += [(fmt.tobytes(), rows[which == i]) for i, fmt in enumerate(distinct)]
    return found


# ---- the body scan ---------------------------------------------------------------------


class BodyScan:
    """Checks each data line's shape before htslib sees it; counts the records.

    Whole blocks are checked at once with numpy; a block that fails is re-read line by line,
    which finds and names the offending line. Blank lines are allowed only at the end of the
    file (the reader stops before them).
    """

    def __init__(self, header: VcfHeader, source: str) -> None:
        self.header = header
        self.source = source
        self.tabs = 8 + len(header.samples)
        self.line = header.lines  # lines consumed so far
        self.records = 0
        self.blank_at: int | None = None
        self.known_formats: set[bytes] = set()

    def run(self, stream: Stream) -> int:
        try:
            for body in _blocks(stream):
                self.feed(body)
        except (EOFError, OSError, zlib.error) as exc:
            raise TruncatedInputError(
                f"the compressed data is corrupt or cut short, somewhere after line {self.line} "
                f"({exc})",
                source=self.source,
            ) from exc
        return self.records

    def feed(self, body: bytes) -> None:
        regular = self._regular(body) if self.blank_at is None else 0
        if regular:
            self.records += regular
            self.line += regular
            return
        lines = body.split(b"\n")
        lines.pop()
        for line in lines:
            self.line += 1
            self._one(line)

    def _regular(self, body: bytes) -> int:
        """The number of lines if each is a record of the header's shape, else 0.

        Every line must hold exactly the header's number of tabs, start with a CHROM (not a
        tab or '#'), and have a FORMAT whose keys are declared.
        """
        data = np.frombuffer(body, np.uint8)
        grid = _grid(body, self.tabs)
        if grid is None or (data[grid.starts] == _HASH).any():
            return 0
        formats = {fmt for fmt, _ in _formats(data, grid.columns)}
        declared = self.header.formats
        if any(_undeclared(fmt, declared) is not None for fmt in formats - self.known_formats):
            return 0
        self.known_formats |= formats
        return grid[0].size

    def _check_format(self, line: bytes) -> None:
        """Every FORMAT key must be declared; htslib would only warn and guess a type."""
        fmt = line.split(b"\t", 9)[8]
        if fmt in self.known_formats:
            return
        undeclared = _undeclared(fmt, self.header.formats)
        if undeclared is not None:
            raise HeaderMismatchError(
                f"FORMAT key {undeclared} is not declared in the header "
                f"(add ##FORMAT=<ID={undeclared},...>)",
                source=self.source,
                line=self.line,
                field="FORMAT",
            )
        self.known_formats.add(fmt)

    def _one(self, line: bytes) -> None:
        """The slow path: find what is wrong with one line, or count it."""
        if not line.strip():
            self.blank_at = self.blank_at or self.line
            return
        if self.blank_at is not None:
            raise self._malformed("blank line among the records", self.blank_at)
        if line.startswith((b"#", b"\t")):
            what = "a '#' line" if line.startswith(b"#") else "a line with an empty CHROM"
            raise self._malformed(f"{what} among the records")
        tabs = line.count(b"\t")
        if tabs < 7:
            raise self._malformed(
                f"a record needs 8 or more tab-separated columns; found {tabs + 1}"
            )
        if tabs != self.tabs:
            raise HeaderMismatchError(
                f"the record has {max(tabs - 8, 0)} sample columns but the header names "
                f"{len(self.header.samples)} sample(s)",
                source=self.source,
                line=self.line,
            )
        self._check_format(line)
        self.records += 1

    def _malformed(self, message: str, line: int | None = None) -> MalformedRecordError:
        return MalformedRecordError(message, source=self.source, line=line or self.line)


def _undeclared(fmt: bytes, declared: Mapping[str, FieldSpec]) -> str | None:
    """The first FORMAT key the header does not declare (a lone '.' is no key)."""
    if fmt == b".":
        return None
    keys = fmt.decode("utf-8", "replace").split(":")
    return next((k for k in keys if k not in declared), None)


# ---- AD and DP from the text -----------------------------------------------------------

#: per data line: (AD of the ALT, total depth: DP, else the sum of AD), None where absent
Depths = tuple[int | None, int | None]
_POWERS: Final = 10 ** np.arange(8, -1, -1, dtype=np.int64)  # a plain number's digit weights


class TextDepths:
    """AD and DP of a single-sample file's records, read from the text a block at a time.

    cyvcf2 hands each back as a fresh numpy array, which costs as much per record as htslib's
    parse of the whole line; numpy reads a block of lines at once. Only plain values are read:
    digits alone, at most nine (htslib reads those as the same number), and an AD of exactly
    two (REF and one ALT). A line with anything else gives None: ask htslib.
    """

    def __init__(self, header: VcfHeader, types: tuple[str | None, str | None]) -> None:
        self.tabs = 8 + len(header.samples)
        self.integer = {k for k, t in zip(("AD", "DP"), types, strict=True) if t == "Integer"}
        self.layouts: dict[bytes, tuple[int, int | None, int | None] | None] = {}

    def read(self, stream: Stream) -> Iterator[Depths | None]:
        """The depths of each data line of the stream, in order."""
        return chain.from_iterable(map(self._block, _blocks(stream)))

    def _block(self, body: bytes) -> list[Depths | None]:
        grid = _grid(body, self.tabs, marks=True)
        if grid is None:
            return [None] * body.count(b"\n")
        data = np.frombuffer(body, np.uint8)
        ends, columns = grid.ends, grid.columns
        ad, total = np.full((2, ends.size), -1, np.int64)  # -1: the FORMAT lacks the key
        plain = np.zeros(ends.size, bool)
        for fmt, rows in _formats(data, columns):
            layout = self._layout(fmt)
            if layout is not None:
                keys, ad_at, dp_at = layout
                fields = _SampleFields(
                    data, columns[rows, -1] + 1, ends[rows], keys, (grid.colons, grid.commas)
                )
                ad[rows], total[rows], plain[rows] = fields.depths(ad_at, dp_at)
        depths: list[Depths | None] = list(
            zip(_none_below_0(ad), _none_below_0(total), strict=True)
        )
        for row in np.flatnonzero(~plain).tolist():
            depths[row] = None
        return depths

    def _layout(self, fmt: bytes) -> tuple[int, int | None, int | None] | None:
        """(number of keys, index of AD, index of DP) of a FORMAT, if its AD and DP are
        Integer to htslib; cached per FORMAT."""
        try:
            return self.layouts[fmt]
        except KeyError:
            keys = fmt.decode("utf-8", "replace").split(":")
            ad_at, dp_at = (keys.index(k) if k in keys else None for k in ("AD", "DP"))
            usable = len(set(keys)) == len(keys) and self.integer.issuperset(
                k for k in ("AD", "DP") if k in keys
            )
            layout = self.layouts[fmt] = (len(keys), ad_at, dp_at) if usable else None
            return layout


class _SampleFields:
    """The ``:``-separated fields of the sample column of some lines, one FORMAT's worth."""

    def __init__(
        self,
        data: NDArray[np.uint8],
        starts: Indices,
        ends: Indices,
        keys: int,
        marks: tuple[Indices, Indices],
    ) -> None:
        self.data, self.starts, self.ends, self.keys = data, starts, ends, keys
        self.colons, self.commas = marks  # where the block's colons and commas are
        self.first = np.searchsorted(self.colons, starts)  # the sample's first colon
        #: every key has its field (htslib lets trailing ones be left out)
        self.complete = np.searchsorted(self.colons, ends) - self.first == keys - 1

    def depths(
        self, ad_at: int | None, dp_at: int | None
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
        """AD of the ALT and total depth (-1 where the FORMAT lacks them), and where plain."""
        ad = total = np.full(self.starts.size, -1, np.int64)
        plain = self.complete
        if ad_at is not None:
            ref, ad, pair = self.pair(ad_at)
            total, plain = ref + ad, plain & pair
        if dp_at is not None:
            total, single = _plain_numbers(self.data, *self.span(dp_at))
            plain = plain & single
        return ad, total, plain

    def span(self, key: int) -> tuple[Indices, Indices]:
        """Start and end of field ``key`` (only meaningful where ``complete``).

        Past key 0 there are colons to index: the FORMAT column itself holds some.
        """
        last = max(self.colons.size - 1, 0)
        start = self.starts if key == 0 else self.colons[np.minimum(self.first + key - 1, last)] + 1
        end = self.ends if key == self.keys - 1 else self.colons[np.minimum(self.first + key, last)]
        return start, end

    def pair(self, key: int) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
        """Field ``key`` as two numbers split by its one comma, and where that is plain."""
        start, end = self.span(key)
        if not self.commas.size:
            return start * 0, start * 0, np.zeros(start.size, bool)
        at = np.searchsorted(self.commas, start)
        last = self.commas.size - 1
        comma = self.commas[np.minimum(at, last)]
        after = np.where(at < last, self.commas[np.minimum(at + 1, last)], end)
        one = (at <= last) & (comma < end) & (after >= end)
        first, first_ok = _plain_numbers(self.data, start, comma)
        second, second_ok = _plain_numbers(self.data, comma + 1, end)
        return first, second, one & first_ok & second_ok


def _plain_numbers(
    data: NDArray[np.uint8], starts: Indices, ends: Indices
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """The numbers written in ``data[starts:ends]``, and which are plain (1 to 9 digits).

    Each is read from the nine bytes up to its end: a sample column starts after nine tabs,
    so a field's end is at least nine bytes into the block (other ends are not plain anyway).
    """
    width = ends - starts
    last = np.maximum(ends - _POWERS.size, 0)
    digits = sliding_window_view(data, _POWERS.size)[last] - np.uint8(ord("0"))
    digits *= np.arange(_POWERS.size) >= (_POWERS.size - width)[:, np.newaxis]  # 0 before it
    plain = (width >= 1) & (width <= _POWERS.size) & (digits <= 9).all(axis=1)  # wraps: > 9
    return digits.astype(np.int64) @ _POWERS, plain  # integers: numpy's own loop, no BLAS threads


def _none_below_0(values: NDArray[np.int64]) -> Sequence[int | None]:
    """The values as Python ints, None for the negative ones."""
    listed: list[int] = values.tolist()
    if values.size and values.min() < 0:
        return [v if v >= 0 else None for v in listed]
    return listed


# ---- diagnosing a line htslib rejected -------------------------------------------------


def diagnose(text: str, header: VcfHeader) -> tuple[str, str | None]:
    """Why htslib rejected a data line, as (message, field); htslib only says so on stderr."""
    columns = text.rstrip("\r\n").split("\t")
    if not columns[1].isdigit():
        return f"POS must be a positive integer, got {columns[1]!r}", "POS"
    if len(columns) > 9:
        keys = columns[8].split(":")
        for value in columns[9:]:
            problem = _bad_sample_value(keys, value.split(":"), header)
            if problem:
                return problem
    return "htslib cannot parse this record", None


def _bad_sample_value(
    keys: list[str], values: list[str], header: VcfHeader
) -> tuple[str, str] | None:
    for key, value in zip(keys, values, strict=False):
        if key == "GT" and not _GT_TEXT.fullmatch(value):
            return f"GT must be allele numbers separated by / or |, got {value!r}", "GT"
        spec = header.formats.get(key)
        numeric = spec is not None and spec.type in ("Integer", "Float")
        if numeric and not all(v == "." or _is_float(v) for v in value.split(",")):
            return f"FORMAT {key} must hold numbers, got {value!r}", key
    return None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def skip_lines(stream: Stream, count: int) -> None:
    for _ in range(count):
        stream.readline()


def index_contigs(index: Path, source: str) -> list[str]:
    """The contig names a tabix (.tbi) or CSI index holds, in its order."""
    try:
        data = gzip.decompress(index.read_bytes())
        if data.startswith(b"TBI\x01"):
            names_at = 36
        elif data.startswith(b"CSI\x01") and struct.unpack_from("<i", data, 12)[0] >= 28:
            names_at = 44  # magic, min_shift, depth, l_aux, then tabix's 7-int config
        else:
            raise ValueError("not a tabix index, nor a CSI index with contig names")
        (length,) = struct.unpack_from("<i", data, names_at - 4)
        raw = data[names_at : names_at + length]
    except (OSError, EOFError, ValueError, struct.error, zlib.error) as exc:
        raise RegionError(
            f"cannot read the index {index.name} ({exc}); re-create it with `tabix -p vcf`",
            source=source,
        ) from exc
    return [n.decode() for n in raw.split(b"\0") if n]
