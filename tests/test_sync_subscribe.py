"""``fhir-genomics subscribe``: the Subscriptions registered on the real HAPI server and in
the outbox database, found and reused by a second run (a stopped one started again), the
token sent as the channel's header; Backport support read from a CapabilityStatement; bad
options refused before any server is asked."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fhir_servers import Hapi, r4_topic

from adapter.cli_sync import add_subscribe
from adapter.errors import OptionsError
from adapter.sync.client import FhirClient
from adapter.sync.config import NoAuth, ServerConfig
from adapter.sync.outbox import open_outbox
from adapter.sync.subscribe import R4_CRITERIA, backport_support, subscribe
from adapter.sync.worker import send_request

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport"
TOKEN = "header.payload.signature"  # noqa: S105 - a stand-in the server only stores


def _run(folder: Path, base: str, *extra: str, endpoint: str = "https://a.test/v1/n") -> int:
    parser = argparse.ArgumentParser()
    add_subscribe(parser.add_subparsers())
    servers = folder / "servers.yaml"
    servers.write_text(yaml.safe_dump({"servers": {"hapi": {"base_url": base}}}))
    token = folder / "notify.token"
    if not token.exists():
        token.write_text(TOKEN + "\n")
    args = parser.parse_args(
        [
            "subscribe",
            "--endpoint", endpoint,
            "--notify-token-file", str(token),
            "--purpose", "TREAT",
            "--outbox", f"sqlite:///{folder}/outbox.db",
            "--servers", str(servers),
            "--server", "hapi",
            *extra,
        ]
    )  # fmt: skip
    return int(args.run(args))


@pytest.mark.hapi
def test_a_second_run_reuses_the_subscriptions_and_restarts_a_stopped_one(
    hapi: Hapi, fhir: httpx.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = f"https://adapter-{tmp_path.name}.test/v1/notifications"
    assert _run(tmp_path, hapi.base, endpoint=endpoint) == 0
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    try:
        assert [r["criteria"] for r in first] == list(R4_CRITERIA)
        assert TOKEN not in json.dumps(first)
        stored = fhir.get(f"/{first[0]['subscription']}").json()
        assert stored["channel"]["header"] == [f"Authorization: Bearer {TOKEN}"]
        assert stored["channel"]["endpoint"] == f"{endpoint}/{first[0]['key']}"
        assert stored["channel"]["payload"] == "application/fhir+json"
        stopped = {**fhir.get(f"/{first[1]['subscription']}").json(), "status": "off"}
        assert fhir.put(f"/{first[1]['subscription']}", json=stopped).status_code == 200
        assert _run(tmp_path, hapi.base, endpoint=endpoint) == 0
        second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert second == first
        restarted = fhir.get(f"/{first[1]['subscription']}").json()
        assert restarted["status"] in {"requested", "active"}
        for row in first:
            found = fhir.get("/Subscription", params={"url": row["endpoint"]}).json()
            assert found.get("total", len(found.get("entry", []))) == 1
        with open_outbox(f"sqlite:///{tmp_path}/outbox.db") as box:
            registrations = box.registrations()
        assert [(r.key, r.subscription_id) for r in registrations] == [
            (r["key"], r["subscription"].split("/")[1]) for r in first
        ]
        assert registrations[0].request["purpose"] == "TREAT"
        assert registrations[0].subscribed.searches == (R4_CRITERIA[0],)
    finally:
        for row in first:
            fhir.delete(f"/{row['subscription']}")


@pytest.mark.hapi
def test_a_topic_subscription_is_registered_as_the_backport_profile(
    hapi: Hapi, fhir: httpx.Client, tmp_path: Path
) -> None:
    topic = f"http://example.org/fhir/SubscriptionTopic/files-{tmp_path.name}"
    assert fhir.post("/Basic", json=r4_topic(topic, "DocumentReference")).status_code == 201
    config = ServerConfig("hapi", hapi.base, NoAuth())

    async def run() -> list[Any]:
        with open_outbox(f"sqlite:///{tmp_path}/outbox.db") as box:
            async with FhirClient(hapi.base) as client:
                return await subscribe(
                    client,
                    config,
                    box,
                    endpoint="https://adapter.test/v1/notifications",
                    token=TOKEN,
                    request=send_request(purpose="TREAT"),
                    topics=[topic],
                )

    registered = asyncio.run(run())
    try:
        assert [r.topic for r in registered] == [None, None, topic]
        created = fhir.get(f"/Subscription/{registered[2].subscription_id}").json()
        assert created["criteria"] == topic
        assert created["meta"]["profile"] == [
            f"{BACKPORT}/StructureDefinition/backport-subscription"
        ]
        payload = created["channel"]["_payload"]["extension"][0]
        assert payload["valueCode"] == "full-resource"
        assert registered[2].subscribed.topic == topic
    finally:
        for registration in registered:
            fhir.delete(f"/Subscription/{registration.subscription_id}")


def test_backport_support_is_read_from_the_capability_statement() -> None:
    statement: dict[str, Any] = {
        "resourceType": "CapabilityStatement",
        "instantiates": [f"{BACKPORT}/CapabilityStatement/backport-subscription-server-r4"],
        "rest": [
            {
                "resource": [
                    {
                        "type": "Subscription",
                        "extension": [
                            {
                                "url": f"{BACKPORT}/StructureDefinition/"
                                "capabilitystatement-subscriptiontopic-canonical",
                                "valueCanonical": "http://example.org/topics/files",
                            }
                        ],
                        "operation": [
                            {
                                "name": "$events",
                                "definition": f"{BACKPORT}/OperationDefinition/"
                                "backport-subscription-events",
                            }
                        ],
                    }
                ]
            }
        ],
    }
    found = backport_support(statement)
    assert (found.supported, found.topics, found.events) == (
        True,
        ("http://example.org/topics/files",),
        True,
    )
    plain = backport_support({"resourceType": "CapabilityStatement", "rest": []})
    assert (plain.supported, plain.topics, plain.events) == (False, (), False)


@pytest.mark.parametrize(
    ("extra", "endpoint", "token", "words"),
    [
        ((), "ftp://a.test/n", TOKEN, "http(s) URL"),
        ((), "https://a.test/n", "", "one bearer token"),
        ((), "https://a.test/n", "two tokens", "one bearer token"),
    ],
)
def test_bad_options_are_refused_before_any_server_is_asked(
    tmp_path: Path, extra: tuple[str, ...], endpoint: str, token: str, words: str
) -> None:
    (tmp_path / "notify.token").write_text(token)
    with pytest.raises(OptionsError, match=words.replace("(", r"\(").replace(")", r"\)")):
        _run(tmp_path, "http://127.0.0.1:9/fhir", *extra, endpoint=endpoint)
