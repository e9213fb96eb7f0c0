"""Registering on a FHIR server the Subscriptions the adapter reacts to.

Policy decided here:

* **What.** Two R4 rest-hook Subscriptions (https://hl7.org/fhir/R4/subscription.html): on
  ``DocumentReference`` (new genomic data files) and on ``Consent`` (consents given, changed,
  withdrawn), each with ``channel.payload`` ``application/fhir+json`` so the server PUTs the
  changed resource. Topic-based ones (Subscriptions R5 Backport STU 1.1.0,
  https://hl7.org/fhir/uv/subscriptions-backport/, profile ``backport-subscription``,
  ``full-resource`` payload, a heartbeat, the R4 criteria below as its filters) for each
  ``--topic`` given, else for each topic the
  server's CapabilityStatement advertises when it declares Backport support (it instantiates
  ``backport-subscription-server-r4`` or lists the ``backport-subscription`` profile for
  Subscription). A topic's lost events are recovered by ``$events`` when the CapabilityStatement
  lists that operation, else by searching DocumentReferences and Consents changed since.
* **Where.** Each Subscription notifies its own URL, ``<endpoint>/<key>``: the key is derived
  from the server's base URL and the criteria (or topic), opaque, stable across runs. The
  notifications carry ``Authorization: Bearer <token>`` (``channel.header``), a token of the
  adapter's API with the ``genomics/notify`` scope. The server stores that header in the
  Subscription, readable by whoever may read Subscriptions there: give it a token for that
  scope only.
* **Idempotent.** A run first searches the server's Subscriptions by endpoint
  (``Subscription?url=``) and reuses one with the same criteria, updating it (version-aware)
  only when its header or payload differ or the server turned it ``off`` or ``error``; a new one
  is created otherwise. Either way it is recorded in the outbox database with the request its
  reports are sent under (:class:`~adapter.sync.outbox.Registration`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..errors import ServerRejected
from .client import FhirClient
from .config import ServerConfig
from .outbox import Outbox, Registration

__all__ = ["R4_CRITERIA", "Backport", "backport_support", "subscribe"]

Resource = dict[str, Any]
FHIR_JSON: Final = "application/fhir+json"
#: what the adapter reacts to, as R4 criteria (servers such as HAPI require a query part;
#: every Consent status is listed, so that a withdrawal matches too)
R4_CRITERIA: Final = (
    "DocumentReference?status=current",
    "Consent?status=draft,proposed,active,rejected,inactive,entered-in-error",
)
BACKPORT: Final = "http://hl7.org/fhir/uv/subscriptions-backport"
_PROFILE: Final = f"{BACKPORT}/StructureDefinition/backport-subscription"
_SERVER: Final = f"{BACKPORT}/CapabilityStatement/backport-subscription-server-r4"
_TOPIC_CANONICAL: Final = (
    f"{BACKPORT}/StructureDefinition/capabilitystatement-subscriptiontopic-canonical"
)
_PAYLOAD_CONTENT: Final = f"{BACKPORT}/StructureDefinition/backport-payload-content"
_HEARTBEAT: Final = f"{BACKPORT}/StructureDefinition/backport-heartbeat-period"
_FILTER: Final = f"{BACKPORT}/StructureDefinition/backport-filter-criteria"
HEARTBEAT_S: Final = 300
#: a Subscription in these states is asked to start again
_STOPPED: Final = frozenset({"off", "error"})


@dataclass(frozen=True, slots=True)
class Backport:
    """What a CapabilityStatement says of topic-based subscriptions."""

    supported: bool
    topics: tuple[str, ...] = ()
    events: bool = False  # Subscription/$events


def backport_support(statement: Mapping[str, Any]) -> Backport:
    """Backport support as the server's CapabilityStatement declares it."""
    subscription: Mapping[str, Any] = next(
        (
            r
            for rest in statement.get("rest", [])
            for r in rest.get("resource", [])
            if r.get("type") == "Subscription"
        ),
        {},
    )
    supported = _SERVER in statement.get("instantiates", []) or _PROFILE in subscription.get(
        "supportedProfile", []
    )
    topics = tuple(
        str(e["valueCanonical"])
        for e in subscription.get("extension", [])
        if e.get("url") == _TOPIC_CANONICAL and e.get("valueCanonical")
    )
    events = any(
        o.get("name") in {"events", "$events"}
        or str(o.get("definition", "")).endswith("backport-subscription-events")
        for o in subscription.get("operation", [])
    )
    return Backport(supported, topics, events)


async def subscribe(
    client: FhirClient,
    config: ServerConfig,
    outbox: Outbox,
    *,
    endpoint: str,
    token: str,
    request: dict[str, Any],
    topics: Sequence[str] = (),
) -> list[Registration]:
    """The adapter's Subscriptions on the server, found or created, and recorded."""
    backport = backport_support(await client.capabilities())
    chosen = tuple(topics) or (backport.topics if backport.supported else ())
    wanted: list[tuple[str, str | None]] = [(c, None) for c in R4_CRITERIA]
    wanted += [(t, t) for t in chosen]
    registered = []
    for criteria, topic in wanted:
        key = hashlib.sha256(f"{config.base_url}|{criteria}".encode()).hexdigest()[:24]
        url = f"{endpoint.rstrip('/')}/{key}"
        body = _subscription(criteria, topic, url, token)
        subscription_id = await _found_or_created(client, url, body)
        registration = Registration(
            key=key,
            server=config.name,
            base_url=config.base_url,
            subscription_id=subscription_id,
            criteria=criteria,
            endpoint=url,
            request=request,
            searches=(criteria,) if topic is None else R4_CRITERIA,
            topic=topic,
            supports_events=topic is not None and backport.events,
        )
        registered.append(await asyncio.to_thread(outbox.register, registration))
    return registered


def _subscription(criteria: str, topic: str | None, url: str, token: str) -> Resource:
    channel: Resource = {
        "type": "rest-hook",
        "endpoint": url,
        "payload": FHIR_JSON,
        "header": [f"Authorization: Bearer {token}"],
    }
    subscription: Resource = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": f"fhir-genomics adapter: {criteria} changes",
        "criteria": criteria,
        "channel": channel,
    }
    if topic is not None:
        subscription["meta"] = {"profile": [_PROFILE]}
        # the adapter's R4 criteria as the topic's filters (HAPI requires at least one)
        subscription["_criteria"] = {
            "extension": [{"url": _FILTER, "valueString": c} for c in R4_CRITERIA]
        }
        channel["_payload"] = {
            "extension": [{"url": _PAYLOAD_CONTENT, "valueCode": "full-resource"}]
        }
        channel["extension"] = [{"url": _HEARTBEAT, "valueUnsignedInt": HEARTBEAT_S}]
    return subscription


async def _found_or_created(client: FhirClient, url: str, wanted: Resource) -> str:
    """The id of the server's Subscription to ``url`` with the wanted criteria, brought up
    to date, or of a new one."""
    for found in await client.search("Subscription", {"url": url}):
        if found.get("criteria") == wanted["criteria"] and found.get("id"):
            subscription_id = str(found["id"])
            await client.revise(
                "Subscription", subscription_id, lambda current: _updated(current, wanted)
            )
            return subscription_id
    response = await client.send("POST", "Subscription", body=wanted, what="POST Subscription")
    created = response.json()
    if not isinstance(created, dict) or not created.get("id"):
        raise ServerRejected(
            "the server created the Subscription but did not return it with its id",
            status=response.status_code,
            source=client.base_url,
        )
    return str(created["id"])


def _updated(current: Resource, wanted: Resource) -> Resource | None:
    """``current`` with the wanted channel and status, or None when it has them."""
    channel = current.get("channel", {})
    same = all(channel.get(k) == v for k, v in wanted["channel"].items())
    if same and current.get("status") not in _STOPPED:
        return None
    status = "requested" if current.get("status") in _STOPPED else current.get("status")
    return {**current, "status": status, "channel": {**channel, **wanted["channel"]}}
