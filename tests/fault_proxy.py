"""A fault-injecting HTTP proxy for the sync tests, on 127.0.0.1 and a free port.

It forwards each request to an upstream base URL (a FHIR server, or our own notification
endpoint for the inbound direction) unless a queued :class:`Fault` matches it first:

- ``throttle``: answer 429 with ``Retry-After`` (seconds, or an HTTP date from
  :func:`http_date`), not forwarded;
- ``unavailable``: answer 503 (with ``Retry-After`` when given), not forwarded;
- ``delay``: wait, then forward (a slow server);
- ``drop_before``: close the connection without an answer, not forwarded;
- ``drop_after``: forward, then close without an answer: the upstream did the write but
  the client never heard, the case idempotent writes exist for;
- ``duplicate``: forward twice, answer with the first response (a notification delivered
  twice);
- ``hold_back``: answer 200 at once, forward after the next request has been forwarded (two
  notifications out of order);
- ``lose``: answer 200, never forward (a notification lost on the way: the sender believes
  it delivered).

Faults apply, in the order queued, to the next requests they match (``method``, ``path``
occurring in the request target, and ``body`` occurring in the request body), each ``times``
times. Every request is recorded
as an :class:`Exchange`. The proxy runs its own event loop in a thread, so sync tests and
``asyncio.run`` tests use it alike; standard library and httpx only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from enum import StrEnum
from http import HTTPStatus
from types import TracebackType
from urllib.parse import urlsplit

import httpx

__all__ = ["Exchange", "Fault", "FaultKind", "FaultProxy", "http_date"]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
MAX_LINE = 65536


class FaultKind(StrEnum):
    THROTTLE = "throttle"
    UNAVAILABLE = "unavailable"
    DELAY = "delay"
    DROP_BEFORE = "drop_before"
    DROP_AFTER = "drop_after"
    DUPLICATE = "duplicate"
    HOLD_BACK = "hold_back"
    LOSE = "lose"


@dataclass(frozen=True)
class Fault:
    """One fault and the requests it applies to."""

    kind: FaultKind
    retry_after: str | None = None  # 429/503: the Retry-After header's value
    seconds: float = 0.0  # delay: how long before forwarding
    method: str | None = None  # None: any method
    path: str | None = None  # None: any target; else a substring of the target
    body: bytes | None = None  # None: any body; else a substring of the body

    def matches(self, method: str, target: str, body: bytes) -> bool:
        return (
            (self.method is None or self.method == method)
            and (self.path is None or self.path in target)
            and (self.body is None or self.body in body)
        )


@dataclass
class Exchange:
    """One request the proxy received, and what came of it."""

    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    fault: FaultKind | None = None
    status: int | None = None  # what the client got; None when the connection was dropped
    upstream: list[int] = field(default_factory=list)  # statuses of each forward


@dataclass
class _Queued:
    fault: Fault
    times: int


@dataclass
class _Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    close: bool


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_date(seconds_from_now: float) -> str:
    """An HTTP date (RFC 9110 IMF-fixdate) for a Retry-After header."""
    return formatdate(time.time() + seconds_from_now, usegmt=True)


class FaultProxy:
    """The proxy: ``start()`` (or ``with``), use :attr:`url` as the base, ``stop()``."""

    def __init__(self, upstream: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(upstream)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path.rstrip("/")
        self._timeout = timeout
        self._lock = threading.Lock()
        self._faults: list[_Queued] = []
        self._exchanges: list[Exchange] = []
        self._held: list[tuple[_Request, Exchange]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Bind 127.0.0.1 on a free port and serve from a thread of its own."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections, and join the thread."""
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The upstream base URL as seen through the proxy."""
        return self.origin + self._base_path

    # --- scripting ----------------------------------------------------------------------

    def inject(self, fault: Fault, times: int = 1) -> FaultProxy:
        """Apply ``fault`` to the next ``times`` requests it matches."""
        with self._lock:
            self._faults.append(_Queued(fault, times))
        return self

    def throttle(
        self, retry_after: str = "1", method: str | None = None, path: str | None = None
    ) -> FaultProxy:
        return self.inject(
            Fault(FaultKind.THROTTLE, retry_after=retry_after, method=method, path=path)
        )

    def unavailable(
        self, retry_after: str | None = None, method: str | None = None, path: str | None = None
    ) -> FaultProxy:
        return self.inject(
            Fault(FaultKind.UNAVAILABLE, retry_after=retry_after, method=method, path=path)
        )

    def delay(
        self, seconds: float, method: str | None = None, path: str | None = None
    ) -> FaultProxy:
        return self.inject(Fault(FaultKind.DELAY, seconds=seconds, method=method, path=path))

    def drop(
        self, *, after_forwarding: bool = False, method: str | None = None, path: str | None = None
    ) -> FaultProxy:
        kind = FaultKind.DROP_AFTER if after_forwarding else FaultKind.DROP_BEFORE
        return self.inject(Fault(kind, method=method, path=path))

    def duplicate(self, method: str | None = None, path: str | None = None) -> FaultProxy:
        return self.inject(Fault(FaultKind.DUPLICATE, method=method, path=path))

    def hold_back(self, method: str | None = None, path: str | None = None) -> FaultProxy:
        return self.inject(Fault(FaultKind.HOLD_BACK, method=method, path=path))

    def lose(
        self, method: str | None = None, path: str | None = None, body: bytes | None = None
    ) -> FaultProxy:
        return self.inject(Fault(FaultKind.LOSE, method=method, path=path, body=body))

    @property
    def pending(self) -> int:
        """Fault applications still queued."""
        with self._lock:
            return sum(queued.times for queued in self._faults)

    @property
    def exchanges(self) -> list[Exchange]:
        """Every request so far, oldest first."""
        with self._lock:
            return list(self._exchanges)

    def _take(self, request: _Request) -> Fault | None:
        with self._lock:
            for queued in self._faults:
                if queued.fault.matches(request.method, request.target, request.body):
                    queued.times -= 1
                    if queued.times == 0:
                        self._faults.remove(queued)
                    return queued.fault
        return None

    # --- serving ------------------------------------------------------------------------

    async def _open(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._timeout)
        self._server = await asyncio.start_server(self._connected, "127.0.0.1", 0, limit=MAX_LINE)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        assert self._server is not None and self._client is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while (request := await _read_request(reader)) is not None:
                if not await self._answer(request, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _answer(self, request: _Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must close."""
        fault = self._take(request)
        exchange = Exchange(
            request.method,
            request.target,
            {k.lower(): v for k, v in request.headers},
            request.body,
            fault.kind if fault else None,
        )
        with self._lock:
            self._exchanges.append(exchange)
        if fault is None:
            response: _Response | None = await self._forward(request, exchange)
        else:
            response = await self._faulted(fault, request, exchange)
        if fault is None or fault.kind is not FaultKind.HOLD_BACK:
            await self._release_held()
        if response is None:
            return False  # dropped
        exchange.status = response.status
        await _write(writer, response, close=request.close)
        return not request.close

    async def _faulted(
        self, fault: Fault, request: _Request, exchange: Exchange
    ) -> _Response | None:
        retry = [("Retry-After", fault.retry_after)] if fault.retry_after else []
        match fault.kind:
            case FaultKind.THROTTLE | FaultKind.UNAVAILABLE:
                return _Response(429 if fault.kind is FaultKind.THROTTLE else 503, retry, b"")
            case FaultKind.DROP_BEFORE | FaultKind.DROP_AFTER:
                if fault.kind is FaultKind.DROP_AFTER:
                    await self._forward(request, exchange)
                return None
            case FaultKind.DELAY:
                await asyncio.sleep(fault.seconds)
                return await self._forward(request, exchange)
            case FaultKind.DUPLICATE:
                first = await self._forward(request, exchange)
                await self._forward(request, exchange)
                return first
            case FaultKind.HOLD_BACK:
                self._held.append((request, exchange))
                return _Response(200, [], b"")
            case FaultKind.LOSE:
                return _Response(200, [], b"")

    async def _release_held(self) -> None:
        held, self._held = self._held, []
        for request, exchange in held:
            await self._forward(request, exchange)

    async def _forward(self, request: _Request, exchange: Exchange) -> _Response:
        assert self._client is not None
        headers = [(k, v) for k, v in request.headers if k.lower() not in HOP_BY_HOP]
        try:
            upstream = await self._client.send(
                self._client.build_request(
                    request.method,
                    self._origin + request.target,
                    headers=headers,
                    content=request.body,
                ),
                stream=True,
            )
        except httpx.TransportError as error:
            exchange.upstream.append(502)
            return _Response(502, [], f"upstream unreachable: {error!r}".encode())
        try:
            body = b"".join([chunk async for chunk in upstream.aiter_raw()])
        finally:
            await upstream.aclose()
        exchange.upstream.append(upstream.status_code)
        kept = [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in HOP_BY_HOP]
        return _Response(upstream.status_code, kept, body)


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """One HTTP/1.1 request, or None at a clean end of the connection."""
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, version = line.decode("latin-1").split()
    headers: list[tuple[str, str]] = []
    while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    named = {k.lower(): v.lower() for k, v in headers}
    if "chunked" in named.get("transfer-encoding", ""):
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(named.get("content-length", "0")))
    close = named.get("connection") == "close" or version == "HTTP/1.0"
    return _Request(method, target, headers, body, close)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while size := int((await reader.readline()).split(b";")[0], 16):
        chunks.append(await reader.readexactly(size))
        await reader.readline()
    while await reader.readline() not in (b"\r\n", b"\n", b""):
        pass  # trailers
    return b"".join(chunks)


async def _write(writer: asyncio.StreamWriter, response: _Response, *, close: bool) -> None:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines += [f"{k}: {v}" for k, v in response.headers]
    lines += [f"Content-Length: {len(response.body)}"]
    lines += ["Connection: close"] if close else []
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)
    await writer.drain()
