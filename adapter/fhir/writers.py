"""Streaming, deterministic, atomic writers for the three output forms.

* ``transaction`` Bundle: fullUrl ``urn:uuid:<id>``, no resource id, and a conditional update
  ``PUT <Type>?identifier=urn:ietf:rfc:3986|urn:uuid:<id>`` per entry, so replaying the Bundle
  creates nothing twice. A Patient named by identifier becomes a conditional reference.
* ``collection`` Bundle: resources keep their ids, fullUrl ``urn:uuid:<id>``.
* ``ndjson``: a folder with one ``<Type>.ndjson`` per resource type (Bulk Data), references
  between our resources rewritten to ``<Type>/<id>``.

JSON is written as resources arrive; memory holds only 16 bytes per variant, for the report's
``result``. Output goes to a temporary file or folder beside the destination and is renamed
into place by :meth:`ResourceWriter.close`; after a failure nothing reaches the destination.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, NamedTuple, overload

import numpy as np
import orjson

from ..errors import InputError, OptionsError, OutputError
from ..model import AnalysisContext, PatientRef
from .codes import SECURITY_LABELS, instant
from .identifiers import URI_SYSTEM, patient_reference, uuid_text

__all__ = [
    "FORMS",
    "BundleWriter",
    "NdjsonWriter",
    "Part",
    "ReferenceList",
    "ResourceWriter",
    "labelled",
    "open_writer",
    "variant_id",
    "write_all",
    "write_atomically",
]

FORMS = ("transaction", "collection", "ndjson")
_UUID_BYTES = 16
_WRITE_BEHIND = 64 << 20  # bytes of output written before the kernel is told to write them
_BATCH = 4096  # references serialised at a time when streaming a ReferenceList
_IOV_MAX = 1024  # pieces one writev takes (POSIX guarantees at least 16, Linux takes 1024)
_WRITE_HELD = 1 << 20  # bytes of pieces held for one writev
#: UUID text 8-4-4-4-12: (first, last) hex digit of each group, and where it goes
_UUID_GROUPS = ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24))


class ReferenceList(Sequence[dict[str, str]]):
    """References to the variants written so far, made on demand from 16-byte ids.

    Re-iterable and sized, so a validator can read it before the writer streams it.
    """

    def __init__(self, ids: bytearray, prefix: str) -> None:
        self._ids = ids
        self._prefix = prefix

    def __len__(self) -> int:
        return len(self._ids) // _UUID_BYTES

    @overload
    def __getitem__(self, index: int) -> dict[str, str]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, str]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, str] | list[dict[str, str]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        start = (index % len(self)) * _UUID_BYTES
        return self._reference(bytes(self._ids[start : start + _UUID_BYTES]))

    def __iter__(self) -> Iterator[dict[str, str]]:
        ids = bytes(self._ids)
        for start in range(0, len(ids), _UUID_BYTES):
            yield self._reference(ids[start : start + _UUID_BYTES])

    def _reference(self, raw: bytes) -> dict[str, str]:
        return {"reference": self._prefix + uuid_text(raw.hex())}

    def json_items(self) -> Iterator[bytes]:
        """The references as comma-separated JSON objects, a batch at a time.

        Each reference is laid out in a row of bytes by numpy (a Python string per
        reference would cost more than all the rest of the report).
        """
        head = f'{{"reference":"{self._prefix}'.encode()
        row = np.frombuffer(head + b"-" * 36 + b'"},', np.uint8)
        ids = bytes(self._ids)
        step = _BATCH * _UUID_BYTES
        for start in range(0, len(ids), step):
            digits = np.frombuffer(ids[start : start + step].hex().encode(), np.uint8)
            rows = np.tile(row, (digits.size // 32, 1))
            hexes = digits.reshape(-1, 32)
            for first, last, at in _UUID_GROUPS:
                rows[:, len(head) + at : len(head) + at + last - first] = hexes[:, first:last]
            yield (b"," if start else b"") + rows.tobytes()[:-1]


def _repeated(ids: bytearray) -> str | None:
    """An id held twice, found by sorting the 16-byte ids in place of making objects: their
    first eight bytes as numbers (a fast sort; a UUIDv5's are hash bits), then the whole of
    the few that share them."""
    if len(ids) <= _UUID_BYTES:
        return None
    rows = np.frombuffer(bytes(ids), dtype=np.uint64).reshape(-1, 2)
    heads = np.sort(rows[:, 0])
    shared = heads[1:][heads[1:] == heads[:-1]]
    if not shared.size:
        return None
    ordered = np.sort(rows[np.isin(rows[:, 0], shared)].copy().view(f"V{_UUID_BYTES}").ravel())
    same = ordered[1:] == ordered[:-1]
    return uuid_text(ordered[1:][same][0].tobytes().hex()) if same.any() else None


class Part(NamedTuple):
    """Encoded resources at ``offset`` in the open file ``fd``, ``length`` bytes long."""

    fd: int
    offset: int
    length: int


def labelled(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with the security labels every genomic resource carries
    (:data:`~adapter.fhir.codes.SECURITY_LABELS`) added to ``meta.security`` where missing; a
    copy where they are, and the others it has kept (the policy's)."""
    meta = resource.get("meta") or {}
    held = {(c.get("system"), c.get("code")) for c in meta.get("security") or ()}
    missing = [dict(c) for c in SECURITY_LABELS if (c["system"], c["code"]) not in held]
    if not missing:
        return resource
    return {**resource, "meta": {**meta, "security": [*(meta.get("security") or ()), *missing]}}


def write_all(fd: int, pieces: Iterable[bytes]) -> int:
    """Write ``pieces`` to ``fd`` in order, many to a system call and none copied on the way
    (a buffered file copies each piece into its buffer first); the bytes written. At most
    :data:`_WRITE_HELD` bytes are held: the pieces may be a long report's stream."""
    total, held, batch = 0, 0, []
    for piece in pieces:
        batch.append(piece)
        held += len(piece)
        if len(batch) == _IOV_MAX or held >= _WRITE_HELD:
            total += _write_batch(fd, batch)
            held, batch = 0, []
    return total + (_write_batch(fd, batch) if batch else 0)


def _write_batch(fd: int, batch: list[bytes]) -> int:
    size = sum(map(len, batch))
    done = os.writev(fd, batch)
    if done < size:  # a short write (a full disk says so on the next call): the rest plainly
        rest = memoryview(b"".join(batch))[done:]
        while rest:
            rest = rest[os.write(fd, rest) :]
    return size


def _copy_range(fd: int, offset: int, length: int, file: IO[bytes]) -> None:
    """Copy a range of ``fd`` to the end of the flushed ``file``, in the kernel if it can."""
    out = file.fileno()
    try:
        while length > 0:
            done = os.copy_file_range(fd, out, length, offset)
            if done == 0:
                raise OSError(f"the part file ends {length} bytes early")
            offset, length = offset + done, length - done
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        while length > 0:
            block = os.pread(fd, min(length, 1 << 20), offset)
            if not block:
                raise OSError(f"the part file ends {length} bytes early") from e
            file.write(block)
            offset, length = offset + len(block), length - len(block)
        file.flush()


def variant_id(resource: dict[str, Any]) -> bytes:
    """A variant's UUID as the 16 bytes the writers keep."""
    return bytes.fromhex(resource["id"].replace("-", ""))


def _chunks(resource: dict[str, Any], line: bool = False) -> Iterator[bytes]:
    """A resource as JSON bytes, as a line of NDJSON if ``line``; a long ReferenceList
    ``result`` is streamed in batches."""
    results = resource.get("result")
    if isinstance(results, ReferenceList):
        return _streamed(resource, results, b"}\n" if line else b"}")
    return iter((orjson.dumps(resource, option=orjson.OPT_APPEND_NEWLINE if line else 0),))


def _streamed(resource: dict[str, Any], results: ReferenceList, close: bytes) -> Iterator[bytes]:
    """A resource with a ReferenceList ``result``, in pieces, then ``close``."""
    sep = b"{"
    for key, value in resource.items():
        yield sep
        sep = b","
        if value is not results:
            yield orjson.dumps({key: value})[1:-1]
            continue
        yield b'"result":['
        yield from results.json_items()
        yield b"]"
    yield close


class ResourceWriter(ABC):
    """The protocol of all writers: open, add variants and resources, close (or abort).

    As a context manager it opens on entry, closes on success and aborts on an exception.
    """

    #: prefix of the references :meth:`result_references` yields
    reference_prefix = "urn:uuid:"

    def __init__(self, destination: Path, ctx: AnalysisContext) -> None:
        self.destination = destination
        self._ctx = ctx
        self._result_ids = bytearray()
        self._counts: dict[str, int] = {}
        self._open = False
        self._behind: dict[IO[bytes], int] = {}  # how far each file was written behind

    def __enter__(self) -> ResourceWriter:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def open(self) -> None:
        """Create the temporary output beside the destination."""
        if not self.destination.parent.is_dir():
            raise OutputError(f"no such folder: {self.destination.parent}")
        try:
            self._create()
        except OSError as e:
            raise OutputError(f"cannot write beside {self.destination}: {e}") from e
        self._open = True

    def add_result(self, resource: dict[str, Any]) -> None:
        """Write an Observation the report lists as a result (a Variant, a biomarker, an
        implication) and remember it for the report.

        Writers only serialise and rearrange top-level elements (id, subject): what
        :meth:`encode_variant` makes of a probe is a template for every Observation of its
        shape (:meth:`VariantBuilder.encoding`).
        """
        self.add_encoded((self.encode_variant(resource),), variant_id(resource))

    def encode_variant(self, resource: dict[str, Any]) -> bytes:
        """A Variant Observation as this form writes it, for :meth:`add_encoded`.

        Needs no open writer: worker processes encode, one writer puts their bytes in order.
        """
        resource = self._variant(labelled(resource))
        if "derivedFrom" in resource:  # an implication: references the result it speaks of
            resource = {**resource, "derivedFrom": self._relink(resource["derivedFrom"])}
        return b"".join(self._encode("Observation", resource))

    def add_encoded(self, data: Sequence[bytes] | Part, ids: bytes) -> None:
        """Variants encoded by :meth:`encode_variant`, in order, or concatenated as a range
        of a file (copied by the kernel), and their 16-byte ids."""
        if not self._open:
            raise OutputError("the writer is not open")
        try:
            if isinstance(data, Part):
                if data.length:
                    self._copy("Observation", data)
            elif data:
                self._put("Observation", iter(data))
        except OSError as e:
            raise OutputError(f"cannot write {self.destination}: {e}") from e
        self._result_ids += ids

    def add(self, resource: dict[str, Any]) -> None:
        """Write any other resource (report, study, analysis, data file)."""
        resource = self._relink(labelled(resource))
        rtype = resource["resourceType"]
        self._counts[rtype] = self._counts.get(rtype, 0) + 1
        self._write(resource)

    def result_references(self) -> ReferenceList:
        """References to every result (variants first) added so far, in this writer's form."""
        return ReferenceList(self._result_ids, self.reference_prefix)

    def counts(self) -> dict[str, int]:
        """Resources written, by resource type; results (Observations) are counted by their ids."""
        variants = len(self._result_ids) // _UUID_BYTES
        counts = {"Observation": variants} if variants else {}
        for rtype, count in self._counts.items():
            counts[rtype] = counts.get(rtype, 0) + count
        return counts

    def _write(self, resource: dict[str, Any]) -> None:
        if not self._open:
            raise OutputError("the writer is not open")
        rtype = resource["resourceType"]
        try:
            self._put(rtype, self._encode(rtype, resource))
        except OSError as e:
            raise OutputError(f"cannot write {self.destination}: {e}") from e

    def close(self) -> None:
        """Finish the output and move it into place, unless a variant id occurs twice.

        Repeats at one locus get distinct ids (see IdFactory); a repeat elsewhere in an
        unsorted file would give a Bundle two entries with one fullUrl.
        """
        if not self._open:
            return
        self._open = False
        if (repeated := _repeated(self._result_ids)) is not None:
            self._discard()
            raise InputError(
                f"the same variant occurs twice, in records that are not adjacent (id {repeated}); "
                "sort or deduplicate the VCF"
            )
        try:
            self._commit()
        except OSError as e:
            self._discard()
            raise OutputError(f"cannot write {self.destination}: {e}") from e

    def abort(self) -> None:
        """Drop the temporary output; the destination stays as it was."""
        if self._open:
            self._open = False
            self._discard()

    def _variant(self, resource: dict[str, Any]) -> dict[str, Any]:
        """A variant adapted to the form (only its subject can need it)."""
        return resource

    def _relink(self, node: Any) -> Any:
        """References adapted to the form, in a copy where they change."""
        return node

    @staticmethod
    def _folder(path: Path | None) -> Path:
        """The temporary output, which exists only while the writer is open."""
        if path is None:
            raise OutputError("the writer is not open")
        return path

    @abstractmethod
    def _create(self) -> None:
        """Make the temporary file or folder."""

    @abstractmethod
    def _encode(self, resource_type: str, resource: dict[str, Any]) -> Iterator[bytes]:
        """One resource as this form writes it, in pieces (a long report is streamed)."""

    def _put(self, resource_type: str, pieces: Iterator[bytes]) -> None:
        """Write encoded resources of one type (one or several, concatenated)."""
        file = self._target(resource_type)
        skip = self._opening(file)
        first = next(pieces)[skip:]
        file.flush()
        write_all(file.fileno(), chain((first,), pieces))
        self._write_behind(file)

    def _copy(self, resource_type: str, part: Part) -> None:
        """Write encoded resources held in a range of another file."""
        file = self._target(resource_type)
        skip = self._opening(file)
        file.flush()
        _copy_range(part.fd, part.offset + skip, part.length - skip, file)
        self._write_behind(file)

    def _write_behind(self, file: IO[bytes]) -> None:
        """Have the kernel write the output to disk as it grows, and drop from memory what
        is written: a whole genome's output (gigabytes) neither fills the page cache nor
        leaves the final fsync to write it all."""
        end = file.tell()
        start = self._behind.get(file, 0)
        if end - start >= _WRITE_BEHIND and hasattr(os, "posix_fadvise"):
            file.flush()
            since = max(0, start - _WRITE_BEHIND)  # the last window is on disk by now
            os.posix_fadvise(file.fileno(), since, end - since, os.POSIX_FADV_DONTNEED)
            self._behind[file] = end

    def _opening(self, file: IO[bytes]) -> int:
        """Write what comes before the first resource; how many of the encoded resources'
        leading bytes it stands for."""
        return 0

    @abstractmethod
    def _target(self, resource_type: str) -> IO[bytes]:
        """The open file that resources of this type go to."""

    @abstractmethod
    def _commit(self) -> None:
        """Finish the temporary output and rename it into place."""

    @abstractmethod
    def _discard(self) -> None:
        """Remove the temporary output."""


def _plain_mode(base: int) -> int:
    """The mode a plain ``open``/``mkdir`` would give: the temporary output is created
    owner-only, and would keep that mode when renamed into place."""
    return base & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: types with no ``identifier`` to update on conditionally (R4 Provenance): a transaction puts
#: them by their id, the decision's UUIDv5, so a replay still creates nothing twice
_UNIDENTIFIED: Final = frozenset({"Provenance"})


def _conditional(patient: PatientRef) -> dict[str, str]:
    """A transaction's conditional reference to a Patient named by identifier."""
    query = f"identifier={patient.identifier_system}|{patient.identifier_value}"
    return {"reference": f"Patient?{query}"}


class BundleWriter(ResourceWriter):
    """A transaction or collection Bundle, written entry by entry."""

    def __init__(self, destination: Path, ctx: AnalysisContext, bundle_type: str) -> None:
        super().__init__(destination, ctx)
        self._type = bundle_type
        self._file: IO[bytes] | None = None
        self._temp: Path | None = None
        self._entries = False  # whether the entry array is open
        self._logical_patient: dict[str, Any] | None = None
        self._conditional_patient: dict[str, str] | None = None
        if bundle_type == "transaction" and ctx.patient.id is None:
            self._logical_patient = patient_reference(ctx.patient)
            self._conditional_patient = _conditional(ctx.patient)

    def _create(self) -> None:
        fd, name = tempfile.mkstemp(
            dir=self.destination.parent, prefix=f".{self.destination.name}.", suffix=".tmp"
        )
        self._temp = Path(name)
        os.fchmod(fd, _plain_mode(0o666))
        self._file = os.fdopen(fd, "wb", buffering=1 << 20)
        head: dict[str, Any] = {"resourceType": "Bundle", "type": self._type}
        if (timestamp := instant(self._ctx.issued)) is not None:
            head["timestamp"] = timestamp
        self._file.write(orjson.dumps(head)[:-1])

    def _variant(self, resource: dict[str, Any]) -> dict[str, Any]:
        if self._conditional_patient is None:
            return resource
        return {**resource, "subject": self._conditional_patient}

    def _relink(self, node: Any) -> Any:
        if self._logical_patient is None:
            return node
        if node == self._logical_patient:
            return self._conditional_patient
        if isinstance(node, dict):
            return {k: self._relink(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._relink(v) for v in node]
        return node

    def _stream(self) -> IO[bytes]:
        if self._file is None:
            raise OutputError("the writer is not open")
        return self._file

    def _encode(self, resource_type: str, resource: dict[str, Any]) -> Iterator[bytes]:
        """An entry, after a comma: the caller's resource keeps its id."""
        rid = resource["id"]
        transaction = self._type == "transaction"
        keyed = resource_type not in _UNIDENTIFIED
        if transaction and keyed:
            resource = {k: v for k, v in resource.items() if k != "id"}
        yield f',{{"fullUrl":"urn:uuid:{rid}","resource":'.encode()
        yield from _chunks(resource)
        if transaction:  # ids are UUIDs and types are names: nothing to escape
            url = f"{resource_type}?identifier={URI_SYSTEM}|urn:uuid:{rid}"
            url = url if keyed else f"{resource_type}/{rid}"
            yield f',"request":{{"method":"PUT","url":"{url}"}}}}'.encode()
        else:
            yield b"}"

    def _target(self, resource_type: str) -> IO[bytes]:
        return self._stream()

    def _opening(self, file: IO[bytes]) -> int:
        """The first entry opens the entry array in place of its comma."""
        if self._entries:
            return 0
        self._entries = True
        file.write(b',"entry":[')
        return 1

    def _commit(self) -> None:
        file = self._stream()
        file.write(b"]}" if self._entries else b"}")
        file.flush()
        os.fsync(file.fileno())
        file.close()
        os.replace(self._folder(self._temp), self.destination)

    def _discard(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)


class NdjsonWriter(ResourceWriter):
    """A Bulk Data folder: ``<Type>.ndjson`` files, one resource per line."""

    reference_prefix = "Observation/"

    def __init__(self, destination: Path, ctx: AnalysisContext) -> None:
        super().__init__(destination, ctx)
        self._temp: Path | None = None
        self._files: dict[str, IO[bytes]] = {}

    def _create(self) -> None:
        self._temp = Path(
            tempfile.mkdtemp(dir=self.destination.parent, prefix=f".{self.destination.name}.")
        )
        self._temp.chmod(_plain_mode(0o777))

    def _relink(self, node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str) and ref.startswith("urn:uuid:") and "type" in node:
                return {**node, "reference": f"{node['type']}/{ref.removeprefix('urn:uuid:')}"}
            return {k: self._relink(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._relink(v) for v in node]
        return node

    def _encode(self, resource_type: str, resource: dict[str, Any]) -> Iterator[bytes]:
        return _chunks(resource, line=True)

    def _target(self, resource_type: str) -> IO[bytes]:
        file = self._files.get(resource_type)
        if file is None:
            path = self._folder(self._temp) / f"{resource_type}.ndjson"
            file = self._files[resource_type] = path.open("wb", buffering=1 << 20)
        return file

    def _commit(self) -> None:
        temp = self._folder(self._temp)
        for file in self._files.values():
            file.flush()
            os.fsync(file.fileno())
            file.close()
        self._files.clear()
        dest = self.destination
        if dest.exists() and not dest.is_dir():
            raise NotADirectoryError(f"{dest} exists and is not a folder")
        if not dest.exists():
            os.replace(temp, dest)
            return
        old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old."))
        os.replace(dest, old / dest.name)
        try:
            os.replace(temp, dest)
        except OSError:
            os.replace(old / dest.name, dest)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)

    def _discard(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)


def open_writer(form: str, destination: Path, ctx: AnalysisContext) -> ResourceWriter:
    """A writer for ``form`` (one of :data:`FORMS`), not yet opened."""
    if form == "ndjson":
        return NdjsonWriter(destination, ctx)
    if form in ("transaction", "collection"):
        return BundleWriter(destination, ctx, form)
    raise OptionsError(f"unknown output form {form!r}; use one of {', '.join(FORMS)}")


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` in ``path``, whole or not at all."""
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"cannot write beside {path}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(name, path)
    except OSError as e:
        Path(name).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {e.strerror}") from e
