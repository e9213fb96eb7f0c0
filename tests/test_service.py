"""The HTTP API, served by a real uvicorn on 127.0.0.1 and called over a socket."""

from __future__ import annotations

import gzip
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from local_service import serving

from adapter.access import Access
from adapter.disclosure import AUDIT_LOG_ENV
from adapter.errors import OptionsError
from adapter.readers.annotations import PrimaryRule
from adapter.service import UPLOAD_PARTS, create_app, options_from_fields

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "NA12878-panel.vcf.gz"
FIELDS = {"patient_identifier": "http://hospital.example.org/mrn|MRN-0001", "purpose": "TREAT"}


@pytest.fixture(scope="module")
def audit_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The deployment's audit log, where the service appends every decision."""
    path = tmp_path_factory.mktemp("audit") / "audit.ndjson"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(AUDIT_LOG_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def base_url(audit_log: Path) -> Iterator[str]:
    with serving(create_app(Access.open())) as base:
        yield base


def post(base_url: str, content: bytes, name: str = "x.vcf.gz", **fields: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/v1/convert",
        files={"file": (name, content, "application/octet-stream")},
        data={**FIELDS, **fields},
        timeout=60,
    )


def test_healthz(base_url: str) -> None:
    r = httpx.get(f"{base_url}/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_openapi_documents_convert(base_url: str) -> None:
    spec = httpx.get(f"{base_url}/openapi.json").json()
    assert "/v1/convert" in spec["paths"]


def test_convert_bgzipped_upload_returns_a_validated_bundle(base_url: str) -> None:
    r = post(base_url, EXAMPLE.read_bytes(), validate="true", issued="2026-01-15T09:30:00Z")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    bundle = r.json()
    assert bundle["type"] == "transaction"
    assert any(e["resource"]["resourceType"] == "DiagnosticReport" for e in bundle["entry"])


def test_plain_upload_with_options_in_the_query(base_url: str) -> None:
    plain = gzip.decompress(EXAMPLE.read_bytes())
    r = httpx.post(
        f"{base_url}/v1/convert",
        params={"format": "collection", "patient": "p-42", "purpose": "TREAT"},
        files={"file": ("panel.vcf", plain)},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["type"] == "collection"
    subjects = {e["resource"].get("subject", {}).get("reference") for e in bundle["entry"]}
    assert "Patient/p-42" in subjects


def test_ndjson_format_streams_ndjson(base_url: str) -> None:
    r = post(base_url, EXAMPLE.read_bytes(), format="ndjson")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+ndjson")
    lines = r.content.splitlines()
    assert all(orjson.loads(line)["resourceType"] for line in lines)


def test_not_a_vcf_is_415_operation_outcome(base_url: str) -> None:
    r = post(base_url, b"this is not a VCF at all\n", name="notes.txt")
    assert r.status_code == 415
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"


def test_truncated_gzip_is_422(base_url: str) -> None:
    data = EXAMPLE.read_bytes()
    r = post(base_url, data[: len(data) // 2])
    assert r.status_code == 422
    assert r.json()["resourceType"] == "OperationOutcome"


def test_missing_file_and_bad_options_are_400(base_url: str) -> None:
    r = httpx.post(f"{base_url}/v1/convert", data=FIELDS, timeout=30)
    assert r.status_code == 400
    assert "file" in r.json()["issue"][0]["diagnostics"]
    r = post(base_url, EXAMPLE.read_bytes(), build="hg19")
    assert r.status_code == 400
    assert "GRCh38" in r.json()["issue"][0]["diagnostics"]
    r = post(base_url, EXAMPLE.read_bytes(), colour="blue")
    assert r.status_code == 400
    assert "colour" in r.json()["issue"][0]["diagnostics"]
    for field, value in (("tmb", "many"), ("msi", "high")):
        r = post(base_url, EXAMPLE.read_bytes(), **{field: value})
        assert r.status_code == 400
        assert r.json()["issue"][0]["expression"] == [field]


def test_tumor_measures_as_form_fields(base_url: str) -> None:
    r = post(base_url, EXAMPLE.read_bytes(), tmb="4.25", msi="MSI-H", format="collection")
    assert r.status_code == 200, r.text
    values = [e["resource"].get("valueQuantity") for e in r.json()["entry"]]
    assert {"value": 4.25, "unit": "mutations/Mb"} in values


def test_unknown_sample_is_422_and_names_the_samples(base_url: str) -> None:
    r = post(base_url, EXAMPLE.read_bytes(), sample="NOBODY")
    assert r.status_code == 422
    assert "NOBODY" in r.json()["issue"][0]["diagnostics"]


KNOWLEDGE = ROOT / "examples" / "actionability.tsv"
IMPLICATION = "StructureDefinition/therapeutic-implication"


def post_parts(base_url: str, parts: dict[str, tuple[str, bytes]], **fields: str) -> httpx.Response:
    """A conversion of the example with other file parts beside the VCF."""
    files = {"file": ("panel.vcf.gz", EXAMPLE.read_bytes()), **parts}
    return httpx.post(f"{base_url}/v1/convert", files=files, data={**FIELDS, **fields}, timeout=60)


def test_knowledge_as_a_file_part_yields_its_implications(base_url: str) -> None:
    knowledge = ("actionability.tsv", KNOWLEDGE.read_bytes())
    r = post_parts(base_url, {"knowledge": knowledge}, msi="MSI-H", validate="true")
    assert r.status_code == 200, r.text
    assert r.content.count(IMPLICATION.encode()) == 1
    assert b"Actionability knowledge: Example oncology actionability 2026-11" in r.content


def test_a_bad_uploaded_file_is_422_naming_its_part_not_the_server_path(base_url: str) -> None:
    bad = KNOWLEDGE.read_bytes().replace(b"\tresponsive\t", b"\tworks well\t", 1)
    r = post_parts(base_url, {"knowledge": ("mine.tsv", bad)})
    assert r.status_code == 422
    issue = r.json()["issue"][0]
    assert r.json()["resourceType"] == "OperationOutcome"
    assert issue["diagnostics"].startswith("part 'knowledge' (mine.tsv):")
    assert "fhir-genomics-" not in issue["diagnostics"]


def test_uploads_as_text_twice_or_under_another_name_are_400(base_url: str) -> None:
    r = post_parts(base_url, {}, knowledge=str(KNOWLEDGE))  # a server path is never read
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["knowledge"]
    assert "-F knowledge=@FILE" in r.json()["issue"][0]["diagnostics"]
    r = httpx.post(
        f"{base_url}/v1/convert",
        params={"pgx": "/etc/passwd"},
        files={"file": ("panel.vcf.gz", EXAMPLE.read_bytes())},
        data=FIELDS,
        timeout=60,
    )
    assert (r.status_code, r.json()["issue"][0]["expression"]) == (400, ["pgx"])
    twice = [
        ("file", ("panel.vcf.gz", EXAMPLE.read_bytes())),
        ("pgx", ("a.tsv", b"gene\tdiplotype\tphenotype\tactivity_score\n")),
        ("pgx", ("b.tsv", b"gene\tdiplotype\tphenotype\tactivity_score\n")),
    ]
    r = httpx.post(f"{base_url}/v1/convert", files=twice, data=FIELDS, timeout=60)
    assert (r.status_code, r.json()["issue"][0]["expression"]) == (400, ["pgx"])
    r = post_parts(base_url, {"knowlege": ("k.tsv", KNOWLEDGE.read_bytes())})
    assert r.status_code == 400
    assert "knowlege" in r.json()["issue"][0]["diagnostics"]


def test_file_parts_fill_the_options_the_cli_names_alike(tmp_path: Path) -> None:
    uploads = {part: [tmp_path / part / "x"] for part in UPLOAD_PARTS if part != "consent"}
    options = options_from_fields({"patient": ["p-1"]}, input_name="x.vcf", uploads=uploads)
    assert (options.knowledge, options.classifications, options.pharmacogenomics) == (
        uploads["knowledge"][0],
        uploads["classifications"][0],
        uploads["pgx"][0],
    )
    bare = options_from_fields({"patient": ["p-1"]}, input_name="x.vcf")
    assert (bare.knowledge, bare.classifications, bare.pharmacogenomics) == (None, None, None)


def test_transcript_order_is_a_field_checked_as_the_cli_checks_it() -> None:
    fields = {"patient": ["p-1"], "transcript_order": ["canonical, picked"]}
    options = options_from_fields(fields, input_name="x.vcf")
    assert options.transcript_order == (PrimaryRule.CANONICAL, PrimaryRule.PICKED)
    with pytest.raises(OptionsError, match="mane_select, picked, canonical") as bad:
        options_from_fields({**fields, "transcript_order": ["longest"]}, input_name="x.vcf")
    assert bad.value.field == "transcript_order"


def test_uploads_are_removed_after_success_and_failure(
    base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the server runs in this process
    knowledge = ("actionability.tsv", KNOWLEDGE.read_bytes())
    assert post_parts(base_url, {"knowledge": knowledge}).status_code == 200
    assert (
        post_parts(base_url, {"knowledge": ("k.tsv", b"not a knowledge file\n")}).status_code == 422
    )
    deadline = time.monotonic() + 5
    while list(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.iterdir()) == []


def test_classifications_and_pgx_as_file_parts(base_url: str) -> None:
    parts = {
        "file": ("sample.vep.vcf", (ROOT / "tests/data/vcf/vep_sample.vcf").read_bytes()),
        "classifications": ("lab.json", (ROOT / "examples/lab-classifications.json").read_bytes()),
        "pgx": ("p.report.json", (ROOT / "examples/pgx/pharmcat.report.json").read_bytes()),
    }
    fields = {"patient": "p-1", "validate": "true", "format": "collection", "purpose": "TREAT"}
    fields["indication"] = "BRCA1,TP53"  # else their findings are secondary: withheld
    r = httpx.post(f"{base_url}/v1/convert", files=parts, data=fields, timeout=60)
    assert r.status_code == 200, r.text
    resources = [e["resource"] for e in r.json()["entry"]]
    assert any(x["resourceType"] == "Task" for x in resources)
    report = next(x for x in resources if x["resourceType"] == "DiagnosticReport")
    assert "(Example Genomics Laboratory 2025-06)" in report["conclusion"]
    r = httpx.post(
        f"{base_url}/v1/convert",
        files={**parts, "pgx": ("old.report.json", b'{"pharmcatVersion": "2.15.0", "genes": {}}')},
        data=fields,
        timeout=60,
    )
    assert r.status_code == 422
    assert r.json()["issue"][0]["diagnostics"].startswith("part 'pgx' (old.report.json)")


CONSENTS = ROOT / "tests" / "data" / "consent"
SF_VCF = ROOT / "tests" / "data" / "vcf" / "secondary_findings.vcf"


def test_consents_as_file_parts_decide_and_the_deployment_audits(
    base_url: str, audit_log: Path
) -> None:
    before = audit_log.read_bytes().count(b"\n") if audit_log.exists() else 0
    consent = (CONSENTS / "r4_secondary_findings_cancer.json").read_bytes()
    files = [
        ("file", ("sf.vcf", SF_VCF.read_bytes())),
        ("consent", ("treatment.json", (CONSENTS / "r4_treatment_opt_in.json").read_bytes())),
        ("consent", ("sf-cancer.json", consent)),
    ]
    fields = {"patient": "pat-1001", "purpose": "TREAT", "format": "collection"}
    fields |= {"birth_date": "1980-05-17", "decided_at": "2026-11-22T12:00:00Z"}
    r = httpx.post(f"{base_url}/v1/convert", files=files, data=fields, timeout=60)
    assert r.status_code == 200, r.text
    text = r.text
    assert "secondary-finding" in text and "BRCA2" in text and "LDLR" not in text
    assert audit_log.read_bytes().count(b"\n") == before + 6


def test_a_policy_refusal_is_403_and_a_client_cannot_send_a_policy(base_url: str) -> None:
    r = post(base_url, EXAMPLE.read_bytes(), purpose="HMARKT")
    assert r.status_code == 403
    assert r.json()["issue"][0]["code"] == "forbidden"
    files = {"file": ("x.vcf.gz", EXAMPLE.read_bytes()), "policy": ("p.yaml", b"never: []")}
    r = httpx.post(f"{base_url}/v1/convert", files=files, data=FIELDS, timeout=60)
    assert r.status_code == 400
    assert "policy" in r.json()["issue"][0]["diagnostics"]


def _unfiltered_bundle(tmp_path: Path) -> Any:
    """secondary_findings.vcf as the lab converts it for itself (no policy applied)."""
    from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
    from adapter.model import PatientRef

    out = tmp_path / "unfiltered.json"
    options = ConvertOptions(PatientRef(id="pat-1001"), output_format=OutputFormat.COLLECTION)
    convert_vcf(SF_VCF, out, options)
    return orjson.loads(out.read_bytes())


def test_decide_returns_the_decision_its_obligations_and_the_filtered_bundle(
    base_url: str, tmp_path: Path, audit_log: Path
) -> None:
    bundle = _unfiltered_bundle(tmp_path)
    consent = orjson.loads((CONSENTS / "r4_secondary_findings_opt_in.json").read_bytes())
    body = {"bundle": bundle, "consents": [consent], "purpose": "TREAT"}
    body |= {"birth_date": "1980-05-17", "decided_at": "2026-11-22T12:00:00Z", "sex": "female"}
    before = audit_log.read_bytes().count(b"\n") if audit_log.exists() else 0
    r = httpx.post(f"{base_url}/v1/consent/decide", json=body, timeout=60)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["decision"] == "permit"
    assert answer["genes"]["LDLR"]["decision"] == "permit"  # placed by ClinVar's GENEINFO
    assert answer["genes"]["HFE"]["decision"] == "deny"
    assert any(o["action"] == "label" for o in answer["obligations"])
    kept = orjson.dumps(answer["bundle"]).decode()
    assert "c.845G>A" not in kept and "secondary-finding" in kept
    assert audit_log.read_bytes().count(b"\n") == before + 6
    denied = httpx.post(
        f"{base_url}/v1/consent/decide", json=body | {"purpose": "HMARKT"}, timeout=60
    ).json()
    assert (denied["decision"], denied["bundle"]) == ("deny", None)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"{", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"purpose": "TREAT"}', "bundle"),
        (b'{"bundle": {}, "purpose": 1}', "purpose must be a string"),
        (b'{"bundle": {}, "consents": [1]}', "each of consents"),
        (b'{"bundle": {}, "policy": "x"}', "unknown member"),
    ],
)
def test_a_bad_decide_request_is_400(base_url: str, body: bytes, said: str) -> None:
    r = httpx.post(f"{base_url}/v1/consent/decide", content=body, timeout=30)
    assert r.status_code == 400
    assert said in r.json()["issue"][0]["diagnostics"]
