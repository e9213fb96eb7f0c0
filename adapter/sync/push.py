"""A report's transaction Bundle onto a server: the patient resolved, the Bundle split to the
server's size limit, every reference still resolvable, a resend harmless.

Policy:

* **Patient.** The report names its patient by identifier (MRN). :func:`resolve_patient`
  searches the server: exactly one match is used, none or several stop the job
  (:class:`PatientNotResolved`); a conditional reference ``Patient?identifier=...`` is then
  rewritten to ``Patient/<id>``, which every server understands.
* **Splitting.** Entries that reference each other (``urn:uuid`` fullUrls) form a graph; its
  strongly connected parts are never split, and parts go in dependency order, so an entry's
  targets are in its own chunk or in an earlier one. A reference to an entry of an earlier
  chunk is rewritten to the ``Type/id`` the server gave it (from the entry's ``location``),
  so chunks are independent requests. https://hl7.org/fhir/R4/bundle.html#references
* **Transaction or batch.** A server that declares ``transaction`` gets transactions (all or
  nothing per chunk). One that declares only ``batch`` gets batches, where entries may not
  depend on each other (https://hl7.org/fhir/R4/http.html#transaction): chunks then follow
  dependency levels, and each entry's answer is checked; any non-2xx entry stops the job
  with that entry's OperationOutcome.
* **Concurrency.** Up to ``concurrency`` chunks are in flight at once, each as soon as the
  chunks holding its targets are done (most of a large report, its Variants, depend on
  nothing but the patient). A failed chunk stops the push: chunks in flight are cancelled,
  and the first error is raised.
* **Resuming.** After each chunk the caller gets the :class:`Progress` (chunks done, ids
  assigned) to store; given it back, :func:`push_bundle` skips what is done. A chunk sent
  again, because the process died before its progress was stored, only updates: every entry
  is a conditional update by business identifier.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from ..errors import OptionsError, PatientNotResolved, ServerRejected
from .client import FhirClient

__all__ = ["Progress", "PushResult", "plan_chunks", "push_bundle", "resolve_patient"]

Resource = dict[str, Any]
Entry = dict[str, Any]


@dataclass(slots=True)
class Progress:
    """What has reached the server: stored by the outbox after every chunk."""

    #: indices of the chunks the server took
    done: set[int] = field(default_factory=set)
    #: entry fullUrl -> the ``Type/id`` the server assigned
    ids: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"chunks": sorted(self.done), "ids": dict(self.ids)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Progress:
        data = data or {}
        return cls({int(i) for i in data.get("chunks", [])}, dict(data.get("ids", {})))


@dataclass(frozen=True, slots=True)
class PushResult:
    entries: int
    chunks: int
    ids: dict[str, str]


async def resolve_patient(client: FhirClient, system: str, value: str) -> str:
    """``Patient/<id>`` of the one Patient with this identifier on the server."""
    found = await client.search("Patient", {"identifier": f"{system}|{value}", "_elements": "id"})
    ids = sorted({p["id"] for p in found if p.get("resourceType") == "Patient"})
    if len(ids) != 1:
        many = "no Patient has" if not ids else f"{len(ids)} Patients have"
        raise PatientNotResolved(
            f"{many} the report's patient identifier (system {system}) on this server",
            source=client.base_url,
        )
    return f"Patient/{ids[0]}"


async def push_bundle(
    client: FhirClient,
    bundle: Resource,
    *,
    max_entries: int,
    transactions: bool = True,
    rewrite: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    on_chunk: Callable[[Progress], Awaitable[None]] | None = None,
    concurrency: int = 1,
) -> PushResult:
    """Send ``bundle``'s entries in chunks; ``rewrite`` maps references (such as the
    patient's conditional reference) to what the server knows."""
    if concurrency < 1:
        raise OptionsError(f"at least one chunk must be in flight, not {concurrency}")
    located = [_Located.of(e).rewritten(rewrite or {}) for e in bundle.get("entry", [])]
    chunks = _plan(located, max_entries, levels=not transactions)
    done = progress or Progress()
    kind = "transaction" if transactions else "batch"

    async def send(index: int) -> dict[str, str]:
        sent = [located[i].rewritten(done.ids) for i in chunks[index]]
        answer = await client.bundle(kind, [e.raw for e in sent])
        return _assigned(sent, answer, client.base_url)

    needs = _chunk_needs(located, chunks)
    waiting = [i for i in range(len(chunks)) if i not in done.done]
    running: dict[asyncio.Task[dict[str, str]], int] = {}
    while waiting or running:
        for index in [i for i in waiting if needs[i] <= done.done][: concurrency - len(running)]:
            waiting.remove(index)
            running[asyncio.create_task(send(index))] = index
        finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in finished:
            index = running.pop(task)
            error = task.exception()
            if error is not None:
                await _cancel(running)
                raise error
            done.ids.update(task.result())
            done.done.add(index)
            if on_chunk is not None:
                await on_chunk(done)
    return PushResult(len(located), len(chunks), dict(done.ids))


async def _cancel(running: Mapping[asyncio.Task[dict[str, str]], int]) -> None:
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


def _chunk_needs(located: Sequence[_Located], chunks: Sequence[list[int]]) -> list[set[int]]:
    """For each chunk, the other chunks holding entries it references."""
    where = {located[e].full_url: i for i, chunk in enumerate(chunks) for e in chunk}
    return [
        {where[r] for e in chunk for r in located[e].references if r in where} - {i}
        for i, chunk in enumerate(chunks)
    ]


def plan_chunks(entries: Sequence[Entry], max_entries: int, *, levels: bool) -> list[list[Entry]]:
    """Entries grouped so each one's targets come in its own chunk or before it; with
    ``levels`` (batches) no entry shares a chunk with its targets."""
    chunks = _plan([_Located.of(e) for e in entries], max_entries, levels=levels)
    return [[entries[i] for i in chunk] for chunk in chunks]


def _plan(located: Sequence[_Located], max_entries: int, *, levels: bool) -> list[list[int]]:
    if max_entries < 1:
        raise OptionsError(f"the server's maximum Bundle size must be positive, not {max_entries}")
    targets = _targets(located)
    parts = _components(len(located), targets)
    if levels:
        return _by_level(parts, targets, max_entries)
    chunks: list[list[int]] = []
    current: list[int] = []
    for part in parts:
        if len(part) > max_entries:
            raise OptionsError(
                f"{len(part)} entries reference each other in a cycle, more than the server's "
                f"limit of {max_entries} per Bundle: raise the limit"
            )
        if len(current) + len(part) > max_entries:
            chunks.append(current)
            current = []
        current += part
    return [*chunks, current] if current else chunks


def _by_level(parts: list[list[int]], targets: list[set[int]], max_entries: int) -> list[list[int]]:
    level = [0] * len(targets)
    for part in parts:  # dependencies first, so targets' levels are known
        if len(part) > 1:
            raise OptionsError(
                "entries of this Bundle reference each other in a cycle, which a batch cannot "
                "carry: the server must support transactions"
            )
        node = part[0]
        level[node] = 1 + max((level[t] for t in targets[node]), default=-1)
    chunks: list[list[int]] = []
    for depth in range(max(level, default=-1) + 1):
        layer = [i for i in range(len(targets)) if level[i] == depth]
        chunks += [layer[i : i + max_entries] for i in range(0, len(layer), max_entries)]
    return chunks


def _targets(located: Sequence[_Located]) -> list[set[int]]:
    """For each entry, the indices of the entries it references by fullUrl."""
    index = {e.full_url: i for i, e in enumerate(located) if e.full_url}
    return [
        {index[ref] for ref in e.references if ref in index} - {i} for i, e in enumerate(located)
    ]


def _components(count: int, targets: list[set[int]]) -> list[list[int]]:
    """Strongly connected components, each listed after the ones it references (Tarjan's
    algorithm, iterative: a long derivedFrom chain must not exhaust the stack)."""
    order: list[list[int]] = []
    low, seen_at, on_stack = [0] * count, [-1] * count, [False] * count
    stack: list[int] = []
    counter = 0
    for root in range(count):
        if seen_at[root] >= 0:
            continue
        work: list[tuple[int, Iterator[int]]] = [(root, iter(sorted(targets[root])))]
        seen_at[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            node, pending = work[-1]
            child = next(pending, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == seen_at[node]:
                    order.append(_pop_component(stack, on_stack, node))
            elif seen_at[child] < 0:
                seen_at[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack[child] = True
                work.append((child, iter(sorted(targets[child]))))
            elif on_stack[child]:
                low[node] = min(low[node], seen_at[child])
    return order


def _pop_component(stack: list[int], on_stack: list[bool], root: int) -> list[int]:
    component = []
    while True:
        node = stack.pop()
        on_stack[node] = False
        component.append(node)
        if node == root:
            return sorted(component)


#: a Reference's ``reference`` in compact JSON (orjson's output), its string literal captured
_REFERENCE: Final = re.compile(rb'"reference":("(?:[^"\\\\]|\\\\.)*")')


@dataclass(frozen=True, slots=True)
class _Located:
    """An entry serialised once, with the references it holds: rewriting a reference is a
    replacement in its JSON, so a 10,000-entry report is neither walked nor serialised again
    for each chunk or attempt."""

    raw: bytes
    full_url: str
    resource_type: str
    references: tuple[str, ...]

    @classmethod
    def of(cls, entry: Entry) -> _Located:
        raw = orjson.dumps(entry)
        found = tuple(orjson.loads(literal) for literal in _REFERENCE.findall(raw))
        resource_type = str(entry.get("resource", {}).get("resourceType", ""))
        return cls(raw, str(entry.get("fullUrl", "")), resource_type, found)

    def rewritten(self, mapping: Mapping[str, str]) -> _Located:
        changed = {ref for ref in self.references if ref in mapping}
        if not changed:
            return self

        def replaced(match: re.Match[bytes]) -> bytes:
            new = mapping.get(orjson.loads(match.group(1)))
            return match.group(0) if new is None else b'"reference":' + orjson.dumps(new)

        raw = _REFERENCE.sub(replaced, self.raw)  # one pass, however many change
        refs = tuple(mapping.get(ref, ref) for ref in self.references)
        return _Located(raw, self.full_url, self.resource_type, refs)


def _assigned(sent: Sequence[_Located], answer: Resource, server: str) -> dict[str, str]:
    """fullUrl -> ``Type/id`` from a transaction or batch response; a failed batch entry
    stops here with its OperationOutcome."""
    answers = answer.get("entry", [])
    if len(answers) != len(sent):
        raise ServerRejected(
            f"the server answered {len(answers)} entries for {len(sent)} sent",
            status=200,
            source=server,
        )
    ids = {}
    for entry, reply in zip(sent, answers, strict=True):
        response = reply.get("response", {})
        status = str(response.get("status", ""))
        where = f"{entry.resource_type} entry"
        if not status.startswith("2"):
            raise ServerRejected(
                f"{where}: HTTP {status or 'status missing'}",
                status=int(status[:3]) if status[:3].isdigit() else 502,
                outcome=response.get("outcome"),
                source=server,
            )
        location = response.get("location") or ""
        parts = location.split("/_history")[0].rstrip("/").split("/")
        if len(parts) < 2:
            raise ServerRejected(f"{where}: no location in the answer", status=502, source=server)
        ids[entry.full_url] = f"{parts[-2]}/{parts[-1]}"
    return ids
