"""The FHIR client's status handling, branch by branch (respx: error paths only; the real
servers are in test_sync_push.py), and the chunk planner's ordering guarantees."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.errors import AuthError, OptionsError, ServerRejected, ServerUnavailable
from adapter.sync.client import FhirClient, RetryPolicy, retry_after_seconds
from adapter.sync.push import Progress, plan_chunks, push_bundle

BASE = "https://fhir.hospital.test/r4"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "invalid", "diagnostics": "bad code"}],
}
BUNDLE = {"resourceType": "Bundle", "type": "transaction", "entry": []}
ANSWER = {"resourceType": "Bundle", "type": "transaction-response", "entry": []}


class Clock:
    """Records the pauses the client asks for instead of sleeping."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


def _run(call: Callable[[FhirClient], Any], clock: Clock, **retry: Any) -> Any:
    async def go() -> Any:
        async with FhirClient(
            BASE,
            retry=RetryPolicy(**retry),
            sleep=clock.sleep,
            draw=lambda: 1.0,  # the jitter's upper bound: the backoff is exact
            now=lambda: NOW,
        ) as client:
            return await call(client)

    return asyncio.run(go())


def _transaction(client: FhirClient) -> Any:
    return client.bundle("transaction", [])


@respx.mock
def test_429_waits_the_seconds_the_server_asks_then_succeeds() -> None:
    route = respx.post(f"{BASE}/").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200, json=ANSWER),
        ]
    )
    clock = Clock()
    assert _run(_transaction, clock) == ANSWER
    assert (route.call_count, clock.pauses) == (2, [7.0])


@respx.mock
def test_503_with_an_http_date_waits_until_that_date() -> None:
    later = "Sun, 22 Nov 2026 12:01:30 GMT"
    respx.post(f"{BASE}/").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": later}),
            httpx.Response(200, json=ANSWER),
        ]
    )
    clock = Clock()
    _run(_transaction, clock)
    assert clock.pauses == [90.0]


@respx.mock
def test_without_retry_after_the_backoff_doubles_up_to_its_cap_then_gives_up() -> None:
    route = respx.post(f"{BASE}/").mock(return_value=httpx.Response(503))
    clock = Clock()
    with pytest.raises(ServerUnavailable, match="still HTTP 503 after 5 attempts"):
        _run(_transaction, clock, backoff_base_s=1.0, backoff_cap_s=4.0)
    assert route.call_count == 5
    assert clock.pauses == [1.0, 2.0, 4.0, 4.0]


@respx.mock
def test_a_pause_longer_than_allowed_is_unavailable_at_once() -> None:
    route = respx.post(f"{BASE}/").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "3600"})
    )
    with pytest.raises(ServerUnavailable, match="wait 3600 s"):
        _run(_transaction, Clock())
    assert route.call_count == 1


@respx.mock
def test_a_dropped_connection_is_retried() -> None:
    route = respx.post(f"{BASE}/").mock(
        side_effect=[httpx.RemoteProtocolError("peer closed"), httpx.Response(200, json=ANSWER)]
    )
    assert _run(_transaction, Clock()) == ANSWER
    assert route.call_count == 2


@respx.mock
def test_a_conflict_is_retried() -> None:
    route = respx.post(f"{BASE}/").mock(
        side_effect=[httpx.Response(409, json=OUTCOME), httpx.Response(200, json=ANSWER)]
    )
    assert _run(_transaction, Clock()) == ANSWER
    assert route.call_count == 2


@pytest.mark.parametrize("status", [400, 403, 404, 412, 422])
@respx.mock
def test_other_4xx_is_final_and_keeps_the_outcome_out_of_the_message(status: int) -> None:
    route = respx.post(f"{BASE}/").mock(return_value=httpx.Response(status, json=OUTCOME))
    with pytest.raises(ServerRejected) as caught:
        _run(_transaction, Clock())
    assert route.call_count == 1
    assert (caught.value.status, caught.value.outcome) == (status, OUTCOME)
    assert "bad code" not in str(caught.value)
    assert caught.value.source == BASE


@respx.mock
def test_401_reaching_the_client_is_an_auth_error() -> None:
    respx.post(f"{BASE}/").mock(return_value=httpx.Response(401))
    with pytest.raises(AuthError, match="refuses our credentials"):
        _run(_transaction, Clock())


@respx.mock
def test_an_answer_that_is_not_json_is_rejected() -> None:
    respx.post(f"{BASE}/").mock(return_value=httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(ServerRejected, match="not JSON"):
        _run(_transaction, Clock())


@respx.mock
def test_revise_reads_again_after_412_and_writes_with_the_new_version() -> None:
    reads = respx.get(f"{BASE}/Observation/o1").mock(
        side_effect=[
            httpx.Response(
                200, json={"resourceType": "Observation", "id": "o1"}, headers={"ETag": 'W/"1"'}
            ),
            httpx.Response(
                200, json={"resourceType": "Observation", "id": "o1"}, headers={"ETag": 'W/"2"'}
            ),
        ]
    )
    writes = respx.put(f"{BASE}/Observation/o1").mock(
        side_effect=[httpx.Response(412, json=OUTCOME), httpx.Response(200, json={"id": "o1"})]
    )

    def retract(resource: dict[str, Any]) -> dict[str, Any]:
        return {**resource, "status": "entered-in-error"}

    result = _run(lambda c: c.revise("Observation", "o1", retract), Clock())
    assert result == {"id": "o1"}
    assert reads.call_count == 2
    assert [w.request.headers["If-Match"] for w in writes.calls] == ['W/"1"', 'W/"2"']


@respx.mock
def test_search_posts_its_parameters_follows_next_links_and_leaves_out_included() -> None:
    first = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "a"}, "search": {"mode": "match"}},
            {
                "resource": {"resourceType": "Organization", "id": "o"},
                "search": {"mode": "include"},
            },
        ],
        "link": [{"relation": "next", "url": f"{BASE}/?page=2"}],
    }
    second = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "Patient", "id": "b"}}],
    }
    searched = respx.post(f"{BASE}/Patient/_search").mock(
        return_value=httpx.Response(200, json=first)
    )
    respx.get(f"{BASE}/", params={"page": "2"}).mock(return_value=httpx.Response(200, json=second))
    found = _run(lambda c: c.search("Patient", {"identifier": "x|MRN-1"}), Clock())
    assert [p["id"] for p in found] == ["a", "b"]
    request = searched.calls[0].request
    assert request.content == b"identifier=x%7CMRN-1"  # in the body, not the URL
    assert "MRN-1" not in str(request.url)


def test_retry_after_reads_seconds_dates_and_ignores_nonsense() -> None:
    assert retry_after_seconds("120", NOW) == 120.0
    assert retry_after_seconds("Sun, 22 Nov 2026 11:59:00 GMT", NOW) == 0.0  # in the past
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds(None, NOW) is None


# -- chunk planning ---------------------------------------------------------------------------


def _entry(name: str, *targets: str) -> dict[str, Any]:
    resource = {"resourceType": "Observation", "derivedFrom": [{"reference": t} for t in targets]}
    return {"fullUrl": name, "resource": resource}


def _chunk_of(chunks: list[list[dict[str, Any]]]) -> dict[str, int]:
    return {e["fullUrl"]: i for i, chunk in enumerate(chunks) for e in chunk}


graphs = st.integers(min_value=1, max_value=40).flatmap(
    lambda n: st.lists(
        st.lists(st.integers(min_value=0, max_value=n - 1), max_size=3), min_size=n, max_size=n
    )
)


@settings(max_examples=200, deadline=None)
@given(graph=graphs, limit=st.integers(min_value=1, max_value=12))
def test_acyclic_targets_come_in_the_same_or_an_earlier_chunk(
    graph: list[list[int]], limit: int
) -> None:
    # edges only to lower indices: acyclic, so every limit can be met
    entries = [
        _entry(f"urn:uuid:{i}", *(f"urn:uuid:{t}" for t in ts if t < i))
        for i, ts in enumerate(graph)
    ]
    for levels in (False, True):
        chunks = plan_chunks(entries, limit, levels=levels)
        where = _chunk_of(chunks)
        assert sorted(where) == sorted(e["fullUrl"] for e in entries)
        assert all(len(c) <= limit for c in chunks)
        for entry in entries:
            for ref in entry["resource"]["derivedFrom"]:
                assert where[ref["reference"]] <= where[entry["fullUrl"]]
                if levels:  # a batch resolves nothing between its entries
                    assert where[ref["reference"]] < where[entry["fullUrl"]]


def test_a_cycle_is_never_split_and_a_batch_refuses_it() -> None:
    entries = [_entry("a", "b"), _entry("b", "a"), _entry("c", "a"), _entry("d")]
    chunks = plan_chunks(entries, 2, levels=False)
    assert [[e["fullUrl"] for e in c] for c in chunks] == [["a", "b"], ["c", "d"]]
    with pytest.raises(OptionsError, match="cycle"):
        plan_chunks(entries, 1, levels=False)
    with pytest.raises(OptionsError, match="transactions"):
        plan_chunks(entries, 10, levels=True)


def test_a_long_chain_does_not_exhaust_the_stack() -> None:
    entries = [_entry(f"n{i}", f"n{i - 1}") if i else _entry("n0") for i in range(5000)]
    chunks = plan_chunks(entries, 1000, levels=False)
    assert [len(c) for c in chunks] == [1000] * 5
    assert chunks[0][0]["fullUrl"] == "n0"


@respx.mock
def test_a_refused_chunk_stops_the_push_and_only_finished_chunks_are_recorded() -> None:
    entries = [
        {
            "fullUrl": f"urn:uuid:{i}",
            "resource": {"resourceType": "Observation"},
            "request": {"method": "PUT", "url": f"Observation?identifier=x|{i}"},
        }
        for i in range(6)
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        sent = orjson.loads(request.content)["entry"]
        if sent[0]["fullUrl"] == "urn:uuid:2":
            return httpx.Response(422, json=OUTCOME)
        replies = [
            {"response": {"status": "201 Created", "location": f"Observation/{e['fullUrl'][9:]}"}}
            for e in sent
        ]
        return httpx.Response(200, json={"resourceType": "Bundle", "entry": replies})

    respx.post(f"{BASE}/").mock(side_effect=answer)
    recorded: list[list[int]] = []

    async def record(progress: Progress) -> None:
        recorded.append(sorted(progress.done))

    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    with pytest.raises(ServerRejected) as refused:
        _run(
            lambda c: push_bundle(c, bundle, max_entries=1, on_chunk=record, concurrency=2), Clock()
        )
    assert refused.value.status == 422
    assert all(2 not in done for done in recorded)
    assert recorded[:2] == [[0], [0, 1]] or recorded[:2] == [[1], [0, 1]]
