"""Inbound FHIR Subscription notifications: what each one asks the adapter to do.

Pure logic, no web framework: the service hands a notification's body here with the
Subscription it was addressed to, and gets back a :class:`NotificationResult` naming the
triggers to run, the resources to read, the searches to run and the lost events to recover.

Two kinds of Subscription are received:

- **R4 rest-hook** (https://hl7.org/fhir/R4/subscription.html#2.46.7.1, and the channel type
  ``rest-hook`` of https://hl7.org/fhir/R4/valueset-subscription-channel-type.html): with a
  ``channel.payload`` the server PUTs the changed resource itself; without one it POSTs an
  empty body, a *ping* that only says "something matching the criteria changed", so the
  adapter searches the criteria with ``_lastUpdated=ge<since>``, ``since`` being the server's
  time of the last sync (the caller keeps it; a search that overlaps is harmless because
  every trigger is idempotent).
- **R4 Backport topic-based** (https://hl7.org/fhir/uv/subscriptions-backport/ STU 1.1.0,
  profiles ``backport-subscription-notification-r4`` and ``backport-subscription-status-r4``):
  a ``history`` Bundle whose first entry is the SubscriptionStatus as ``Parameters``
  (``subscription``, ``topic``, ``status``, ``type``, ``events-since-subscription-start``,
  ``notification-event`` with parts ``event-number``, ``timestamp``, ``focus``,
  ``additional-context``); the payload is ``empty`` (search), ``id-only`` (read each focus)
  or ``full-resource`` (the focus is in the Bundle).

Event numbers are tracked per Subscription in an :class:`EventLedger`:

- an event number seen before is a duplicate delivery and asks for nothing;
- a number beyond the next expected one, or a heartbeat/handshake/status whose
  ``events-since-subscription-start`` exceeds what was seen, reveals missing events; a late
  arrival fills its gap. The IG (errors.html, "Missing Event") advises waiting a little before
  recovering, as a missing event may still be on its way: the result names the gap and the
  recovery, and :func:`plan_recovery` recomputes it after the wait;
- recovery is ``Subscription/<id>/$events`` with ``eventsSinceNumber``/``eventsUntilNumber``
  when the server supports it (its answer, a ``query-event`` Bundle, is received like a
  notification and fills the ledger), else a search of the topic's filters with
  ``_lastUpdated`` since the last event seen before the gap (event timestamps grow with event
  numbers, so that bound loses nothing); after such a search the caller records the
  recovered numbers in the ledger.

Focus resources are classified into triggers (:func:`classify`):

- a DocumentReference holding a VCF -> :class:`ConvertFile`. The Genomics Reporting IG's
  ``genomic-data-file`` profile constrains only ``description`` and ``context.related``, not
  ``type``, ``category`` or the attachment, so a VCF is recognised by the attachment's
  ``contentType`` (``text/vcf``, ``text/x-vcf``), its URL or title ending ``.vcf``,
  ``.vcf.gz`` or ``.vcf.bgz``, or a coding ``vcf`` of the IG's own
  ``genomic-study-data-format-cs`` in ``type``, ``category`` or ``content.format``.
  ``application/gzip`` alone is not enough: a gzip may hold any format (a BAM is one);
- a Consent -> :class:`ReevaluatePatient`, ``revoked`` when its status is ``inactive``,
  ``rejected`` or ``entered-in-error`` or its base provision denies;
- anything else -> :class:`Ignored` with the reason.

A malformed notification raises :class:`~adapter.errors.InputError` naming the element
(e.g. ``Parameters.parameter[type]``). Messages name resources by type and id only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl

from ..errors import InputError, OptionsError
from ..fhir.codes import instant
from ..policy.consent import ConsentStatus, ProvisionType

__all__ = [
    "BackportNotification",
    "ConvertFile",
    "EventLedger",
    "EventsRequest",
    "FollowUpSearch",
    "Ignored",
    "InMemoryEventLedger",
    "NotificationEvent",
    "NotificationKind",
    "NotificationResult",
    "Recovery",
    "ReevaluatePatient",
    "Subscribed",
    "SubscriptionStatus",
    "Trigger",
    "Watermark",
    "classify",
    "parse_backport",
    "plan_recovery",
    "receive_backport",
    "receive_notification",
    "receive_rest_hook",
]

#: http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/genomic-study-data-format-cs, code vcf
DATA_FORMAT_SYSTEM = (
    "http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/genomic-study-data-format-cs"
)
VCF_CONTENT_TYPES = frozenset({"text/vcf", "text/x-vcf"})
VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz")
#: Consent.status codes under which the consent no longer permits anything
WITHDRAWN = frozenset(
    {ConsentStatus.INACTIVE, ConsentStatus.REJECTED, ConsentStatus.ENTERED_IN_ERROR}
)
STATUS = "Parameters.parameter"
RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]+")


class NotificationKind(StrEnum):
    """The notification types of http://hl7.org/fhir/ValueSet/subscription-notification-type,
    plus the R4 rest-hook's own two shapes."""

    HANDSHAKE = "handshake"
    HEARTBEAT = "heartbeat"
    EVENT_NOTIFICATION = "event-notification"
    QUERY_STATUS = "query-status"
    QUERY_EVENT = "query-event"
    REST_HOOK_PAYLOAD = "rest-hook-payload"
    REST_HOOK_PING = "rest-hook-ping"


#: kinds that carry events to act on
CARRIES_EVENTS = frozenset({NotificationKind.EVENT_NOTIFICATION, NotificationKind.QUERY_EVENT})


@dataclass(frozen=True, slots=True)
class Subscribed:
    """A Subscription the adapter registered, as the receiver must know it.

    ``searches`` are search criteria (``Type?query``, no base) that find what the
    Subscription notifies of: an R4 Subscription's own ``criteria``, or a topic's resource
    types with the Subscription's filters. ``topic`` is None for an R4 criteria Subscription.
    """

    server: str  # the FHIR base URL
    id: str
    searches: tuple[str, ...]
    topic: str | None = None
    supports_events: bool = False  # the server implements Subscription/$events

    def __post_init__(self) -> None:
        for criteria in self.searches:
            if not RESOURCE_TYPE.fullmatch(criteria.partition("?")[0]):
                raise OptionsError(
                    f"search criteria {criteria!r} do not start with a resource type, "
                    "e.g. DocumentReference?status=current",
                    source=f"Subscription/{self.id}",
                    field="Subscription.criteria",
                )

    @property
    def key(self) -> str:
        """The ledger's key: ids are unique per server only."""
        return f"{self.server.rstrip('/')}/Subscription/{self.id}"


@dataclass(frozen=True, slots=True)
class Watermark:
    """The highest event number up to which every event was seen, and the latest timestamp
    among those events (None when none had one)."""

    number: int = 0
    timestamp: datetime | None = None


class EventLedger(Protocol):
    """Event numbers seen per Subscription (keyed by :attr:`Subscribed.key`)."""

    def watermark(self, subscription: str) -> Watermark:
        """The highest contiguous event number seen (0 before the first event)."""
        ...

    def record(self, subscription: str, number: int, timestamp: datetime | None) -> bool:
        """Note an event as seen; False when it was seen already (a duplicate delivery)."""
        ...

    def missing(self, subscription: str, through: int) -> tuple[int, ...]:
        """Event numbers up to ``through`` never seen, in order."""
        ...


@dataclass
class _Seen:
    mark: Watermark = field(default_factory=Watermark)
    above: dict[int, datetime | None] = field(default_factory=dict)


class InMemoryEventLedger:
    """An :class:`EventLedger` in a dict, for tests and single-process use; numbers at or
    below the watermark are folded into it, so memory grows only with the gaps."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}

    def watermark(self, subscription: str) -> Watermark:
        return self._seen.get(subscription, _Seen()).mark

    def record(self, subscription: str, number: int, timestamp: datetime | None) -> bool:
        seen = self._seen.setdefault(subscription, _Seen())
        if number <= seen.mark.number or number in seen.above:
            return False
        seen.above[number] = timestamp
        while seen.mark.number + 1 in seen.above:
            following = seen.mark.number + 1
            stamp = seen.above.pop(following)
            seen.mark = Watermark(following, stamp or seen.mark.timestamp)
        return True

    def missing(self, subscription: str, through: int) -> tuple[int, ...]:
        seen = self._seen.get(subscription, _Seen())
        return tuple(n for n in range(seen.mark.number + 1, through + 1) if n not in seen.above)


@dataclass(frozen=True, slots=True)
class NotificationEvent:
    """One ``notification-event`` of a SubscriptionStatus."""

    number: int
    timestamp: datetime | None = None
    focus: str | None = None  # the reference as sent, absolute or relative
    additional_context: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SubscriptionStatus:
    """The Backport SubscriptionStatus (``backport-subscription-status-r4``) of a notification."""

    subscription: str  # the reference as sent, absolute or relative
    subscription_id: str  # its logical id
    status: str
    kind: NotificationKind
    topic: str | None = None
    events_since_start: int | None = None
    events: tuple[NotificationEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class BackportNotification:
    """A parsed Backport notification Bundle: its status and the resources it carried,
    by ``Type/id``."""

    status: SubscriptionStatus
    resources: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class ConvertFile:
    """Fetch this VCF, convert it, apply the policy and push the report back."""

    document: str  # DocumentReference/<id>
    attachment: Mapping[str, Any]  # url (absolute, or relative to the server) or inline data
    patient: str | None


@dataclass(frozen=True, slots=True)
class ReevaluatePatient:
    """A Consent changed: decide again for this patient's pending and sent results."""

    consent: str  # Consent/<id>
    patient: str  # the reference as written in Consent.patient
    revoked: bool


@dataclass(frozen=True, slots=True)
class Ignored:
    """A notified resource no trigger applies to."""

    resource: str
    reason: str


Trigger = ConvertFile | ReevaluatePatient | Ignored


@dataclass(frozen=True, slots=True)
class FollowUpSearch:
    """A search the caller must run on the server, then :func:`classify` each match."""

    resource_type: str
    params: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class EventsRequest:
    """``GET [base]/Subscription/<id>/$events`` for lost events; receive the answer with
    :func:`receive_backport`."""

    subscription_id: str
    since_number: int
    until_number: int

    @property
    def path(self) -> str:
        """The operation's path relative to the server base."""
        return f"Subscription/{self.subscription_id}/$events"

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        """The operation's parameters (strings, as the OperationDefinition types them)."""
        return (
            ("eventsSinceNumber", str(self.since_number)),
            ("eventsUntilNumber", str(self.until_number)),
        )


Recovery = EventsRequest | tuple[FollowUpSearch, ...]


@dataclass(frozen=True, slots=True)
class NotificationResult:
    """Everything one notification asks of the caller; empty tuples when nothing."""

    kind: NotificationKind
    subscription: str  # Subscribed.key
    triggers: tuple[Trigger, ...] = ()
    reads: tuple[str, ...] = ()  # references to read, then classify()
    searches: tuple[FollowUpSearch, ...] = ()
    duplicates: tuple[int, ...] = ()  # event numbers delivered before: nothing to do
    missing: tuple[int, ...] = ()  # event numbers never received
    recovery: Recovery | None = None  # how to get the missing ones
    status: str | None = None  # the Subscription's status as the server reported it


def receive_notification(
    body: bytes,
    subscribed: Subscribed,
    *,
    ledger: EventLedger,
    since: datetime | None = None,
    source: str = "notification",
) -> NotificationResult:
    """One entry point for the endpoint: a topic Subscription's body is a Backport Bundle,
    any other's an R4 rest-hook body."""
    if subscribed.topic is not None:
        return receive_backport(_json(body, source), subscribed, ledger=ledger, source=source)
    return receive_rest_hook(body, subscribed, since=since, source=source)


def receive_rest_hook(
    body: bytes, subscribed: Subscribed, *, since: datetime | None, source: str = "notification"
) -> NotificationResult:
    """An R4 rest-hook delivery: the resource itself, or an empty ping to search after."""
    key = subscribed.key
    if not body.strip():
        searches = _searches(subscribed, since)
        return NotificationResult(NotificationKind.REST_HOOK_PING, key, searches=searches)
    resource = _json(body, source)
    if resource.get("resourceType") == "Bundle":
        raise InputError(
            "a Bundle reached an R4 rest-hook endpoint, which takes the changed resource "
            "itself; register a topic Subscription to receive Backport notification Bundles",
            source=source,
            field="Bundle",
        )
    kind = NotificationKind.REST_HOOK_PAYLOAD
    return NotificationResult(kind, key, triggers=(classify(resource),))


def receive_backport(
    bundle: Mapping[str, Any],
    subscribed: Subscribed,
    *,
    ledger: EventLedger,
    source: str = "notification",
) -> NotificationResult:
    """A Backport notification (or a ``$events``/``$status`` answer) for ``subscribed``:
    duplicates dropped, gaps found, the new events' focus turned into triggers or reads."""
    note = parse_backport(bundle, source=source)
    status = note.status
    if status.subscription_id != subscribed.id:
        raise InputError(
            f"the notification is for Subscription/{status.subscription_id}, not "
            f"Subscription/{subscribed.id} whose endpoint received it",
            source=source,
            field=f"{STATUS}[subscription]",
        )
    key = subscribed.key
    searches = _searches(subscribed, ledger.watermark(key).timestamp)  # before this delivery
    fresh, duplicates = _sorted_out(ledger, key, status)
    through = max((status.events_since_start or 0, *(e.number for e in status.events)))
    missing = ledger.missing(key, through)
    triggers, reads, empty = _acted_on(fresh, note.resources)
    return NotificationResult(
        status.kind,
        key,
        triggers=triggers,
        reads=reads,
        searches=searches if empty else (),
        duplicates=duplicates,
        missing=missing,
        recovery=_recovery(subscribed, ledger, missing),
        status=status.status,
    )


def plan_recovery(
    subscribed: Subscribed, ledger: EventLedger, through: int
) -> tuple[tuple[int, ...], Recovery | None]:
    """The events still missing up to ``through`` and how to get them, for a caller that
    waited (as the IG advises) for late deliveries before recovering."""
    missing = ledger.missing(subscribed.key, through)
    return missing, _recovery(subscribed, ledger, missing)


def parse_backport(
    bundle: Mapping[str, Any], *, source: str = "notification"
) -> BackportNotification:
    """A Backport notification Bundle, checked against the R4 profiles of STU 1.1.0."""
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "history":
        raise InputError(
            "a Backport notification is a Bundle of type history "
            f"(got {bundle.get('resourceType')!r} of type {bundle.get('type')!r})",
            source=source,
            field="Bundle.type",
        )
    entries = _list(bundle.get("entry"), source, "Bundle.entry")
    first = entries[0].get("resource") if entries and isinstance(entries[0], Mapping) else None
    if not isinstance(first, Mapping) or first.get("resourceType") != "Parameters":
        raise InputError(
            "the first entry of a Backport R4 notification must be its SubscriptionStatus as "
            "Parameters (an R4B/R5 SubscriptionStatus resource is not supported)",
            source=source,
            field="Bundle.entry[0].resource",
        )
    status = _status(first, source)
    return BackportNotification(status, _carried(entries[1:], source))


def classify(resource: Mapping[str, Any]) -> Trigger:
    """What a notified (or searched, or read) resource asks the adapter to do. Never raises:
    a Consent whatever its shape is re-evaluated, and the policy engine then refuses a
    malformed one."""
    kind = resource.get("resourceType")
    named = f"{kind}/{resource.get('id')}"
    if kind == "DocumentReference":
        return _document(resource, named)
    if kind == "Consent":
        return _consent(resource, named)
    return Ignored(named, f"a {kind} is neither a genomic data file nor a Consent")


# --- triggers -------------------------------------------------------------------------------


def _document(resource: Mapping[str, Any], named: str) -> Trigger:
    if resource.get("status") != "current":
        return Ignored(
            named, f"DocumentReference.status is {resource.get('status')!r}, not current"
        )
    coded_vcf = any(_is_vcf_code(c) for c in _concepts(resource))
    for content in _maps(resource.get("content")):
        attachment = content.get("attachment")
        if not isinstance(attachment, Mapping):
            continue
        if coded_vcf or _is_vcf_code(content.get("format")) or _is_vcf_attachment(attachment):
            return ConvertFile(named, attachment, _reference(resource.get("subject")))
    return Ignored(named, "no attachment is a VCF (by content type, file name or format code)")


def _concepts(resource: Mapping[str, Any]) -> list[Any]:
    codings = [
        c for concept in _maps(resource.get("category")) for c in _maps(concept.get("coding"))
    ]
    kind = resource.get("type")
    return codings + (list(_maps(kind.get("coding"))) if isinstance(kind, Mapping) else [])


def _is_vcf_code(coding: Any) -> bool:
    return (
        isinstance(coding, Mapping)
        and coding.get("system") == DATA_FORMAT_SYSTEM
        and coding.get("code") == "vcf"
    )


def _is_vcf_attachment(attachment: Mapping[str, Any]) -> bool:
    media = str(attachment.get("contentType") or "").split(";")[0].strip().lower()
    names = (str(attachment.get(k) or "").split("?")[0].lower() for k in ("url", "title"))
    return media in VCF_CONTENT_TYPES or any(n.endswith(VCF_SUFFIXES) for n in names)


def _consent(resource: Mapping[str, Any], named: str) -> Trigger:
    patient = _reference(resource.get("patient"))
    if patient is None:
        return Ignored(named, "Consent.patient is absent: no patient to re-evaluate")
    provision = resource.get("provision")
    denies = isinstance(provision, Mapping) and provision.get("type") == ProvisionType.DENY
    return ReevaluatePatient(named, patient, revoked=resource.get("status") in WITHDRAWN or denies)


# --- Backport parsing -----------------------------------------------------------------------


def _status(parameters: Mapping[str, Any], source: str) -> SubscriptionStatus:
    named = _by_name(_maps(parameters.get("parameter")), source, STATUS)
    subscription = _reference(_one(named, "subscription", source, required=True))
    target = None if subscription is None else _type_and_id(subscription)
    if subscription is None or target is None or target[0] != "Subscription":
        raise InputError(
            "the subscription parameter needs valueReference.reference to a Subscription",
            source=source,
            field=f"{STATUS}[subscription]",
        )
    kind = _kind(_one(named, "type", source, required=True), source)
    status = _one(named, "status", source, required=True)
    events = tuple(_event(p, i, source) for i, p in enumerate(named.get("notification-event", [])))
    if kind in CARRIES_EVENTS and not events:
        raise InputError(
            f"a {kind} must carry its events (notification-event with event-number)",
            source=source,
            field=f"{STATUS}[notification-event]",
        )
    topic = _one(named, "topic", source)
    since = _one(named, "events-since-subscription-start", source)
    return SubscriptionStatus(
        subscription=subscription,
        subscription_id=target[1],
        status=_text(status, source, f"{STATUS}[status]"),
        kind=kind,
        topic=None if topic is None else _text(topic, source, f"{STATUS}[topic]"),
        events_since_start=None
        if since is None
        else _count(since, source, f"{STATUS}[events-since-subscription-start]"),
        events=events,
    )


def _by_name(
    parameters: Sequence[Mapping[str, Any]], source: str, where: str
) -> dict[str, list[Mapping[str, Any]]]:
    named: dict[str, list[Mapping[str, Any]]] = {}
    for i, parameter in enumerate(parameters):
        name = parameter.get("name")
        if not isinstance(name, str):
            raise InputError("a parameter has no name", source=source, field=f"{where}[{i}].name")
        named.setdefault(name, []).append(parameter)
    return named


def _one(
    named: Mapping[str, list[Mapping[str, Any]]],
    name: str,
    source: str,
    *,
    required: bool = False,
    under: str = STATUS,
) -> Any:
    """The value[x] of the parameter (or part) called ``name``, which may occur at most once."""
    found = named.get(name, [])
    where = f"{under}[{name}]"
    if len(found) > 1:
        raise InputError(
            f"the {name} parameter occurs {len(found)} times", source=source, field=where
        )
    if not found:
        if required:
            raise InputError(f"the {name} parameter is required", source=source, field=where)
        return None
    return _value(found[0], source, where)


def _value(parameter: Mapping[str, Any], source: str, where: str) -> Any:
    values = [v for k, v in parameter.items() if k.startswith("value")]
    if len(values) != 1:
        raise InputError("the parameter needs exactly one value[x]", source=source, field=where)
    return values[0]


def _kind(value: Any, source: str) -> NotificationKind:
    backport = set(NotificationKind) - {
        NotificationKind.REST_HOOK_PAYLOAD,
        NotificationKind.REST_HOOK_PING,
    }
    if value not in backport:
        codes = " | ".join(sorted(backport))
        raise InputError(
            f"type {value!r} is not one of {codes}", source=source, field=f"{STATUS}[type]"
        )
    return NotificationKind(value)


def _event(parameter: Mapping[str, Any], index: int, source: str) -> NotificationEvent:
    where = f"{STATUS}[notification-event][{index}].part"
    parts = _by_name(_maps(parameter.get("part")), source, where)
    number = _one(parts, "event-number", source, required=True, under=where)
    stamp = _one(parts, "timestamp", source, under=where)
    return NotificationEvent(
        number=_count(number, source, f"{where}[event-number]"),
        timestamp=None if stamp is None else _timestamp(stamp, source, f"{where}[timestamp]"),
        focus=_reference(_one(parts, "focus", source, under=where)),
        additional_context=tuple(
            r
            for p in parts.get("additional-context", [])
            if (r := _reference(_value(p, source, f"{where}[additional-context]")))
        ),
    )


def _carried(entries: Sequence[Any], source: str) -> dict[str, Mapping[str, Any]]:
    """The resources of a full-resource payload, by ``Type/id``."""
    carried: dict[str, Mapping[str, Any]] = {}
    for i, entry in enumerate(entries, start=1):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if resource is None:
            continue  # id-only: the entry names the focus in fullUrl, the status does too
        if not isinstance(resource, Mapping) or not resource.get("resourceType"):
            raise InputError(
                "an entry's resource has no resourceType", source=source, field=f"Bundle.entry[{i}]"
            )
        carried[f"{resource['resourceType']}/{resource.get('id')}"] = resource
    return carried


# --- events and recovery --------------------------------------------------------------------


def _sorted_out(
    ledger: EventLedger, key: str, status: SubscriptionStatus
) -> tuple[list[NotificationEvent], tuple[int, ...]]:
    """The status's events split into first deliveries (now recorded) and duplicates."""
    fresh: list[NotificationEvent] = []
    duplicates: list[int] = []
    for event in status.events if status.kind in CARRIES_EVENTS else ():
        if ledger.record(key, event.number, event.timestamp):
            fresh.append(event)
        else:
            duplicates.append(event.number)
    return fresh, tuple(duplicates)


def _acted_on(
    events: Sequence[NotificationEvent], carried: Mapping[str, Mapping[str, Any]]
) -> tuple[tuple[Trigger, ...], tuple[str, ...], bool]:
    """Triggers from the carried focus resources, reads for the others, and whether some
    event named no focus at all (an empty payload: search)."""
    triggers: list[Trigger] = []
    reads: list[str] = []
    for event in events:
        if event.focus is None:
            continue
        target = _type_and_id(event.focus)
        named = "/".join(target) if target else None
        if named is None:
            triggers.append(Ignored(event.focus, "the focus is not a reference to a resource"))
        elif named in carried:
            triggers.append(classify(carried[named]))
        else:
            reads.append(event.focus)
    return tuple(triggers), tuple(reads), any(e.focus is None for e in events)


def _recovery(
    subscribed: Subscribed, ledger: EventLedger, missing: Sequence[int]
) -> Recovery | None:
    if not missing:
        return None
    if subscribed.supports_events:
        return EventsRequest(subscribed.id, min(missing), max(missing))
    return _searches(subscribed, ledger.watermark(subscribed.key).timestamp)


def _searches(subscribed: Subscribed, since: datetime | None) -> tuple[FollowUpSearch, ...]:
    """Each of the Subscription's searches, bounded below by ``since`` when known."""
    bound = () if since is None else (("_lastUpdated", f"ge{instant(since)}"),)
    found = []
    for criteria in subscribed.searches:
        kind, _, query = criteria.partition("?")
        found.append(FollowUpSearch(kind, tuple(parse_qsl(query, keep_blank_values=True)) + bound))
    return tuple(found)


# --- small readers --------------------------------------------------------------------------


def _json(body: bytes, source: str) -> Mapping[str, Any]:
    if body.lstrip().startswith(b"<"):
        raise InputError(
            "XML notifications are not supported: set the Subscription's channel.payload to "
            "application/fhir+json",
            source=source,
        )
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"the body is not JSON: {error}", source=source) from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("resourceType"), str):
        raise InputError("the body is not a FHIR resource", source=source, field="resourceType")
    return parsed


def _list(value: Any, source: str, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise InputError("a non-empty list is required", source=source, field=where)
    return value


def _maps(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _reference(value: Any) -> str | None:
    reference = value.get("reference") if isinstance(value, Mapping) else None
    return reference if isinstance(reference, str) and reference else None


def _type_and_id(reference: str) -> tuple[str, str] | None:
    """``(Type, id)`` of a relative or absolute reference, ``_history/<vid>`` dropped; None
    for anything else (a focus MAY name a non-FHIR object)."""
    parts = reference.split("?", maxsplit=1)[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or not RESOURCE_TYPE.fullmatch(parts[-2]) or not parts[-1]:
        return None
    return parts[-2], parts[-1]


def _text(value: Any, source: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError("a non-empty string is required", source=source, field=where)
    return value


def _count(value: Any, source: str, where: str) -> int:
    """An event count: R4 carries it as a string (int64 has no R4 type); integers accepted."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise InputError(f"{value!r} is not a non-negative integer", source=source, field=where)


def _timestamp(value: Any, source: str, where: str) -> datetime:
    """An event's timestamp: an instant, as the IG has it, or a date alone, as HAPI FHIR 8.6
    sends it (``valueDate``). A date is taken as the earliest instant it can name (its
    start at UTC+14): the timestamp bounds a recovery search from below, so it may be early,
    never late."""
    text = str(value)
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            return datetime.combine(day, time.min, tzinfo=_EARLIEST_ZONE)
    return _instant(value, source, where)


#: the zone whose midnight comes first (Line Islands): a date's earliest instant
_EARLIEST_ZONE: Final = timezone(timedelta(hours=14))


def _instant(value: Any, source: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InputError(f"{value!r} is not a FHIR instant", source=source, field=where)
    return moment
