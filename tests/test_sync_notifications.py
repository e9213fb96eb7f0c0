"""Inbound Subscription notifications: R4 rest-hook and Backport STU 1.1 payloads written
from the specs' examples, event-number bookkeeping, triggers, and malformed inputs."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.errors import InputError, OptionsError
from adapter.sync.notifications import (
    ConvertFile,
    EventsRequest,
    FollowUpSearch,
    Ignored,
    InMemoryEventLedger,
    NotificationKind,
    ReevaluatePatient,
    Subscribed,
    Watermark,
    classify,
    parse_backport,
    plan_recovery,
    receive_backport,
    receive_notification,
    receive_rest_hook,
)

DATA = Path(__file__).parent / "data"
BASE = "https://ehr.example.org/fhir"
TOPIC = f"{BASE}/SubscriptionTopic/genomic-data-file"
FILES = Subscribed(BASE, "genomic-files", ("DocumentReference?status=current",), topic=TOPIC)
WITH_EVENTS = Subscribed(BASE, "genomic-files", FILES.searches, topic=TOPIC, supports_events=True)
KEY = f"{BASE}/Subscription/genomic-files"
T0 = "2026-03-02T10:14:58Z"


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / "notifications" / f"{name}.json").read_text())
    return loaded


def consent(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads((DATA / "consent" / "r4_research.json").read_text())
    resource.update(changes)
    return resource


def event(number: int, timestamp: str = T0, focus: str | None = None) -> dict[str, Any]:
    """An id-only (or, without focus, empty) event-notification for event ``number``."""
    bundle = example("event-id-only")
    parameters = bundle["entry"][0]["resource"]["parameter"]
    for parameter in parameters:
        if parameter["name"] == "events-since-subscription-start":
            parameter["valueString"] = str(number)
        if parameter["name"] == "notification-event":
            parts = [
                {"name": "event-number", "valueString": str(number)},
                {"name": "timestamp", "valueInstant": timestamp},
            ]
            if focus:
                parts.append({"name": "focus", "valueReference": {"reference": focus}})
            parameter["part"] = parts
    return bundle


def heartbeat(events_since: int) -> dict[str, Any]:
    bundle = example("heartbeat")
    for parameter in bundle["entry"][0]["resource"]["parameter"]:
        if parameter["name"] == "events-since-subscription-start":
            parameter["valueString"] = str(events_since)
    return bundle


# --- Backport payloads from the IG's examples ------------------------------------------------


def test_handshake_asks_for_nothing() -> None:
    ledger = InMemoryEventLedger()
    result = receive_backport(example("handshake"), FILES, ledger=ledger)
    assert result.kind is NotificationKind.HANDSHAKE and result.status == "requested"
    assert (result.triggers, result.reads, result.searches, result.missing) == ((), (), (), ())
    assert result.recovery is None and ledger.watermark(KEY) == Watermark()


def test_heartbeat_reveals_events_never_delivered() -> None:
    result = receive_backport(example("heartbeat"), FILES, ledger=InMemoryEventLedger())
    assert result.kind is NotificationKind.HEARTBEAT and result.missing == (1, 2)
    assert result.recovery == (FollowUpSearch("DocumentReference", (("status", "current"),)),)


def test_full_resource_event_triggers_conversion_of_the_vcf() -> None:
    ledger = InMemoryEventLedger()
    result = receive_backport(example("event-full-resource"), FILES, ledger=ledger)
    assert result.kind is NotificationKind.EVENT_NOTIFICATION and result.reads == ()
    (trigger,) = result.triggers
    assert isinstance(trigger, ConvertFile)
    assert trigger.document == "DocumentReference/wgs-vcf-17"
    assert trigger.patient == "Patient/p-204" and trigger.attachment["url"] == "Binary/vcf-17"
    assert ledger.watermark(KEY) == Watermark(1, datetime(2026, 3, 2, 10, 14, 58, tzinfo=UTC))


def test_id_only_event_asks_to_read_the_focus() -> None:
    result = receive_backport(example("event-id-only"), FILES, ledger=InMemoryEventLedger())
    assert result.triggers == () and result.searches == ()
    assert result.reads == (f"{BASE}/DocumentReference/wgs-vcf-17",)


def test_empty_event_asks_for_a_search_since_the_last_event() -> None:
    ledger = InMemoryEventLedger()
    first = receive_backport(example("event-empty"), FILES, ledger=ledger)
    assert first.searches == (FollowUpSearch("DocumentReference", (("status", "current"),)),)
    second = event(2, "2026-03-02T10:20:00Z")
    second["entry"][0]["resource"]["parameter"] = [
        p for p in second["entry"][0]["resource"]["parameter"] if p["name"] != "topic"
    ]
    result = receive_backport(second, FILES, ledger=ledger)
    bound = ("_lastUpdated", "ge2026-03-02T10:14:58.500000-01:00")  # event 1, its zone kept
    assert result.searches == (FollowUpSearch("DocumentReference", (("status", "current"), bound)),)


def test_parse_keeps_every_status_element() -> None:
    note = parse_backport(example("event-id-only"))
    status = note.status
    assert (status.subscription_id, status.topic, status.status) == (
        "genomic-files",
        TOPIC,
        "active",
    )
    assert status.events_since_start == 1 and note.resources == {}
    (only,) = status.events
    assert only.number == 1 and only.additional_context == (f"{BASE}/Patient/p-204",)


def test_query_event_answer_of_events_fills_the_gap() -> None:
    ledger = InMemoryEventLedger()
    receive_backport(event(1), WITH_EVENTS, ledger=ledger)
    gap = receive_backport(event(4, focus="DocumentReference/d4"), WITH_EVENTS, ledger=ledger)
    assert gap.missing == (2, 3) and gap.recovery == EventsRequest("genomic-files", 2, 3)
    assert gap.recovery.path == "Subscription/genomic-files/$events"
    assert gap.recovery.params == (("eventsSinceNumber", "2"), ("eventsUntilNumber", "3"))
    answer = event(2, focus="DocumentReference/d2")
    answer["entry"][0]["resource"]["parameter"][3]["valueCode"] = "query-event"
    third = copy.deepcopy(event(3, focus="Consent/c3"))
    answer["entry"][0]["resource"]["parameter"].append(
        third["entry"][0]["resource"]["parameter"][-1]
    )
    result = receive_backport(answer, WITH_EVENTS, ledger=ledger)
    assert result.kind is NotificationKind.QUERY_EVENT
    assert result.reads == ("DocumentReference/d2", "Consent/c3") and result.missing == ()
    assert ledger.watermark(KEY).number == 4


# --- duplicates, gaps, out of order ---------------------------------------------------------


def test_duplicate_delivery_asks_for_nothing() -> None:
    ledger = InMemoryEventLedger()
    first = receive_backport(example("event-full-resource"), FILES, ledger=ledger)
    again = receive_backport(example("event-full-resource"), FILES, ledger=ledger)
    assert len(first.triggers) == 1 and first.duplicates == ()
    assert again.triggers == () and again.reads == () and again.duplicates == (1,)


def test_gap_is_detected_and_recovered_by_search_since_the_last_event() -> None:
    ledger = InMemoryEventLedger()
    for number in range(1, 5):
        receive_backport(event(number, f"2026-03-02T10:0{number}:00Z"), FILES, ledger=ledger)
    result = receive_backport(event(7, "2026-03-02T10:07:00Z"), FILES, ledger=ledger)
    assert result.missing == (5, 6)
    bound = ("_lastUpdated", "ge2026-03-02T10:04:00+00:00")
    assert result.recovery == (FollowUpSearch("DocumentReference", (("status", "current"), bound)),)


def test_out_of_order_arrival_fills_its_gap() -> None:
    ledger = InMemoryEventLedger()
    receive_backport(event(1), FILES, ledger=ledger)
    late = receive_backport(event(3, focus="DocumentReference/d3"), FILES, ledger=ledger)
    assert late.missing == (2,) and late.reads == ("DocumentReference/d3",)
    filled = receive_backport(event(2, focus="DocumentReference/d2"), FILES, ledger=ledger)
    assert filled.missing == () and filled.recovery is None
    assert filled.reads == ("DocumentReference/d2",)
    assert ledger.watermark(KEY).number == 3
    assert plan_recovery(FILES, ledger, 3) == ((), None)


def test_plan_recovery_after_waiting_for_late_events() -> None:
    ledger = InMemoryEventLedger()
    receive_backport(event(1), WITH_EVENTS, ledger=ledger)
    receive_backport(heartbeat(5), WITH_EVENTS, ledger=ledger)
    receive_backport(event(3), WITH_EVENTS, ledger=ledger)
    missing, recovery = plan_recovery(WITH_EVENTS, ledger, 5)
    assert missing == (2, 4, 5) and recovery == EventsRequest("genomic-files", 2, 5)


def test_heartbeat_at_the_count_seen_reveals_nothing() -> None:
    ledger = InMemoryEventLedger()
    receive_backport(event(1), FILES, ledger=ledger)
    receive_backport(event(2), FILES, ledger=ledger)
    result = receive_backport(heartbeat(2), FILES, ledger=ledger)
    assert result.missing == () and result.recovery is None


@given(st.permutations(range(1, 13)), st.integers(min_value=0, max_value=12))
def test_ledger_any_arrival_order(order: list[int], cut: int) -> None:
    """Whatever the order and repeats, the watermark is the longest run from 1 and the
    missing numbers are exactly those not yet delivered."""
    ledger = InMemoryEventLedger()
    delivered = order[:cut]
    firsts = [ledger.record("s", n, None) for n in delivered + delivered]
    assert firsts == [True] * cut + [False] * cut
    run = next(n for n in range(1, 14) if n not in delivered) - 1
    assert ledger.watermark("s").number == run
    assert ledger.missing("s", 12) == tuple(n for n in range(1, 13) if n not in delivered)


def test_ledger_keeps_the_last_known_timestamp() -> None:
    ledger = InMemoryEventLedger()
    stamp = datetime(2026, 3, 2, tzinfo=UTC)
    ledger.record("s", 1, stamp)
    ledger.record("s", 2, None)  # recovered by a search: no timestamp
    assert ledger.watermark("s") == Watermark(2, stamp)


# --- R4 rest-hook ---------------------------------------------------------------------------

R4 = Subscribed(BASE, "consents", ("Consent?status=active,inactive,rejected&category=x",))


def test_rest_hook_payload_is_classified() -> None:
    body = json.dumps(consent(status="inactive")).encode()
    result = receive_rest_hook(body, R4, since=None)
    assert result.kind is NotificationKind.REST_HOOK_PAYLOAD
    assert result.triggers == (
        ReevaluatePatient("Consent/research-biobank", "Patient/pat-2002", revoked=True),
    )


def test_rest_hook_empty_ping_asks_for_a_bounded_search() -> None:
    since = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    result = receive_notification(b"", R4, ledger=InMemoryEventLedger(), since=since)
    assert result.kind is NotificationKind.REST_HOOK_PING and result.triggers == ()
    assert result.searches == (
        FollowUpSearch(
            "Consent",
            (
                ("status", "active,inactive,rejected"),
                ("category", "x"),
                ("_lastUpdated", "ge2026-03-02T09:00:00+00:00"),
            ),
        ),
    )
    unbounded = receive_rest_hook(b"  \r\n", R4, since=None)
    assert unbounded.searches[0].params[-1] == ("category", "x")


def test_receive_notification_routes_topic_subscriptions_to_backport() -> None:
    body = json.dumps(example("event-full-resource")).encode()
    result = receive_notification(body, FILES, ledger=InMemoryEventLedger())
    assert result.kind is NotificationKind.EVENT_NOTIFICATION and len(result.triggers) == 1


# --- triggers ---------------------------------------------------------------------------------


def _document(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = copy.deepcopy(example("event-full-resource")["entry"][1]["resource"])
    resource.update(changes)
    return resource


@pytest.mark.parametrize(
    "attachment",
    [
        {"contentType": "text/vcf; charset=utf-8", "url": "Binary/1"},
        {"url": "https://lab.example.org/files/run-5.vcf.gz?sig=abc"},
        {"url": "https://lab.example.org/files/run-5.VCF"},
        {"contentType": "application/octet-stream", "title": "trio.vcf.bgz", "data": "IyM="},
    ],
)
def test_vcf_attachments_are_recognised(attachment: dict[str, Any]) -> None:
    trigger = classify(_document(content=[{"attachment": attachment}]))
    assert isinstance(trigger, ConvertFile) and trigger.attachment == attachment


def test_vcf_recognised_by_the_igs_data_format_code() -> None:
    """The IG's own genomicFileProbandVCF example has neither content type nor file name."""
    example_file = {"url": "http://www.somesystemabc.net/identifiers/files/11150"}
    vcf = {
        "system": "http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/genomic-study-data-format-cs",
        "code": "vcf",
    }
    plain = _document(content=[{"attachment": example_file}])
    typed = _document(type={"coding": [vcf]}, content=[{"attachment": example_file}])
    formatted = _document(content=[{"attachment": example_file, "format": vcf}])
    assert isinstance(classify(plain), Ignored)
    assert isinstance(classify(typed), ConvertFile) and isinstance(classify(formatted), ConvertFile)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {
                "content": [
                    {"attachment": {"contentType": "application/gzip", "url": "x/run.bam.gz"}}
                ]
            },
            "no attachment",
        ),
        (
            {"content": [{"attachment": {"url": "https://lab.example.org/run-5.bam"}}]},
            "no attachment",
        ),
        ({"status": "entered-in-error"}, "not current"),
    ],
)
def test_other_documents_are_ignored_with_the_reason(changes: dict[str, Any], reason: str) -> None:
    trigger = classify(_document(**changes))
    assert isinstance(trigger, Ignored) and reason in trigger.reason
    assert trigger.resource == "DocumentReference/wgs-vcf-17"


@pytest.mark.parametrize(
    ("changes", "revoked"),
    [
        ({}, False),
        ({"status": "inactive"}, True),
        ({"status": "rejected"}, True),
        ({"status": "entered-in-error"}, True),
        ({"provision": {"type": "deny"}}, True),
    ],
)
def test_consent_changes_re_evaluate_the_patient(changes: dict[str, Any], revoked: bool) -> None:
    assert classify(consent(**changes)) == ReevaluatePatient(
        "Consent/research-biobank", "Patient/pat-2002", revoked=revoked
    )


def test_consent_without_patient_and_other_resources_are_ignored() -> None:
    nobody = consent()
    del nobody["patient"]
    assert classify(nobody) == Ignored(
        "Consent/research-biobank", "Consent.patient is absent: no patient to re-evaluate"
    )
    other = classify({"resourceType": "Observation", "id": "o1"})
    assert isinstance(other, Ignored) and other.resource == "Observation/o1"


# --- malformed inputs -----------------------------------------------------------------------


def _status_parameters(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = bundle["entry"][0]["resource"]["parameter"]
    return parameters


def _without(name: str) -> dict[str, Any]:
    bundle = example("event-id-only")
    bundle["entry"][0]["resource"]["parameter"] = [
        p for p in _status_parameters(bundle) if p["name"] != name
    ]
    return bundle


def _with(name: str, value: dict[str, Any]) -> dict[str, Any]:
    bundle = example("event-id-only")
    for parameter in _status_parameters(bundle):
        if parameter["name"] == name:
            parameter.clear()
            parameter.update({"name": name, **value})
    return bundle


def _event_part(name: str, value: dict[str, Any]) -> dict[str, Any]:
    bundle = example("event-id-only")
    for part in _status_parameters(bundle)[-1]["part"]:
        if part["name"] == name:
            part.clear()
            part.update({"name": name, **value})
    return bundle


EVENT = "Parameters.parameter[notification-event][0].part"


def test_regression_hapi_sends_an_event_timestamp_as_a_date() -> None:
    """HAPI FHIR 8.6 sends notification-event.timestamp as valueDate, which was refused (422,
    so no topic event reached the adapter): a date is read as the earliest instant it names
    (its midnight at UTC+14), so a recovery search bounded by it misses nothing."""
    (only,) = parse_backport(_event_part("timestamp", {"valueDate": "2026-03-02"})).status.events
    assert only.timestamp == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("bundle", "field"),
    [
        ({"resourceType": "Bundle", "type": "transaction"}, "Bundle.type"),
        ({"resourceType": "Bundle", "type": "history", "entry": []}, "Bundle.entry"),
        (
            {
                "resourceType": "Bundle",
                "type": "history",
                "entry": [{"resource": {"resourceType": "SubscriptionStatus"}}],
            },
            "Bundle.entry[0].resource",
        ),
        (_without("subscription"), "Parameters.parameter[subscription]"),
        (
            _with("subscription", {"valueReference": {"reference": "Patient/p-204"}}),
            "Parameters.parameter[subscription]",
        ),
        (_without("type"), "Parameters.parameter[type]"),
        (_with("type", {"valueCode": "notification"}), "Parameters.parameter[type]"),
        (_without("status"), "Parameters.parameter[status]"),
        (
            _with("status", {"valueCode": "active", "valueString": "active"}),
            "Parameters.parameter[status]",
        ),
        (
            _with("events-since-subscription-start", {"valueString": "-3"}),
            "Parameters.parameter[events-since-subscription-start]",
        ),
        (_without("notification-event"), "Parameters.parameter[notification-event]"),
        (_event_part("event-number", {"valueString": "two"}), f"{EVENT}[event-number]"),
        (_event_part("timestamp", {"valueInstant": "2026-03-02T10:14:58"}), f"{EVENT}[timestamp]"),
    ],
)
def test_malformed_backport_notifications_name_the_element(
    bundle: dict[str, Any], field: str
) -> None:
    ledger = InMemoryEventLedger()
    with pytest.raises(InputError) as caught:
        receive_backport(bundle, FILES, ledger=ledger, source="POST /notifications/genomic-files")
    assert caught.value.field == field
    assert caught.value.source == "POST /notifications/genomic-files"
    assert ledger.watermark(KEY) == Watermark()  # nothing recorded from a rejected delivery


def test_repeated_parameter_and_missing_event_number_are_rejected() -> None:
    twice = example("event-id-only")
    _status_parameters(twice).append({"name": "type", "valueCode": "heartbeat"})
    with pytest.raises(InputError, match="occurs 2 times") as caught:
        parse_backport(twice)
    assert caught.value.field == "Parameters.parameter[type]"
    numberless = example("event-id-only")
    _status_parameters(numberless)[-1]["part"].pop(0)
    with pytest.raises(InputError, match="the event-number parameter is required"):
        parse_backport(numberless)


def test_notification_for_another_subscription_is_rejected() -> None:
    other = Subscribed(BASE, "consents", ("Consent",), topic=TOPIC)
    with pytest.raises(
        InputError, match="Subscription/genomic-files, not Subscription/consents"
    ) as caught:
        receive_backport(example("heartbeat"), other, ledger=InMemoryEventLedger())
    assert caught.value.field == "Parameters.parameter[subscription]"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a FHIR resource"),
        (b"<Bundle xmlns='http://hl7.org/fhir'/>", "XML notifications are not supported"),
        (json.dumps(example("heartbeat")).encode(), "a Bundle reached an R4 rest-hook endpoint"),
    ],
)
def test_malformed_rest_hook_bodies(body: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        receive_rest_hook(body, R4, since=None, source="PUT /notifications/consents")
    assert caught.value.source == "PUT /notifications/consents"


def test_subscription_criteria_without_a_resource_type_is_a_configuration_error() -> None:
    with pytest.raises(OptionsError, match="do not start with a resource type") as caught:
        Subscribed(BASE, "s", ("status=current",))
    assert caught.value.field == "Subscription.criteria"
