"""Inbound FHIR Subscriptions end to end on the real HAPI server: our service notified by HAPI
(rest-hook with payload, registered by ``fhir-genomics subscribe``), a VCF DocumentReference
becoming a job whose report the Sender pushes back, Consent changes holding and resuming the
patient's jobs, duplicate and out-of-order deliveries (through the fault proxy) changing
nothing, and sent secondary findings retracted (entered-in-error) when the policy says so.
Plus the durable event ledger against the in-memory one, without a server.

``secondary_findings.vcf``: BRCA2, MUTYH and LDLR findings are ACMG secondary findings
reported only with an opt-in; CFTR is a primary result (see ``test_sync_worker.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from api_tokens import AUDIENCE, token, write_jwks
from fault_proxy import FaultProxy
from fhir_servers import Hapi, r4_topic
from hypothesis import given, settings
from hypothesis import strategies as st
from local_service import serving

from adapter.access import AUDIENCE_ENV, JWKS_ENV, SCOPES, Access
from adapter.cli_sync import add_subscribe
from adapter.disclosure import AUDIT_LOG_ENV
from adapter.resources import data_dir
from adapter.service import POLICY_ENV, create_app
from adapter.sync.config import NoAuth, ServerConfig
from adapter.sync.notifications import InMemoryEventLedger
from adapter.sync.outbox import JobState, JobSummary, Outbox, open_outbox
from adapter.sync.worker import Sender

DATA = Path(__file__).resolve().parent / "data"
SNV = DATA / "vcf" / "snv.vcf"
SECONDARY = DATA / "vcf" / "secondary_findings.vcf"
OPT_IN = DATA / "consent" / "r4_secondary_findings_opt_in.json"
MRN = "https://hospital.test/mrn"
WAIT_S = 90.0
GENE_STUDIED = "48018-6"
VARIANT = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant"
LISTED = frozenset({"MUTYH", "TTN", "HFE", "BRCA2", "LDLR"})
Resource = dict[str, Any]


# --- the durable ledger (no server) ------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=12), max_size=30))
def test_the_durable_ledger_agrees_with_the_in_memory_one(numbers: list[int]) -> None:
    """Duplicates, gaps and late arrivals: the same answers from the database as from a
    dict, number by number."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder, open_outbox(f"sqlite:///{folder}/o.db") as box:
        durable, memory = box.ledger(), InMemoryEventLedger()
        for n in numbers:
            at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n)
            assert durable.record("s", n, at) == memory.record("s", n, at)
            assert durable.watermark("s") == memory.watermark("s")
            assert durable.missing("s", 12) == memory.missing("s", 12)


# --- the adapter, served, subscribed on HAPI ---------------------------------------------------


@dataclass
class Adapter:
    base: str
    outbox_url: str
    config: ServerConfig
    folder: Path
    policy: Path
    audit: Path
    servers_file: Path
    token_file: Path

    def outbox(self) -> Outbox:
        return open_outbox(self.outbox_url)

    def sender(self) -> Sender:
        box = self.outbox()
        return Sender(box, {"hapi": self.config}, audit_log=self.audit, policy=self.policy)


def _policy(path: Path, **changes: Any) -> Path:
    """The shipped policy with top-level sections changed."""
    data = yaml.safe_load((data_dir("mappings") / "policy.yaml").read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        data[section][key] = value
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def adapter(
    hapi: Hapi, fhir: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Adapter]:
    policy = _policy(tmp_path / "policy.yaml")
    audit = tmp_path / "audit.ndjson"
    monkeypatch.setenv(POLICY_ENV, str(policy))
    monkeypatch.setenv(AUDIT_LOG_ENV, str(audit))
    url = f"sqlite:///{tmp_path}/outbox.db"
    config = ServerConfig(
        "hapi", hapi.base, NoAuth(), max_entries=50, patient_identifier_system=MRN
    )
    servers = tmp_path / "servers.yaml"
    body = {"base_url": hapi.base, "auth": {"type": "none"}, "patient_identifier_system": MRN}
    servers.write_text(yaml.safe_dump({"servers": {"hapi": body}}))
    notify = tmp_path / "notify.token"
    notify.write_text(token(scope=SCOPES["notify"], exp=int(time.time()) + 3600))
    environ = {JWKS_ENV: str(write_jwks(tmp_path / "jwks.json")), AUDIENCE_ENV: AUDIENCE}
    app = create_app(Access.from_env(environ), outbox_url=url, servers={"hapi": config})
    with serving(app) as base:
        served = Adapter(base, url, config, tmp_path, policy, audit, servers, notify)
        try:
            yield served
        finally:
            with served.outbox() as box:
                for registration in box.registrations():
                    fhir.delete(f"/Subscription/{registration.subscription_id}")


def _subscribe(
    adapter: Adapter, fhir: httpx.Client, endpoint: str, topics: Sequence[str] = ()
) -> list[str]:
    """``fhir-genomics subscribe`` run as the CLI runs it; the Subscriptions, once active."""
    parser = argparse.ArgumentParser()
    add_subscribe(parser.add_subparsers())
    args = parser.parse_args(
        [
            "subscribe",
            "--endpoint", endpoint,
            "--notify-token-file", str(adapter.token_file),
            "--purpose", "TREAT",
            "--outbox", adapter.outbox_url,
            "--servers", str(adapter.servers_file),
            "--server", "hapi",
            *[a for topic in topics for a in ("--topic", topic)],
        ]
    )  # fmt: skip
    assert args.run(args) == 0
    with adapter.outbox() as box:
        ids = [r.subscription_id for r in box.registrations()]

    def active() -> bool:
        return all(fhir.get(f"/Subscription/{s}").json()["status"] == "active" for s in ids)

    _until(active)
    return ids


def _until(check: Callable[[], Any], wait: float = WAIT_S) -> Any:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.3)
    pytest.fail(f"not so within {wait} s")


def _patient(fhir: httpx.Client) -> tuple[str, str]:
    value = f"INBOUND-{uuid.uuid4()}"
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": MRN, "value": value}],
        "birthDate": "1980-05-17",
    }
    response = fhir.post("/Patient", json=body)
    assert response.status_code == 201, response.text
    return value, f"Patient/{response.json()['id']}"


def _document(fhir: httpx.Client, patient: str, vcf: Path) -> str:
    body = {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": patient},
        "content": [
            {
                "attachment": {
                    "contentType": "text/vcf",
                    "title": vcf.name,
                    "data": base64.b64encode(vcf.read_bytes()).decode(),
                }
            }
        ],
    }
    response = fhir.post("/DocumentReference", json=body)
    assert response.status_code == 201, response.text
    return f"DocumentReference/{response.json()['id']}"


def _consent(
    fhir: httpx.Client, patient: str, status: str = "active", cid: str | None = None
) -> str:
    """The opt-in Consent fixture for ``patient`` with ``status``: created, or updated."""
    text = OPT_IN.read_text(encoding="utf-8").replace('"Patient/pat-1001"', f'"{patient}"')
    consent = orjson.loads(text)
    consent["identifier"][0]["value"] += f"-{patient}"
    consent["status"] = status
    for org in ("lab-1", "insurer-7"):
        body = {"resourceType": "Organization", "id": org, "name": org}
        assert fhir.put(f"/Organization/{org}", json=body).status_code in {200, 201}
    if cid is None:
        del consent["id"]
        response = fhir.post("/Consent", json=consent)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])
    consent["id"] = cid
    response = fhir.put(f"/Consent/{cid}", json=consent)
    assert response.status_code == 200, response.text
    return cid


def _jobs(adapter: Adapter) -> list[JobSummary]:
    with adapter.outbox() as box:
        return box.list()


def _done(adapter: Adapter) -> int:
    with adapter.outbox() as box:
        return box.notification_states().get("done", 0)


def _gene(resource: Resource) -> str | None:
    for component in resource.get("component", []):
        if component["code"]["coding"][0]["code"] == GENE_STUDIED:
            value = component["valueCodeableConcept"]
            return str(value.get("text") or value["coding"][0]["display"])
    return None


def _variants(fhir: httpx.Client, patient: str) -> list[Resource]:
    page = fhir.get("/Observation", params={"subject": patient, "_count": "500"}).json()
    found = [e["resource"] for e in page.get("entry", [])]
    return [r for r in found if VARIANT in r.get("meta", {}).get("profile", [])]


# --- 1. a VCF DocumentReference, end to end ---------------------------------------------------


@pytest.mark.hapi
def test_a_vcf_document_on_hapi_comes_back_as_a_searchable_report(
    adapter: Adapter, fhir: httpx.Client
) -> None:
    _subscribe(adapter, fhir, f"{adapter.base}/v1/notifications")
    value, patient = _patient(fhir)
    document = _document(fhir, patient, SNV)
    (job,) = _until(lambda: _jobs(adapter))
    assert job.state is JobState.PENDING and job.server == "hapi"
    assert value not in orjson.dumps(job.as_json()).decode()
    done = asyncio.run(adapter.sender().drain())
    assert [(s.id, s.state) for s in done] == [(job.id, JobState.SENT)], done
    reports = fhir.get("/DiagnosticReport", params={"subject": patient}).json()
    (report,) = [e["resource"] for e in reports["entry"]]
    assert report["subject"]["reference"] == patient
    assert report["result"], "the report lists its results"
    assert _variants(fhir, patient)
    assert document.startswith("DocumentReference/")


# --- 2. Consent withdrawn, then given again ----------------------------------------------------


@pytest.mark.hapi
def test_a_revoked_consent_holds_the_patients_jobs_and_an_opt_in_resumes_them(
    adapter: Adapter, fhir: httpx.Client
) -> None:
    _policy(adapter.policy, no_consent__purposes=["ETREAT"])  # no consent: no TREAT send
    _subscribe(adapter, fhir, f"{adapter.base}/v1/notifications")
    _, patient = _patient(fhir)
    consent = _consent(fhir, patient)
    _document(fhir, patient, SNV)
    (job,) = _until(lambda: _jobs(adapter))
    _consent(fhir, patient, "inactive", consent)
    _until(lambda: _jobs(adapter)[0].state is JobState.HELD)
    (held,) = _jobs(adapter)
    assert held.reason is not None and "consent" in held.reason
    _consent(fhir, patient, "active", consent)
    _until(lambda: _jobs(adapter)[0].state is JobState.PENDING)
    done = asyncio.run(adapter.sender().drain())
    assert [(s.id, s.state) for s in done] == [(job.id, JobState.SENT)]


# --- 3. duplicates and out-of-order deliveries -------------------------------------------------


@pytest.mark.hapi
def test_duplicate_and_out_of_order_deliveries_change_nothing(
    adapter: Adapter, fhir: httpx.Client
) -> None:
    _policy(adapter.policy, no_consent__purposes=["ETREAT"])
    with FaultProxy(adapter.base) as proxy:
        _subscribe(adapter, fhir, f"{proxy.url}/v1/notifications")
        _, patient = _patient(fhir)
        consent = _consent(fhir, patient)
        _until(lambda: _done(adapter) >= 1)
        proxy.duplicate(method="PUT", path="/DocumentReference/")
        _document(fhir, patient, SNV)
        (job,) = _until(lambda: _jobs(adapter))
        delivered = [e for e in proxy.exchanges if "/DocumentReference/" in e.target]
        assert len(delivered) == 1 and proxy.pending == 0  # one request, forwarded twice
        settled = _until(lambda: _done(adapter) >= 2 and _done(adapter))
        time.sleep(2)  # a second conversion, were there one, would have queued by now
        assert [j.id for j in _jobs(adapter)] == [job.id]
        with adapter.outbox() as box:
            assert sum(box.notification_states().values()) == settled == 2  # copy unrecorded
        # the withdrawal is held back and arrives after the renewal: the server's state wins
        proxy.hold_back(method="PUT", path="/Consent/")
        before = _done(adapter)
        _consent(fhir, patient, "inactive", consent)
        _consent(fhir, patient, "active", consent)
        _until(lambda: _done(adapter) >= before + 2)
        assert proxy.pending == 0
    (after,) = _jobs(adapter)
    assert (after.id, after.state) == (job.id, JobState.PENDING)


# --- 4. retraction of sent secondary findings --------------------------------------------------


@pytest.mark.hapi
def test_withdrawn_secondary_findings_are_entered_in_error_and_primary_ones_stay(
    adapter: Adapter, fhir: httpx.Client
) -> None:
    _policy(adapter.policy, retract_secondary_findings__action="entered-in-error")
    _subscribe(adapter, fhir, f"{adapter.base}/v1/notifications")
    _, patient = _patient(fhir)
    consent = _consent(fhir, patient)
    _until(lambda: _done(adapter) >= 1)
    _document(fhir, patient, SECONDARY)
    _until(lambda: _jobs(adapter))
    (sent,) = asyncio.run(adapter.sender().drain())
    assert sent.state is JobState.SENT
    before = [(_gene(v), v["status"]) for v in _variants(fhir, patient)]
    assert {"BRCA2", "CFTR"} <= {g for g, _ in before} and {s for _, s in before} == {"final"}
    _consent(fhir, patient, "inactive", consent)

    def retracted() -> bool:
        return all(
            v["status"] == "entered-in-error"
            for v in _variants(fhir, patient)
            if _gene(v) in LISTED
        )

    _until(retracted)
    variants = _variants(fhir, patient)
    statuses = {(_gene(v), v["status"]) for v in variants}
    assert ("CFTR", "final") in statuses
    assert {s for g, s in statuses if g in LISTED} == {"entered-in-error"}
    assert len(variants) == len(before)  # none deleted
    events = [orjson.loads(line) for line in adapter.audit.read_bytes().splitlines()]
    retractions = [e for e in events if e.get("action") == "U"]
    listed = [v for v in variants if _gene(v) in LISTED]
    assert len(retractions) >= len(listed) > 0
    assert {e["subtype"][0]["code"] for e in retractions} == {"update"}
    retracted_ids = {e["entity"][0]["what"]["reference"] for e in retractions}
    assert retracted_ids >= {f"{adapter.config.base_url}/Observation/{v['id']}" for v in listed}


# --- 5. topic-based notifications: a lost event found again ------------------------------------

#: HAPI reads R4 topics into its registry on a 10 s refresh (see test_hapi_server)
TOPIC_REFRESH_S = 20.0


def _watermark(adapter: Adapter) -> int:
    with adapter.outbox() as box:
        (topic,) = [r for r in box.registrations() if r.topic is not None]
        return box.ledger().watermark(topic.subscribed.key).number


@pytest.mark.hapi
def test_a_lost_topic_event_is_found_again_by_searching_since_the_last_event_seen(
    adapter: Adapter, fhir: httpx.Client
) -> None:
    """Backport topic-based notifications only: the adapter's R4 rest-hook Subscriptions are
    removed. The proxy loses the event of a first VCF document; the next event's number shows
    the gap, and after the recovery wait the adapter searches its criteria since the last
    event it saw (HAPI has no ``$events``), so both documents become reports on HAPI."""
    topic = f"http://example.org/fhir/SubscriptionTopic/genomics-{uuid.uuid4().hex[:8]}"
    body = r4_topic(topic, "DocumentReference", "Consent", filter_parameter="status")
    assert fhir.post("/Basic", json=body).status_code == 201
    written = time.monotonic()
    with FaultProxy(adapter.base) as proxy:
        _subscribe(adapter, fhir, f"{proxy.url}/v1/notifications", [topic])
        with adapter.outbox() as box:
            for registration in box.registrations():
                if registration.topic is None:
                    assert fhir.delete(f"/Subscription/{registration.subscription_id}").is_success
        time.sleep(max(0.0, written + TOPIC_REFRESH_S - time.monotonic()))
        _, patient = _patient(fhir)
        # the topic may reach HAPI's registry later under load: a Consent is written until
        # an event arrives, which sets the mark the recovery searches from
        deadline = time.monotonic() + WAIT_S
        while not (seen := _watermark(adapter)):
            answered = [(e.method, e.status) for e in proxy.exchanges]
            assert time.monotonic() < deadline, f"no topic event in {WAIT_S} s: {answered}"
            _consent(fhir, patient)
            time.sleep(5)
        proxy.lose(method="POST", body=b'"DocumentReference"')
        lost = _document(fhir, patient, SNV)
        _until(lambda: proxy.pending == 0)
        _document(fhir, patient, SECONDARY)
        jobs = _until(lambda: len(_jobs(adapter)) == 2 and _jobs(adapter))
        assert _until(lambda: _watermark(adapter) >= seen + 2)  # the gap is closed
    (dropped,) = [e for e in proxy.exchanges if e.fault is not None]
    assert lost.split("/")[1].encode() in dropped.body and dropped.status == 200
    done = asyncio.run(adapter.sender().drain())
    assert sorted((s.id, s.state) for s in done) == sorted((j.id, JobState.SENT) for j in jobs)
    reports = fhir.get("/DiagnosticReport", params={"subject": patient}).json()
    assert reports["total"] == 2
