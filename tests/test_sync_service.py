"""The service's sync endpoints over a real socket: a job's state for operators (never its
Bundle or the patient's identifier), Prometheus metrics, each behind its scope; and its own
background work (sending, notifications left over)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from api_tokens import AUDIENCE, token, write_jwks
from local_service import serving
from sekmet_server import Sekmet

from adapter.access import AUDIENCE_ENV, JWKS_ENV, SCOPES, Access
from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
from adapter.disclosure import AUDIT_LOG_ENV
from adapter.model import PatientRef
from adapter.service import create_app
from adapter.sync.config import BearerAuth, ServerConfig
from adapter.sync.inbound import Inbound
from adapter.sync.outbox import Registration, open_outbox, patient_key
from adapter.sync.subscribe import R4_CRITERIA
from adapter.sync.worker import job_keys, send_request

MRN_VALUE = "MRN-SECRET-4711"
MRN_SYSTEM = "https://hospital.test/mrn"
VCF = Path(__file__).resolve().parent / "data" / "vcf" / "snv.vcf"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The base URL, and the id of one queued job."""
    folder = tmp_path_factory.mktemp("sync-service")
    url = f"sqlite:///{folder / 'outbox.db'}"
    with open_outbox(url) as outbox:
        bundle = b'{"resourceType": "Bundle", "type": "transaction", "entry": []}'
        key = patient_key("https://hospital.test/mrn", MRN_VALUE)
        job = outbox.enqueue("hospital", "urn:ietf:rfc:3986|urn:uuid:r1", key, bundle)
    environ = {JWKS_ENV: str(write_jwks(folder / "jwks.json")), AUDIENCE_ENV: AUDIENCE}
    with serving(create_app(Access.from_env(environ), outbox_url=url)) as base:
        yield base, job.id


def _get(base: str, path: str, scope: str) -> httpx.Response:
    return httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {token(scope=scope)}"})


def test_a_job_is_shown_without_its_bundle_or_identifier(served: tuple[str, str]) -> None:
    base, job_id = served
    answer = _get(base, f"/v1/jobs/{job_id}", SCOPES["jobs.read"])
    assert answer.status_code == 200
    shown = answer.json()
    assert (shown["id"], shown["state"], shown["server"]) == (job_id, "pending", "hospital")
    assert "bundle" not in shown and "request" not in shown
    assert MRN_VALUE not in answer.text


def test_an_unknown_job_is_a_404_outcome(served: tuple[str, str]) -> None:
    answer = _get(served[0], "/v1/jobs/no-such-job", SCOPES["jobs.read"])
    assert answer.status_code == 404
    assert answer.json()["issue"][0]["code"] == "not-found"


def test_jobs_and_metrics_need_their_scopes(served: tuple[str, str]) -> None:
    base, job_id = served
    assert _get(base, f"/v1/jobs/{job_id}", SCOPES["convert"]).status_code == 403
    assert _get(base, "/metrics", SCOPES["jobs.read"]).status_code == 403
    assert httpx.get(f"{base}/metrics").status_code == 401


def test_metrics_count_jobs_by_state(served: tuple[str, str]) -> None:
    answer = _get(served[0], "/metrics", SCOPES["metrics"])
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = answer.text.splitlines()
    assert 'fhir_genomics_jobs{state="pending"} 1' in lines
    assert "# TYPE fhir_genomics_job_retries_total counter" in lines
    assert "fhir_genomics_job_retries_total 0" in lines


def test_the_service_sends_due_jobs_by_itself(
    sekmet: Sekmet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --sync-every``: a report queued in the outbox reaches the server without any
    other command, and the job is shown as sent, its decision in the deployment's audit log."""
    audit = tmp_path / "audit.ndjson"
    monkeypatch.setenv(AUDIT_LOG_ENV, str(audit))
    value = f"SELF-{uuid.uuid4()}"
    opened = {"Authorization": f"Bearer {sekmet.bearer_token}"}
    patient = {"resourceType": "Patient", "identifier": [{"system": MRN_SYSTEM, "value": value}]}
    assert httpx.post(f"{sekmet.base}/Patient", json=patient, headers=opened).status_code == 201
    out = tmp_path / "report.json"
    options = ConvertOptions(
        patient=PatientRef(identifier_system=MRN_SYSTEM, identifier_value=value),
        issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        output_format=OutputFormat.TRANSACTION,
    )
    convert_vcf(VCF, out, options)
    bundle = orjson.loads(out.read_bytes())
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    with open_outbox(url) as outbox:
        report, key = job_keys(bundle)
        job = outbox.enqueue(
            "sekmet", report, key, out.read_bytes(), request=send_request(purpose="TREAT")
        )
    servers = {"sekmet": ServerConfig("sekmet", sekmet.base, BearerAuth(sekmet.bearer_token))}
    environ = {JWKS_ENV: str(write_jwks(tmp_path / "jwks.json")), AUDIENCE_ENV: AUDIENCE}
    app = create_app(Access.from_env(environ), outbox_url=url, servers=servers, sync_every_s=0.2)
    with serving(app) as base:
        deadline = time.monotonic() + 60
        while (shown := _job(base, job.id))["state"] != "sent":
            assert time.monotonic() < deadline, shown
            time.sleep(0.2)
        metrics = _get(base, "/metrics", SCOPES["metrics"]).text
    assert 'fhir_genomics_sent_resources_total{server="sekmet"}' in metrics
    assert 'fhir_genomics_jobs{state="sent"} 1' in metrics.splitlines()
    assert '"outcome":"0"' in audit.read_text()  # the send's decision, permitted


def _job(base: str, job_id: str) -> dict[str, object]:
    shown: dict[str, object] = _get(base, f"/v1/jobs/{job_id}", SCOPES["jobs.read"]).json()
    return shown


def test_notifications_left_over_from_before_a_restart_are_worked_off_at_start_up(
    sekmet: Sekmet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Consent notification recorded (so acknowledged) by a service that stopped before
    acting on it is worked off by the next service at start-up: no ``--sync-every``, no new
    notification needed."""
    monkeypatch.setenv(AUDIT_LOG_ENV, str(tmp_path / "audit.ndjson"))
    opened = {"Authorization": f"Bearer {sekmet.bearer_token}"}
    patient = {"resourceType": "Patient", "identifier": [{"system": MRN_SYSTEM, "value": "L-1"}]}
    created = httpx.post(f"{sekmet.base}/Patient", json=patient, headers=opened)
    consent = {
        "resourceType": "Consent",
        "id": f"c-{uuid.uuid4().hex[:8]}",
        "status": "inactive",
        "patient": {"reference": f"Patient/{created.json()['id']}"},
    }
    servers = {"sekmet": ServerConfig("sekmet", sekmet.base, BearerAuth(sekmet.bearer_token))}
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    key = uuid.uuid4().hex[:24]
    with open_outbox(url) as outbox:
        outbox.register(
            Registration(
                key, "sekmet", sekmet.base, "s-1", R4_CRITERIA[1],
                f"https://adapter.test/v1/notifications/{key}", send_request(purpose="TREAT"),
                (R4_CRITERIA[1],),
            )
        )  # fmt: skip
        inbound = Inbound(outbox, servers, audit_log=tmp_path / "audit.ndjson")
        named = f"Consent/{consent['id']}"
        assert asyncio.run(inbound.receive(key, orjson.dumps(consent), named)) is not None
        assert outbox.notification_states() == {"pending": 1}
    environ = {JWKS_ENV: str(write_jwks(tmp_path / "jwks.json")), AUDIENCE_ENV: AUDIENCE}
    app = create_app(
        Access.from_env(environ), outbox_url=url, servers=servers, notifications_every_s=3600
    )
    with serving(app), open_outbox(url) as outbox:
        deadline = time.monotonic() + 60
        while (states := outbox.notification_states()) != {"done": 1}:
            assert time.monotonic() < deadline, states
            time.sleep(0.2)


def test_a_service_without_subscriptions_creates_no_outbox(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    environ = {JWKS_ENV: str(write_jwks(tmp_path / "jwks.json")), AUDIENCE_ENV: AUDIENCE}
    app = create_app(Access.from_env(environ), outbox_url=url, notifications_every_s=0.05)
    with serving(app) as base:
        assert httpx.get(f"{base}/healthz").status_code == 200
        time.sleep(0.3)  # several rounds
    assert list(tmp_path.iterdir()) == [tmp_path / "jwks.json"]
