"""A real HAPI FHIR JPA server takes what the adapter writes: stores it once, finds it,
validates it against the Genomics Reporting IG, and notifies subscribers of it.

The server is the project's own module in ``tests/servers/hapi`` (HAPI FHIR 8.6.0, R4, an H2
file database), started once per session by the ``hapi`` fixture (``conftest.py``,
``fhir_servers.py``). Specs: https://hl7.org/fhir/R4/http.html#transaction (conditional update),
https://hl7.org/fhir/R4/references.html (integrity), https://hl7.org/fhir/R4/resource-operation-validate.html,
https://hl7.org/fhir/R4/subscription.html (rest-hook), https://hl7.org/fhir/uv/genomics-reporting/STU3/
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fhir_servers import FHIR_JSON, Hapi, hapi_errors, r4_topic

from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
from adapter.model import PatientRef, Sex

pytestmark = pytest.mark.hapi

VCF = Path(__file__).resolve().parent / "data" / "vcf" / "vep_sample.vcf"
NOTIFY_TIMEOUT_S = 60
MRN = "http://hospital.example.org/mrn"
LOINC = "http://loinc.org"
VARIANT_CODE = "69548-6"  # LOINC "Genetic variant assessment", the IG's variant code
VARIANT_CRITERIA = f"Observation?code={LOINC}|{VARIANT_CODE}"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
#: HAPI refreshes its resource caches (R4 topics among them) every 10 s
#: (ResourceChangeListenerCacheRefresherImpl.LOCAL_REFRESH_INTERVAL_MS): two rounds
TOPIC_REFRESH_S = 20.0


# --- FHIR calls ---------------------------------------------------------------------------


def _json(response: httpx.Response, *expected: int) -> Any:
    assert response.status_code in expected, f"{response.status_code}: {response.text[:4000]}"
    return orjson.loads(response.content)


def _total(fhir: httpx.Client, resource_type: str, **params: str) -> int:
    """How many resources match: counted by the server, never from a cached search."""
    found = fhir.get(f"/{resource_type}", params={**params, "_summary": "count"})
    return int(_json(found, 200)["total"])


def _patient(fhir: httpx.Client) -> tuple[str, PatientRef]:
    """A new Patient (conditional create), as its server id and as the adapter names it."""
    value = f"HAPI-{uuid.uuid4()}"
    body = {"resourceType": "Patient", "identifier": [{"system": MRN, "value": value}]}
    query = f"identifier={MRN}|{value}"
    created = _json(fhir.post("/Patient", json=body, headers={"If-None-Exist": query}), 201)
    again = fhir.post("/Patient", json=body, headers={"If-None-Exist": query})
    assert _json(again, 200)["id"] == created["id"], "a conditional create made a second Patient"
    return created["id"], PatientRef(identifier_system=MRN, identifier_value=value)


@pytest.fixture(scope="session")
def patient(fhir: httpx.Client) -> tuple[str, PatientRef]:
    return _patient(fhir)


@pytest.fixture(scope="session")
def transaction(
    patient: tuple[str, PatientRef], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The VEP-annotated sample as the adapter's transaction Bundle for that patient."""
    out = tmp_path_factory.mktemp("bundle") / "vep.json"
    options = ConvertOptions(
        patient=patient[1],
        issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        output_format=OutputFormat.TRANSACTION,
        disclosure=None,
    )
    convert_vcf(VCF, out, options)
    bundle: dict[str, Any] = orjson.loads(out.read_bytes())
    return bundle


@pytest.fixture(scope="session")
def stored(fhir: httpx.Client, transaction: dict[str, Any]) -> dict[str, Any]:
    """The server's transaction-response to the first POST of the Bundle."""
    response: dict[str, Any] = _json(fhir.post("", json=transaction), 200)
    return response


def _resources(bundle: dict[str, Any], *types: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] in types]


# --- tests ----------------------------------------------------------------------------------


def test_metadata_declares_r4_transaction_validate_and_subscription(fhir: httpx.Client) -> None:
    statement = _json(fhir.get("/metadata"), 200)
    rest = statement["rest"][0]
    operations = {r["type"]: {o["name"] for o in r.get("operation", [])} for r in rest["resource"]}
    assert statement["fhirVersion"] == "4.0.1"
    assert {"code": "transaction"} in rest["interaction"]
    assert "validate" in operations["Observation"]
    assert "validate" in operations["DiagnosticReport"]
    assert "Subscription" in operations


def test_transaction_creates_every_resource(
    stored: dict[str, Any], transaction: dict[str, Any]
) -> None:
    statuses = [e["response"]["status"] for e in stored["entry"]]
    assert len(statuses) == len(transaction["entry"])
    assert set(statuses) == {"201 Created"}


def test_posting_again_creates_no_duplicates(
    fhir: httpx.Client,
    stored: dict[str, Any],
    transaction: dict[str, Any],
    patient: tuple[str, PatientRef],
) -> None:
    """Each entry is a conditional update on the resource's identifier (the adapter's choice)."""
    subject = f"Patient/{patient[0]}"
    before = {t: _total(fhir, t, subject=subject) for t in ("Observation", "DiagnosticReport")}
    again = _json(fhir.post("", json=transaction), 200)
    after = {t: _total(fhir, t, subject=subject) for t in ("Observation", "DiagnosticReport")}
    assert {e["response"]["status"] for e in again["entry"]} == {"200 OK"}
    assert [e["response"]["location"].split("/_history")[0] for e in again["entry"]] == [
        e["response"]["location"].split("/_history")[0] for e in stored["entry"]
    ]
    expected = {t: len(_resources(transaction, t)) for t in ("Observation", "DiagnosticReport")}
    assert before == after == expected


def test_found_by_subject_code_and_identifier(
    fhir: httpx.Client,
    stored: dict[str, Any],
    transaction: dict[str, Any],
    patient: tuple[str, PatientRef],
) -> None:
    subject = f"Patient/{patient[0]}"
    observations = _resources(transaction, "Observation")
    variants = [o for o in observations if o["code"]["coding"][0]["code"] == VARIANT_CODE]
    assert variants, "the sample should yield variant Observations"
    by_subject = _total(fhir, "Observation", subject=subject)
    by_code = _total(fhir, "Observation", subject=subject, code=f"{LOINC}|{VARIANT_CODE}")
    assert (by_subject, by_code) == (len(observations), len(variants))
    for resource in _resources(transaction, "Observation", "DiagnosticReport", "Procedure"):
        identifier = resource["identifier"][0]
        token = f"{identifier['system']}|{identifier['value']}"
        assert _total(fhir, resource["resourceType"], identifier=token) == 1, token


def test_include_brings_the_subject(
    fhir: httpx.Client, stored: dict[str, Any], patient: tuple[str, PatientRef]
) -> None:
    params = {
        "subject": f"Patient/{patient[0]}",
        "code": f"{LOINC}|{VARIANT_CODE}",
        "_include": "Observation:subject",
    }
    page = _json(fhir.get("/Observation", params=params), 200)
    included = [e for e in page["entry"] if e["search"]["mode"] == "include"]
    assert [e["resource"]["resourceType"] for e in included] == ["Patient"]
    assert included[0]["resource"]["id"] == patient[0]


def test_reference_to_a_missing_resource_is_refused(
    fhir: httpx.Client, transaction: dict[str, Any]
) -> None:
    """Referential integrity on write: no placeholder Patient is made for a dangling reference."""
    observation = dict(_resources(transaction, "Observation")[0])
    observation.pop("identifier")
    observation["subject"] = {"reference": f"Patient/missing-{uuid.uuid4().hex[:12]}"}
    refused = fhir.post("/Observation", json=observation)
    outcome = _json(refused, 400, 404, 409, 412, 422)
    assert any(i["severity"] in {"error", "fatal"} for i in outcome["issue"])


def test_every_observation_and_report_conforms_to_its_ig_profile(
    fhir: httpx.Client, transaction: dict[str, Any]
) -> None:
    """Codes from code systems the server cannot hold offline (HGVS, LOINC, SO...) are warnings."""
    resources = _resources(transaction, "Observation", "DiagnosticReport")
    assert all(r["meta"]["profile"] for r in resources)
    errors = [error for r in resources for error in hapi_errors(fhir, r)]
    assert not errors, "\n".join(errors)


#: the test VCFs whose every emitted resource HAPI validates, with the patient's sex
FOUNDATION_VCFS = {
    "snv.vcf": Sex.UNKNOWN,
    "indels.vcf": Sex.UNKNOWN,
    "multiallelic.vcf": Sex.UNKNOWN,
    "sv.vcf": Sex.UNKNOWN,
    "phased_compound_het.vcf": Sex.UNKNOWN,
    "secondary_findings.vcf": Sex.UNKNOWN,
    "sex_mito.vcf": Sex.MALE,
}


@pytest.mark.parametrize("name", sorted(FOUNDATION_VCFS))
def test_every_resource_of_the_test_vcfs_conforms(
    fhir: httpx.Client, tmp_path: Path, name: str
) -> None:
    """Each resource a conversion emits (no policy applied: everything), validated alone."""
    out = tmp_path / "bundle.json"
    options = ConvertOptions(
        patient=PatientRef(id="p-1"),
        issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        output_format=OutputFormat.COLLECTION,
        sex=FOUNDATION_VCFS[name],
    )
    convert_vcf(VCF.parent / name, out, options)
    resources = [e["resource"] for e in orjson.loads(out.read_bytes())["entry"]]
    errors = [error for r in resources for error in hapi_errors(fhir, r)]
    assert not errors, "\n".join(errors)


def test_validate_enforces_the_ig_profile(fhir: httpx.Client, transaction: dict[str, Any]) -> None:
    """A variant whose code is not the IG's fixed LOINC code fails the variant profile."""
    variant = next(
        o
        for o in _resources(transaction, "Observation")
        if o["meta"]["profile"][0].endswith("/variant")
    )
    wrong = {**variant, "code": {"coding": [{"system": LOINC, "code": "48019-4"}]}}
    errors = hapi_errors(fhir, wrong)
    assert any("Observation.code" in e for e in errors), errors


# --- rest-hook subscription ---------------------------------------------------------------


class _Notifications(ThreadingHTTPServer):
    """A loopback receiver: every request body it gets is put on ``received``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.received: queue.Queue[tuple[str, str, bytes]] = queue.Queue()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Hook(BaseHTTPRequestHandler):
    server: _Notifications

    def _receive(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.put((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = _receive

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reports what it got."""


@pytest.fixture
def receiver() -> Iterator[_Notifications]:
    server = _Notifications()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _wait_active(fhir: httpx.Client, subscription_id: str) -> None:
    """HAPI activates a requested Subscription asynchronously."""
    deadline = time.monotonic() + NOTIFY_TIMEOUT_S
    while time.monotonic() < deadline:
        if _json(fhir.get(f"/Subscription/{subscription_id}"), 200)["status"] == "active":
            return
        time.sleep(0.5)
    pytest.fail(f"Subscription/{subscription_id} was not activated in {NOTIFY_TIMEOUT_S} s")


def _notified(
    receiver: _Notifications,
    observation_id: str,
    carries: Callable[[dict[str, Any], str], bool],
    wait: float = NOTIFY_TIMEOUT_S,
) -> tuple[str, str, dict[str, Any]]:
    """The first notification that ``carries`` the Observation, within the bounded wait."""
    found = _first_notification(receiver, {observation_id}, carries, wait)
    if found is None:
        pytest.fail(f"no notification for Observation/{observation_id} in {wait} s")
    return found


def _first_notification(
    receiver: _Notifications,
    observation_ids: set[str],
    carries: Callable[[dict[str, Any], str], bool],
    wait: float,
) -> tuple[str, str, dict[str, Any]] | None:
    """The first notification that carries one of the Observations within ``wait`` s, else
    None."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            method, path, body = receiver.received.get(timeout=left)
        except queue.Empty:
            break
        payload = orjson.loads(body) if body else {}
        if any(carries(payload, rid) for rid in observation_ids):
            return method, path, payload
    return None


def _is_resource(payload: dict[str, Any], observation_id: str) -> bool:
    return payload.get("id") == observation_id


def _in_bundle(payload: dict[str, Any], observation_id: str) -> bool:
    entries = payload.get("entry", []) if payload.get("resourceType") == "Bundle" else []
    return any(e.get("resource", {}).get("id") == observation_id for e in entries)


def _subscribe(fhir: httpx.Client, subscription: dict[str, Any]) -> str:
    """A requested Subscription, once HAPI has activated it (asynchronously)."""
    subscription_id: str = _json(fhir.post("/Subscription", json=subscription), 201)["id"]
    _wait_active(fhir, subscription_id)
    return subscription_id


def _variant_observation(fhir: httpx.Client, patient_id: str) -> dict[str, Any]:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": VARIANT_CODE}]},
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    created: dict[str, Any] = _json(fhir.post("/Observation", json=observation), 201)
    return created


def test_rest_hook_subscription_delivers_new_variant_observation(
    fhir: httpx.Client, receiver: _Notifications
) -> None:
    patient_id, _ = _patient(fhir)  # its own subject: the other tests' counts stay exact
    subscription_id = _subscribe(
        fhir,
        {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "variant assessments",
            "criteria": VARIANT_CRITERIA,
            "channel": {"type": "rest-hook", "endpoint": receiver.endpoint, "payload": FHIR_JSON},
        },
    )
    try:
        created = _variant_observation(fhir, patient_id)
        method, path, payload = _notified(receiver, created["id"], _is_resource)
    finally:
        _json(fhir.delete(f"/Subscription/{subscription_id}"), 200, 204)
    assert (method, path) == ("PUT", f"/hook/Observation/{created['id']}")
    assert payload["resourceType"] == "Observation"
    assert payload["subject"]["reference"] == f"Patient/{patient_id}"


def _topic_notification(
    fhir: httpx.Client, receiver: _Notifications, patient_id: str, topic_written: float
) -> dict[str, Any]:
    """The notification Bundle of a variant Observation. HAPI reads R4 topics into its
    registry on its resource-cache refresh (every 10 s), not on write, and later under load:
    an Observation is created each round until one is notified, within a bounded wait."""
    time.sleep(max(0.0, topic_written + TOPIC_REFRESH_S - time.monotonic()))
    created: set[str] = set()
    deadline = time.monotonic() + NOTIFY_TIMEOUT_S * 2
    while time.monotonic() < deadline:
        created.add(_variant_observation(fhir, patient_id)["id"])
        found = _first_notification(receiver, created, _in_bundle, TOPIC_REFRESH_S)
        if found is not None:
            return found[2]
    pytest.fail(
        f"no topic notification for {len(created)} Observations in {NOTIFY_TIMEOUT_S * 2} s"
    )


def test_backport_topic_subscription_delivers_a_notification_bundle(
    fhir: httpx.Client, receiver: _Notifications
) -> None:
    """R4 topic-based subscription (Backport IG, full-resource payload).
    https://hl7.org/fhir/uv/subscriptions-backport/"""
    patient_id, _ = _patient(fhir)
    topic = f"http://example.org/fhir/SubscriptionTopic/variants-{uuid.uuid4().hex[:8]}"
    _json(fhir.post("/Basic", json=r4_topic(topic, "Observation", filter_parameter="code")), 201)
    topic_written = time.monotonic()
    subscription_id = _subscribe(
        fhir,
        {
            "resourceType": "Subscription",
            "meta": {"profile": [f"{BACKPORT}backport-subscription"]},
            "status": "requested",
            "reason": "variant assessments, topic-based",
            "criteria": topic,
            "_criteria": {
                "extension": [
                    {"url": f"{BACKPORT}backport-filter-criteria", "valueString": VARIANT_CRITERIA}
                ]
            },
            "channel": {
                "type": "rest-hook",
                "endpoint": receiver.endpoint,
                "payload": FHIR_JSON,
                "_payload": {
                    "extension": [
                        {"url": f"{BACKPORT}backport-payload-content", "valueCode": "full-resource"}
                    ]
                },
            },
        },
    )
    try:
        bundle = _topic_notification(fhir, receiver, patient_id, topic_written)
    finally:
        _json(fhir.delete(f"/Subscription/{subscription_id}"), 200, 204)
    status = bundle["entry"][0]["resource"]
    parameters = {p["name"]: p for p in status["parameter"]}
    assert bundle["type"] == "history"
    assert status["resourceType"] == "Parameters"
    assert parameters["topic"]["valueCanonical"] == topic
    assert parameters["type"]["valueCode"] == "event-notification"
    assert parameters["subscription"]["valueReference"]["reference"] == (
        f"Subscription/{subscription_id}"
    )


# --- restart ------------------------------------------------------------------------------


def test_data_survive_a_restart_and_a_replay_still_finds_them(
    hapi: Hapi,
    fhir: httpx.Client,
    stored: dict[str, Any],
    transaction: dict[str, Any],
    patient: tuple[str, PatientRef],
) -> None:
    """The H2 file database keeps resources and the search indexes conditional updates use:
    after a restart the same Bundle updates, never duplicates (what a sync resuming after a
    server outage relies on). Last in this file: the server comes back on the same port."""
    subject = f"Patient/{patient[0]}"
    before = _total(fhir, "Observation", subject=subject)
    hapi.restart()
    assert _total(fhir, "Observation", subject=subject) == before
    again = _json(fhir.post("", json=transaction), 200)
    assert {e["response"]["status"] for e in again["entry"]} == {"200 OK"}
    assert _total(fhir, "Observation", subject=subject) == before
