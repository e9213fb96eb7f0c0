"""An async FHIR R4 client for one server: every status the FHIR HTTP spec lets a server
answer is handled in one place (https://hl7.org/fhir/R4/http.html).

Policy:

* **429 and 503** (throttled, unavailable), **502/504** and a dropped or refused connection
  are transient: the request is sent again after the server's ``Retry-After`` (seconds or an
  HTTP date, https://www.rfc-editor.org/rfc/rfc9110#field.retry-after) when it gives one,
  capped, else after an exponential backoff with full jitter; after ``max_attempts`` the
  caller gets :class:`ServerUnavailable` and the job waits in the outbox. Resending is safe
  because everything the adapter writes is a conditional update keyed by a business
  identifier (a resend finds and updates, never duplicates).
* **500** is retried the same way, since servers answer it to lock timeouts under load.
* **409** (a concurrent write won) is retried like a transient answer; **412** on a
  version-aware update means the resource changed since it was read: :meth:`revise` reads it
  again and re-applies the change, a bounded number of times.
* **Any other 4xx** is final: :class:`ServerRejected` carries the status and the server's
  OperationOutcome, nothing is retried. The outcome is kept out of the message, since a
  server's diagnostics may quote what it was sent (logs must carry no PHI).
* **401** is the authentication flow's to handle (one token refresh); a 401 that reaches this
  client means the server refuses our credentials: :class:`AuthError`.

Requests run at most ``concurrency`` at a time. Messages name the server and the resource type
and id, never query values (a patient identifier is PHI); searches send their parameters in
the body, not the URL (https://hl7.org/fhir/R4/http.html#search).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

import httpx
import orjson

from ..errors import AuthError, OptionsError, ServerRejected, ServerUnavailable
from ..metrics import Metrics
from .auth import auth_for
from .config import ServerConfig

__all__ = ["FhirClient", "RetryPolicy", "client_for", "retry_after_seconds"]

FHIR_JSON: Final = "application/fhir+json"
TRANSIENT: Final = frozenset({409, 429, 500, 502, 503, 504})
Resource = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to keep trying one request before the job goes back to the outbox."""

    max_attempts: int = 5
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    #: a server asking for a longer pause than this is treated as unavailable for now
    max_retry_after_s: float = 300.0
    #: how often :meth:`FhirClient.revise` re-reads after a 412
    max_revisions: int = 3

    def backoff(self, attempt: int, draw: Callable[[], float]) -> float:
        """Full jitter (uniform up to the exponential bound): concurrent clients that failed
        together do not come back together."""
        bound: float = min(self.backoff_cap_s, self.backoff_base_s * 2.0**attempt)
        return draw() * bound


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delay-seconds or an HTTP date; None if absent
    or unreadable (then the backoff applies)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class FhirClient:
    """One server's FHIR REST API, JSON only."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        timeout: httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        draw: Callable[[], float] = random.random,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        name: str = "default",
        metrics: Metrics | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name, self._metrics = name, metrics or Metrics()
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            auth=auth,
            timeout=timeout or httpx.Timeout(60.0, connect=10.0),
            transport=transport,
            headers={"Accept": FHIR_JSON},
        )
        self._retry = retry or RetryPolicy()
        self._slots = asyncio.Semaphore(concurrency)
        self._sleep, self._draw, self._now = sleep, draw, now

    async def __aenter__(self) -> FhirClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- interactions ---------------------------------------------------------------------

    async def capabilities(self) -> Resource:
        return await self._json("GET", "metadata")

    async def interactions(self) -> frozenset[str]:
        """The system-level interactions the CapabilityStatement declares (transaction,
        batch, ...)."""
        statement = await self.capabilities()
        return frozenset(
            i["code"] for rest in statement.get("rest", []) for i in rest.get("interaction", [])
        )

    async def bundle(self, kind: str, entries: Sequence[bytes]) -> Resource:
        """POST a ``kind`` (transaction or batch) Bundle of entries already serialised (a
        large report is serialised once, not once per attempt); its response Bundle."""
        body = b'{"resourceType":"Bundle","type":%b,"entry":[%b]}' % (
            orjson.dumps(kind),
            b",".join(entries),
        )
        started = time.perf_counter()
        response = await self.send("POST", "", content=body, what=f"{kind} Bundle")
        elapsed = time.perf_counter() - started
        self._metrics.observe("fhir_genomics_send_seconds", elapsed, server=self.name)
        self._metrics.count("fhir_genomics_sent_resources_total", len(entries), server=self.name)
        return _body(response)

    async def read(self, resource_type: str, resource_id: str) -> tuple[Resource, str | None]:
        """The resource and its ETag (for a version-aware update)."""
        response = await self.send("GET", f"{resource_type}/{resource_id}")
        return _body(response), response.headers.get("ETag")

    async def search(self, resource_type: str, params: Mapping[str, str]) -> list[Resource]:
        """Every match, following the Bundle's ``next`` links; included resources are left out.
        The parameters go in a POST body (``_search``, which R4 servers must support), never in
        the URL: a patient's identifier in a URL ends up in access logs along the way."""
        page = _body(
            await self.send(
                "POST",
                f"{resource_type}/_search",
                content=urlencode(dict(params)).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                what=f"{resource_type} search",
            )
        )
        found: list[Resource] = []
        while True:
            found += [e["resource"] for e in page.get("entry", []) if _is_match(e)]
            link = next((x["url"] for x in page.get("link", []) if x["relation"] == "next"), None)
            if link is None:
                return found
            page = await self._json("GET", link, what=f"{resource_type} search page")

    async def revise(
        self, resource_type: str, resource_id: str, change: Callable[[Resource], Resource | None]
    ) -> Resource | None:
        """Read, change, and write back with ``If-Match``; on 412 (someone wrote in between)
        read and change again. ``change`` returns None when nothing needs writing."""
        for _ in range(self._retry.max_revisions):
            current, etag = await self.read(resource_type, resource_id)
            revised = change(current)
            if revised is None:
                return None
            headers = {"If-Match": etag} if etag else {}
            path = f"{resource_type}/{resource_id}"
            response = await self.send("PUT", path, body=revised, headers=headers, conflict=True)
            if response.status_code != 412:
                return _body(response)
        raise ServerRejected(
            f"{resource_type}/{resource_id} kept changing while being revised "
            f"({self._retry.max_revisions} attempts)",
            status=412,
            source=self.base_url,
        )

    # -- the one place statuses are handled ----------------------------------------------

    async def _json(
        self,
        method: str,
        path: str,
        *,
        body: Resource | None = None,
        params: dict[str, str] | None = None,
        what: str | None = None,
    ) -> Resource:
        return _body(await self.send(method, path, body=body, params=params, what=what))

    async def send(
        self,
        method: str,
        path: str,
        *,
        body: Resource | None = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        what: str | None = None,
        conflict: bool = False,
    ) -> httpx.Response:
        """The response once the server answers 2xx (or 412 when ``conflict``: the caller
        re-reads); transient failures are retried, final ones raised. The body is ``body``
        as JSON, or ``content`` as it is."""
        what = what or f"{method} {path.partition('?')[0] or 'base'}"
        if body is not None:
            content = orjson.dumps(body)
        sent = {**({"Content-Type": FHIR_JSON} if content else {}), **(headers or {})}
        for attempt in range(self._retry.max_attempts):
            try:
                async with self._slots:
                    response = await self._http.request(
                        method, path, content=content, params=params, headers=sent
                    )
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}"
                pause = self._retry.backoff(attempt, self._draw)
            else:
                if response.is_success or (conflict and response.status_code == 412):
                    return response
                self._raise_final(response, what)
                failure = f"HTTP {response.status_code}"
                pause = self._pause(response, attempt)
            if attempt + 1 < self._retry.max_attempts:
                self._metrics.count("fhir_genomics_retries_total", server=self.name)
                await self._sleep(pause)
        raise ServerUnavailable(
            f"{what}: still {failure} after {self._retry.max_attempts} attempts",
            source=self.base_url,
        )

    def _pause(self, response: httpx.Response, attempt: int) -> float:
        asked = retry_after_seconds(response.headers.get("Retry-After"), self._now())
        if asked is None:
            return self._retry.backoff(attempt, self._draw)
        if asked > self._retry.max_retry_after_s:
            raise ServerUnavailable(
                f"the server asks to wait {asked:.0f} s (HTTP {response.status_code})",
                source=self.base_url,
                retry_after=asked,
            )
        return asked

    def _raise_final(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status in TRANSIENT:
            return
        if status == 401:
            refused = f"{what}: the server refuses our credentials (401)"
            raise AuthError(refused, source=self.base_url)
        raise ServerRejected(
            f"{what}: HTTP {status} (the server's OperationOutcome is kept with the error)",
            status=status,
            outcome=_outcome(response),
            source=self.base_url,
        )


def _is_match(entry: Mapping[str, Any]) -> bool:
    return entry.get("search", {}).get("mode", "match") == "match" and "resource" in entry


def _body(response: httpx.Response) -> Resource:
    if not response.content:
        return {}
    try:
        parsed = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise ServerRejected(
            f"the server answered {response.status_code} with a body that is not JSON",
            status=response.status_code,
            source=str(response.request.url.copy_with(query=None)),
        ) from exc
    if not isinstance(parsed, dict):
        raise ServerRejected(
            "the server answered JSON that is not a resource",
            status=response.status_code,
            source=str(response.request.url.copy_with(query=None)),
        )
    return parsed


def _outcome(response: httpx.Response) -> Resource | None:
    try:
        parsed = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, dict) and parsed.get("resourceType") == "OperationOutcome":
        return parsed
    return None


def client_for(
    config: ServerConfig,
    *,
    metrics: Metrics | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FhirClient:
    """The client a server's configuration describes: its auth, timeouts, retries, limits."""
    if config.hl7v2 is not None:
        raise OptionsError(
            f"server {config.name!r} takes HL7 v2 over MLLP: it has no FHIR API for this",
            field=config.name,
        )
    retry = RetryPolicy(config.max_attempts, config.backoff_base_s, config.backoff_cap_s)
    return FhirClient(
        config.base_url,
        auth=auth_for(config),
        timeout=config.timeouts.httpx(),
        retry=retry,
        concurrency=config.concurrency,
        transport=transport,
        name=config.name,
        metrics=metrics,
    )
