"""``POST /v1/reports`` over a real socket: an HL7 v2 message or a Phenopacket in, its Bundle
out under the deployment's policy; bad input answered with an OperationOutcome naming the
place (``OBX-3``, a JSON path), never with a traceback or an identifier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from local_service import serving

from adapter.access import Access
from adapter.disclosure import AUDIT_LOG_ENV
from adapter.intake import AUTHORITIES_ENV, SUBJECT_SYSTEM_ENV
from adapter.service import create_app

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = ROOT / "examples" / "hl7v2"
PACKETS = ROOT / "examples" / "phenopackets"
BAD = ROOT / "tests" / "data" / "hl7v2"
HL7V2 = {"Content-Type": "application/hl7-v2"}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(AUDIT_LOG_ENV, str(folder / "audit.ndjson"))
        patch.setenv(AUTHORITIES_ENV, "HOSP=https://hospital.example.org/mrn")
        patch.setenv(SUBJECT_SYSTEM_ENV, "https://hospital.test/mrn")
        with serving(create_app(Access.open())) as base:
            yield base


def post(base_url: str, body: bytes, headers: dict[str, str], **params: str) -> httpx.Response:
    query = {"purpose": "TREAT", **params}
    return httpx.post(f"{base_url}/v1/reports", content=body, headers=headers, params=query)


def test_a_message_becomes_its_transaction_bundle(base_url: str) -> None:
    """The somatic report names no ACMG gene: every variant is a primary result."""
    answer = post(base_url, (MESSAGES / "somatic-tumor.hl7").read_bytes(), HL7V2)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    bundle = answer.json()
    assert bundle["type"] == "transaction"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("DiagnosticReport") == 1 and "Provenance" in kinds
    assert all(e["request"]["method"] == "PUT" for e in bundle["entry"])


def test_a_phenopacket_becomes_a_collection_on_asking(base_url: str) -> None:
    data = (PACKETS / "recessive.json").read_bytes()
    answer = post(base_url, data, {"Content-Type": "application/json"}, format="collection")
    assert answer.status_code == 200, answer.text
    assert answer.json()["type"] == "collection"


@pytest.mark.parametrize(
    ("name", "status", "expression"),
    [
        ("unknown_loinc_in_variant.hl7", 422, "OBX-3"),
        ("wrong_message_type.hl7", 422, "MSH-9.1"),
        ("missing_msh.hl7", 422, None),  # nothing to point at: the message is not HL7 v2
    ],
)
def test_a_bad_message_is_an_outcome_naming_its_field(
    base_url: str, name: str, status: int, expression: str | None
) -> None:
    answer = post(base_url, (BAD / name).read_bytes(), HL7V2)
    assert answer.status_code == status, answer.text
    (issue,) = answer.json()["issue"]
    assert issue["severity"] == "error" and issue["code"] == "structure"
    assert issue.get("expression") == ([expression] if expression else None)
    assert "MRN-" not in answer.text


def test_other_media_and_bad_json_are_refused(base_url: str) -> None:
    wrong = post(base_url, b"<xml/>", {"Content-Type": "application/xml"})
    assert wrong.status_code == 415
    assert wrong.json()["issue"][0]["code"] == "not-supported"
    broken = post(base_url, b'{"id": ', {"Content-Type": "application/json"})
    assert broken.status_code == 422
    assert broken.json()["resourceType"] == "OperationOutcome"
    unknown = post(base_url, b"", HL7V2, sample="x")
    assert unknown.status_code == 400 and "sample" in unknown.text


def test_a_refused_purpose_returns_no_bundle(base_url: str) -> None:
    answer = post(base_url, (MESSAGES / "somatic-tumor.hl7").read_bytes(), HL7V2, purpose="HMARKT")
    assert answer.status_code == 403
    assert answer.json()["resourceType"] == "OperationOutcome"
