"""The service's sync endpoints over a real socket: a job's state for operators (never its
Bundle or the patient's identifier), Prometheus metrics, each behind its scope."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from api_tokens import AUDIENCE, token, write_jwks
from local_service import serving

from adapter.access import AUDIENCE_ENV, JWKS_ENV, SCOPES, Access
from adapter.service import create_app
from adapter.sync.outbox import open_outbox, patient_key

MRN_VALUE = "MRN-SECRET-4711"


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
