"""A report onto real servers: HAPI FHIR and sekmet-fhir (with SMART Backend Services). The
patient resolved by MRN, the Bundle split to a small limit with every reference still
resolvable, batches where transactions are not used, a push resumed from its stored progress,
and no duplicates on any resend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fault_proxy import FaultKind, FaultProxy
from fhir_servers import Hapi
from sekmet_server import Sekmet

from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
from adapter.errors import PatientNotResolved
from adapter.model import PatientRef
from adapter.sync.auth import StaticBearer, generate_key, jwks
from adapter.sync.client import FhirClient, client_for
from adapter.sync.config import ServerConfig, SmartBackendAuth
from adapter.sync.push import Progress, PushResult, push_bundle, resolve_patient

VCF = Path(__file__).resolve().parent / "data" / "vcf" / "vep_sample.vcf"
MRN = "https://hospital.test/mrn"
T = TypeVar("T")


def _on(hapi: Hapi, call: Callable[[FhirClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with FhirClient(hapi.base) as client:
            return await call(client)

    return asyncio.run(go())


def _new_patient(fhir: httpx.Client) -> str:
    value = f"PUSH-{uuid.uuid4()}"
    body = {"resourceType": "Patient", "identifier": [{"system": MRN, "value": value}]}
    assert fhir.post("/Patient", json=body).status_code == 201
    return value


def _report(value: str, folder: Path) -> dict[str, Any]:
    out = folder / f"{value}.json"
    options = ConvertOptions(
        patient=PatientRef(identifier_system=MRN, identifier_value=value),
        issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        output_format=OutputFormat.TRANSACTION,
    )
    convert_vcf(VCF, out, options)
    bundle: dict[str, Any] = orjson.loads(out.read_bytes())
    return bundle


def _push(hapi: Hapi, bundle: dict[str, Any], value: str, **options: Any) -> tuple[str, PushResult]:
    async def go(client: FhirClient) -> tuple[str, PushResult]:
        patient = await resolve_patient(client, MRN, value)
        rewrite = {f"Patient?identifier={MRN}|{value}": patient}
        return patient, await push_bundle(client, bundle, rewrite=rewrite, **options)

    return _on(hapi, go)


def _stored(fhir: httpx.Client, patient: str) -> dict[str, list[dict[str, Any]]]:
    by_type = {}
    for kind in ("Observation", "DiagnosticReport", "Procedure", "Provenance"):
        params = {"_count": "500"}
        params["target" if kind == "Provenance" else "subject"] = patient
        page = fhir.get(f"/{kind}", params=params).json()
        by_type[kind] = [e["resource"] for e in page.get("entry", [])]
    return by_type


def _references_resolve(fhir: httpx.Client, resources: list[dict[str, Any]]) -> list[str]:
    """Every literal reference of the stored resources that the server cannot read."""
    refs = {
        r
        for resource in resources
        for r in orjson.dumps(resource).decode().split('"reference":"')[1:]
    }
    missing = []
    for ref in {r.split('"', 1)[0] for r in refs}:
        assert not ref.startswith("urn:"), f"an unresolved fullUrl reached the server: {ref}"
        if fhir.get(f"/{ref}").status_code != 200:
            missing.append(ref)
    return missing


@pytest.mark.hapi
def test_a_split_transaction_arrives_whole_and_a_resend_duplicates_nothing(
    hapi: Hapi, fhir: httpx.Client, tmp_path: Path
) -> None:
    value = _new_patient(fhir)
    bundle = _report(value, tmp_path)
    patient, result = _push(hapi, bundle, value, max_entries=7)
    assert result.entries == len(bundle["entry"])
    assert result.chunks >= len(bundle["entry"]) // 7
    stored = _stored(fhir, patient)
    everything = [r for kind in stored.values() for r in kind]
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert {k: len(v) for k, v in stored.items()} == {k: kinds.count(k) for k in stored}
    assert _references_resolve(fhir, everything) == []
    _push(hapi, bundle, value, max_entries=50)  # other chunks, same resources
    assert {k: len(v) for k, v in _stored(fhir, patient).items()} == {
        k: len(v) for k, v in stored.items()
    }


@pytest.mark.hapi
def test_batches_follow_dependency_levels_when_transactions_are_not_used(
    hapi: Hapi, fhir: httpx.Client, tmp_path: Path
) -> None:
    value = _new_patient(fhir)
    bundle = _report(value, tmp_path)
    patient, result = _push(hapi, bundle, value, max_entries=25, transactions=False)
    stored = [r for kind in _stored(fhir, patient).values() for r in kind]
    assert len(stored) == result.entries == len(bundle["entry"])
    assert _references_resolve(fhir, stored) == []


@pytest.mark.hapi
def test_a_push_resumes_from_its_stored_progress(
    hapi: Hapi, fhir: httpx.Client, tmp_path: Path
) -> None:
    value = _new_patient(fhir)
    bundle = _report(value, tmp_path)
    saved: list[dict[str, Any]] = []

    class Killed(Exception):
        """The process dying after its second chunk's progress was stored."""

    async def store_then_die(progress: Progress) -> None:
        saved.append(progress.to_json())
        if len(progress.done) == 2:
            raise Killed

    with pytest.raises(Killed):
        _push(hapi, bundle, value, max_entries=6, on_chunk=store_then_die)
    resumed: list[int] = []

    async def count(progress: Progress) -> None:
        resumed.append(len(progress.done))

    start = Progress.from_json(orjson.loads(orjson.dumps(saved[-1])))
    patient, result = _push(hapi, bundle, value, max_entries=6, progress=start, on_chunk=count)
    assert resumed == list(range(3, result.chunks + 1))
    stored = [r for kind in _stored(fhir, patient).values() for r in kind]
    assert len(stored) == len(bundle["entry"])
    assert set(result.ids.values()) == {f"{r['resourceType']}/{r['id']}" for r in stored}


@pytest.mark.hapi
def test_an_unknown_or_ambiguous_patient_stops_the_push(hapi: Hapi, fhir: httpx.Client) -> None:
    value = f"TWICE-{uuid.uuid4()}"
    with pytest.raises(PatientNotResolved, match="no Patient has") as none:
        _on(hapi, lambda c: resolve_patient(c, MRN, value))
    body = {"resourceType": "Patient", "identifier": [{"system": MRN, "value": value}]}
    for _ in range(2):
        assert fhir.post("/Patient", json=body).status_code == 201
    with pytest.raises(PatientNotResolved, match="2 Patients have") as two:
        _on(hapi, lambda c: resolve_patient(c, MRN, value))
    assert value not in str(none.value) + str(two.value)  # the MRN is PHI


def test_sekmet_takes_a_split_report_over_smart_backend_services_once(
    sekmet: Sekmet, tmp_path: Path
) -> None:
    pem, _ = generate_key("ES384")
    key = tmp_path / "client.pem"
    key.write_bytes(pem)
    smart = SmartBackendAuth("fhir-genomics-push", key, "ES384")
    sekmet.register({smart.client_id: jwks([load_pem_private_key(pem, None)])})
    opened = {"Authorization": f"Bearer {sekmet.bearer_token}"}
    with httpx.Client(base_url=sekmet.base, headers=opened, timeout=60) as fhir:
        value = _new_patient(fhir)
        bundle = _report(value, tmp_path)
        config = ServerConfig("sekmet", sekmet.base, smart, max_entries=9)

        async def push() -> tuple[str, PushResult]:
            async with client_for(config) as client:
                patient = await resolve_patient(client, MRN, value)
                rewrite = {f"Patient?identifier={MRN}|{value}": patient}
                return patient, await push_bundle(
                    client, bundle, max_entries=9, rewrite=rewrite, concurrency=4
                )

        patient, first = asyncio.run(push())
        stored = _stored(fhir, patient)
        _, again = asyncio.run(push())
        assert first.chunks > 1
        assert sum(len(v) for v in stored.values()) == len(bundle["entry"])
        assert {k: len(v) for k, v in _stored(fhir, patient).items()} == {
            k: len(v) for k, v in stored.items()
        }
        assert again.ids == first.ids
        everything = [r for kind in stored.values() for r in kind]
        assert _references_resolve(fhir, everything) == []


def test_through_throttling_outages_and_lost_answers_sekmet_ends_with_one_copy(
    sekmet: Sekmet, tmp_path: Path
) -> None:
    """The nasty case first: the server commits a chunk and the answer is lost, so the same
    chunk is sent again; then 429 with Retry-After, a 503 and a slow answer. Every resource
    arrives exactly once."""
    opened = {"Authorization": f"Bearer {sekmet.bearer_token}"}
    with (
        httpx.Client(base_url=sekmet.base, headers=opened, timeout=60) as fhir,
        FaultProxy(sekmet.base) as proxy,
    ):
        value = _new_patient(fhir)
        bundle = _report(value, tmp_path)
        proxy.drop(after_forwarding=True, method="POST").throttle("1", method="POST")
        proxy.unavailable(method="POST").delay(0.5, method="POST")

        async def push() -> tuple[str, PushResult]:
            async with FhirClient(proxy.url, auth=StaticBearer(sekmet.bearer_token)) as client:
                patient = await resolve_patient(client, MRN, value)
                rewrite = {f"Patient?identifier={MRN}|{value}": patient}
                return patient, await push_bundle(client, bundle, max_entries=9, rewrite=rewrite)

        patient, result = asyncio.run(push())
        assert proxy.pending == 0
        faults = [e.fault for e in proxy.exchanges if e.fault is not None]
        assert faults == [
            FaultKind.DROP_AFTER, FaultKind.THROTTLE, FaultKind.UNAVAILABLE, FaultKind.DELAY
        ]  # fmt: skip
        stored = [r for kind in _stored(fhir, patient).values() for r in kind]
        assert len(stored) == result.entries == len(bundle["entry"])
        identifiers = [r["identifier"][0]["value"] for r in stored if r.get("identifier")]
        assert len(identifiers) == len(set(identifiers))
