"""The fault-injecting proxy, each fault observed by a real httpx client in front of a tiny
real upstream on 127.0.0.1 that counts the requests it served."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from fault_proxy import Fault, FaultKind, FaultProxy, http_date


class Upstream(ThreadingHTTPServer):
    """Answers every request with JSON naming it and its sequence number."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, str, bytes]] = []
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/fhir"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Upstream

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.seen.append((self.command, self.path, body))
            number = len(self.server.seen)
        answer = json.dumps({"n": number, "method": self.command, "path": self.path}).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("ETag", f'W/"{number}"')
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = _serve

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read ``seen`` instead."""


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.base) as running:
        yield running


@pytest.fixture
def client(proxy: FaultProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=10) as http:
        yield http


def test_forwards_requests_responses_and_records_them(
    proxy: FaultProxy, upstream: Upstream, client: httpx.Client
) -> None:
    created = client.post("Patient", json={"resourceType": "Patient"})
    read = client.get("Patient/1", params={"_format": "json"})
    assert created.status_code == 201 and created.json()["path"] == "/fhir/Patient"
    assert created.headers["etag"] == 'W/"1"'
    assert read.json() == {"n": 2, "method": "GET", "path": "/fhir/Patient/1?_format=json"}
    assert upstream.seen[0] == ("POST", "/fhir/Patient", b'{"resourceType":"Patient"}')
    first, second = proxy.exchanges
    assert (first.method, first.target, first.status, first.upstream) == (
        "POST",
        "/fhir/Patient",
        201,
        [201],
    )
    assert first.body == b'{"resourceType":"Patient"}' and first.fault is None
    assert first.headers["content-type"] == "application/json"
    assert (second.target, second.status) == ("/fhir/Patient/1?_format=json", 200)


def test_429_with_retry_after_seconds_then_passes(
    proxy: FaultProxy, upstream: Upstream, client: httpx.Client
) -> None:
    proxy.throttle(retry_after="7")
    throttled = client.get("Patient/1")
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "7"
    assert upstream.seen == []
    assert client.get("Patient/1").status_code == 200
    assert len(upstream.seen) == 1 and proxy.pending == 0
    assert [e.fault for e in proxy.exchanges] == [FaultKind.THROTTLE, None]


def test_429_with_retry_after_http_date(proxy: FaultProxy, client: httpx.Client) -> None:
    proxy.throttle(retry_after=http_date(120))
    answer = client.get("Patient/1")
    when = parsedate_to_datetime(answer.headers["retry-after"])
    assert answer.status_code == 429
    assert 100 < (when - datetime.now(UTC)).total_seconds() <= 121


def test_503_with_and_without_retry_after(
    proxy: FaultProxy, upstream: Upstream, client: httpx.Client
) -> None:
    proxy.unavailable().unavailable(retry_after="3")
    bare, hinted = client.get("metadata"), client.get("metadata")
    assert (bare.status_code, hinted.status_code) == (503, 503)
    assert "retry-after" not in bare.headers and hinted.headers["retry-after"] == "3"
    assert upstream.seen == []


def test_delay_slows_the_response_and_still_forwards(
    proxy: FaultProxy, upstream: Upstream, client: httpx.Client
) -> None:
    proxy.delay(0.4)
    started = time.monotonic()
    answer = client.get("Patient/1")
    assert answer.status_code == 200 and time.monotonic() - started >= 0.4
    proxy.delay(0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.get("Patient/2", timeout=0.1)
    deadline = time.monotonic() + 5
    while len(upstream.seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [path for _, path, _ in upstream.seen] == ["/fhir/Patient/1", "/fhir/Patient/2"]


def test_drop_before_forwarding_never_reaches_upstream(
    proxy: FaultProxy, upstream: Upstream, client: httpx.Client
) -> None:
    proxy.drop()
    with pytest.raises(httpx.RemoteProtocolError):
        client.put("Patient/1", json={"resourceType": "Patient", "id": "1"})
    assert upstream.seen == []
    assert proxy.exchanges[0].status is None and proxy.exchanges[0].upstream == []
    assert client.get("Patient/1").status_code == 200  # a fresh connection works


def test_drop_after_forwarding_the_write_happened_but_the_client_never_heard(
    proxy: FaultProxy, upstream: Upstream, client: httpx.Client
) -> None:
    proxy.drop(after_forwarding=True, method="POST")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("Observation", json={"resourceType": "Observation"})
    assert [(m, p) for m, p, _ in upstream.seen] == [("POST", "/fhir/Observation")]
    exchange = proxy.exchanges[0]
    assert (exchange.fault, exchange.status, exchange.upstream) == (
        FaultKind.DROP_AFTER,
        None,
        [201],
    )


def test_faults_apply_only_to_matching_requests_and_count_down(
    proxy: FaultProxy, upstream: Upstream, client: httpx.Client
) -> None:
    proxy.inject(Fault(FaultKind.UNAVAILABLE, path="Observation"), times=2)
    assert client.get("Patient/1").status_code == 200
    assert client.get("Observation/1").status_code == 503
    assert proxy.pending == 1
    assert client.get("Observation/2").status_code == 503
    assert client.get("Observation/3").status_code == 200
    assert [p for _, p, _ in upstream.seen] == ["/fhir/Patient/1", "/fhir/Observation/3"]


def test_duplicate_delivers_the_request_twice(
    proxy: FaultProxy, upstream: Upstream, client: httpx.Client
) -> None:
    proxy.duplicate()
    answer = client.post("notify", content=b'{"resourceType":"Bundle"}')
    assert answer.json()["n"] == 1  # the client hears the first delivery's answer
    assert [b for _, _, b in upstream.seen] == [b'{"resourceType":"Bundle"}'] * 2
    assert proxy.exchanges[0].upstream == [201, 201]


def test_hold_back_delivers_after_the_next_request(
    proxy: FaultProxy, upstream: Upstream, client: httpx.Client
) -> None:
    proxy.hold_back()
    early = client.post("notify", content=b"event-1")
    assert early.status_code == 200 and early.content == b""  # acknowledged, not delivered
    assert upstream.seen == []
    client.post("notify", content=b"event-2")
    assert [b for _, _, b in upstream.seen] == [b"event-2", b"event-1"]
    assert [e.upstream for e in proxy.exchanges] == [[201], [201]]


def test_usable_from_an_async_client(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.throttle(retry_after="1")

    async def go() -> list[int]:
        async with httpx.AsyncClient(base_url=proxy.url) as http:
            answers = await asyncio.gather(*(http.get(f"Patient/{i}") for i in range(4)))
        return sorted(a.status_code for a in answers)

    assert asyncio.run(go()) == [200, 200, 200, 429]
    assert len(upstream.seen) == 3


def test_upstream_down_answers_502() -> None:
    with FaultProxy("http://127.0.0.1:9/fhir") as down, httpx.Client(base_url=down.url) as http:
        answer = http.get("metadata")
    assert answer.status_code == 502 and down.exchanges[0].upstream == [502]
