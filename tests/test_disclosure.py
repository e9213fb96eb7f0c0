"""The disclosure policy applied at conversion (adapter.disclosure): what the ACMG rules, the
Consents and the request let out of secondary_findings.vcf, that the rest leaves no trace, the
labels, the audit log and the Provenance; in one process and in several alike."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_convert import BASE, VCF, resources_in

import adapter.convert
from adapter.convert import OutputFormat, convert_vcf
from adapter.disclosure import Disclosure, Indication, audit_log_path, secondary_labelled
from adapter.errors import DisclosureDenied, OptionsError, OutputError, PolicyError
from adapter.fhir.codes import SECURITY_LABELS
from adapter.model import PatientRef, Sex
from adapter.policy import Request, consent_from_dict, default_policy, read_consent
from adapter.policy.consent import Consent, Reference
from adapter.validation import validate_path

SOURCE = VCF / "secondary_findings.vcf"
CONSENTS = Path(__file__).resolve().parent / "data" / "consent"
PATIENT = PatientRef(id="pat-1001")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ADULT = date(1980, 5, 17)
SF_LABEL = "secondary-finding"
#: the c.HGVS of each call, by what the policy makes of it
CFTR, BENIGN_CHROM_POS = "c.1521_1523del", ("19", 11200000)
BRCA2, BRCA2_VUS = "c.5946del", "c.7000C>T"
MUTYH = ("c.1187G>A", "c.536A>G")
HFE, TTN = "c.845G>A", "c.10000C>T"
LDLR_POS = 11100000  # no annotation: ClinVar's GENEINFO alone places it in LDLR


def consent(name: str) -> Consent:
    return read_consent(CONSENTS / f"{name}.json", patient=PATIENT)


def disclosure(
    tmp_path: Path,
    *consents: Consent,
    purpose: str | None = "TREAT",
    genes: str = "",
    born: date | None = ADULT,
    break_glass: bool = False,
    at: datetime = NOW,
) -> Disclosure:
    request = Request(purpose, at, born, Reference("Practitioner/dr-1"), break_glass)
    return Disclosure(
        request,
        default_policy(),
        consents,
        Indication.parse([genes] if genes else []),
        audit_log=tmp_path / "audit.ndjson",
    )


def convert(
    tmp_path: Path, given: Disclosure, form: OutputFormat = OutputFormat.COLLECTION, **more: Any
) -> list[dict[str, Any]]:
    tmp_path.mkdir(exist_ok=True)
    out = tmp_path / ("out" if form is OutputFormat.NDJSON else "out.json")
    options = replace(BASE, patient=PATIENT, output_format=form, disclosure=given, **more)
    convert_vcf(SOURCE, out, options)
    return list(resources_in(out, form))


def hgvs_of(resources: list[dict[str, Any]]) -> set[str]:
    """The c.HGVS of every Variant written, without its transcript."""
    found = set()
    for r in variants(resources):
        for c in r["component"]:
            if c["code"]["coding"][0]["code"] == "48004-6":
                found.add(c["valueCodeableConcept"]["coding"][0]["code"].partition(":")[2])
    return found


def variants(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r for r in resources if r.get("code", {}).get("coding", [{}])[0].get("code") == "69548-6"
    ]


def labels(resource: dict[str, Any]) -> list[str]:
    return [c["code"] for c in resource["meta"]["security"]]


def report(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in resources if r["resourceType"] == "DiagnosticReport")


def audit(tmp_path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (tmp_path / "audit.ndjson").read_bytes().splitlines()]


def test_with_no_consent_no_secondary_finding_leaves_a_trace(tmp_path: Path) -> None:
    found = convert(tmp_path, disclosure(tmp_path))
    assert hgvs_of(found) == {CFTR}
    text = orjson.dumps(found).decode()
    for gene in ("BRCA2", "MUTYH", "LDLR", "TTN", "HFE", "p.Cys282Tyr", "11100000"):
        assert gene not in text
    ids = {r["id"] for r in found}
    results = [ref["reference"].removeprefix("urn:uuid:") for ref in report(found)["result"]]
    assert set(results) <= ids and len(results) == len(set(results))
    assert len(variants(found)) == 2  # CFTR, and the benign call no source places in a gene
    assert all(labels(r) == ["R", "GDIS"] for r in found)


def test_the_audit_log_has_every_decision_and_the_output_its_provenance(tmp_path: Path) -> None:
    found = convert(tmp_path, disclosure(tmp_path))
    events = audit(tmp_path)
    outcomes = [(e["outcome"], e["outcomeDesc"].split(":")[0]) for e in events]
    assert outcomes[0][0] == "0" and "DiagnosticReport" in outcomes[0][1]
    denied = [e["outcomeDesc"] for e in events[1:]]
    assert len(denied) == 5 and all(e["outcome"] == "8" for e in events[1:])
    for gene in ("BRCA2", "HFE", "LDLR", "MUTYH", "TTN"):
        assert any(gene in text for text in denied), gene
    provenances = [r for r in found if r["resourceType"] == "Provenance"]
    assert len(provenances) == 1
    target = {"reference": f"urn:uuid:{report(found)['id']}", "type": "DiagnosticReport"}
    assert provenances[0]["target"] == [target]
    assert not any(r["resourceType"] == "AuditEvent" for r in found)


def test_a_secondary_findings_opt_in_discloses_what_acmg_reports_labelled(tmp_path: Path) -> None:
    found = convert(tmp_path, disclosure(tmp_path, consent("r4_secondary_findings_opt_in")))
    assert hgvs_of(found) == {CFTR, BRCA2, *MUTYH}
    ldlr = [v for v in variants(found) if v["component"] and _position(v) == LDLR_POS]
    assert len(ldlr) == 1  # reportable by its GENEINFO and ClinVar class alone
    text = orjson.dumps(found).decode()
    for withheld in (BRCA2_VUS, HFE, TTN):
        assert withheld not in text
    secondary = [r for r in found if SF_LABEL in labels(r)]
    assert {r["resourceType"] for r in secondary} == {"Observation"}
    # each disclosed SF Variant, its implication and consequence, and the MUTYH phase relation
    sf_ids = {r["id"] for r in secondary}
    for v in variants(found):
        is_sf = _hgvs(v) in {BRCA2, *MUTYH} or _position(v) == LDLR_POS
        assert (v["id"] in sf_ids) == is_sf
    assert any(r["code"]["coding"][0]["code"] == "82120-7" for r in secondary)  # phase
    assert all(labels(r)[:2] == ["R", "GDIS"] for r in found)
    assert "compound heterozygous" in report(found).get("conclusion", "")
    policies = [r.get("policy") for r in found if r["resourceType"] == "Provenance"]
    # the report's primary results, then BRCA2, LDLR and MUTYH
    assert policies == [["Consent/secondary-findings-opt-in"]] * 4


def test_a_cancer_only_opt_in_keeps_the_cardiovascular_finding(tmp_path: Path) -> None:
    found = convert(tmp_path, disclosure(tmp_path, consent("r4_secondary_findings_cancer")))
    assert hgvs_of(found) == {CFTR, BRCA2, *MUTYH}
    assert LDLR_POS not in {_position(v) for v in variants(found)}


def test_a_gene_in_the_indication_is_a_primary_result_with_its_vus(tmp_path: Path) -> None:
    found = convert(tmp_path, disclosure(tmp_path, genes="BRCA2,CFTR"))
    assert hgvs_of(found) == {CFTR, BRCA2, BRCA2_VUS}
    assert not any(SF_LABEL in labels(r) for r in found)


def test_a_minor_gets_no_adult_onset_secondary_finding(tmp_path: Path) -> None:
    given = disclosure(tmp_path, consent("r4_secondary_findings_opt_in"), born=date(2012, 1, 1))
    found = convert(tmp_path, given)
    # BRCA2 and MUTYH are adult-onset in the table; LDLR's familial hypercholesterolemia is not
    assert hgvs_of(found) == {CFTR}
    assert LDLR_POS in {_position(v) for v in variants(found)}


def test_a_missing_birth_date_stops_a_secondary_finding_decision(tmp_path: Path) -> None:
    given = disclosure(tmp_path, consent("r4_secondary_findings_opt_in"), born=None)
    with pytest.raises(PolicyError, match="birth date"):
        convert(tmp_path, given)
    assert not (tmp_path / "out.json").exists()


def test_break_glass_never_unlocks_a_secondary_finding(tmp_path: Path) -> None:
    given = disclosure(
        tmp_path, consent("r4_secondary_findings_opt_in"), purpose="ETREAT", break_glass=True
    )
    found = convert(tmp_path, given)
    assert hgvs_of(found) == {CFTR}
    assert all("BTG" in orjson.dumps(e).decode() for e in audit(tmp_path))


def test_an_expired_consent_discloses_no_secondary_finding(tmp_path: Path) -> None:
    later = datetime(2027, 2, 1, tzinfo=UTC)  # the consents end on 2026-12-31
    found = convert(
        tmp_path, disclosure(tmp_path, consent("r4_secondary_findings_opt_in"), at=later)
    )
    assert hgvs_of(found) == {CFTR}


@pytest.mark.parametrize(("purpose", "why"), [("HMARKT", "policy.never"), (None, "no purpose")])
def test_a_refused_request_writes_nothing_and_is_audited(
    tmp_path: Path, purpose: str | None, why: str
) -> None:
    with pytest.raises(DisclosureDenied, match=why):
        convert(tmp_path, disclosure(tmp_path, purpose=purpose))
    assert not (tmp_path / "out.json").exists()
    [event] = audit(tmp_path)
    assert event["outcome"] == "8"


KEY = bytes(range(32))


def test_research_output_is_de_identified(tmp_path: Path) -> None:
    given = disclosure(tmp_path, _research_consent(), purpose="HRESCH")
    found = convert(tmp_path, given, OutputFormat.NDJSON, pseudonym_key=KEY)
    text = orjson.dumps(found).decode()
    assert "pat-1001" not in text and '"identifier"' not in text
    assert all("PSEUDED" in labels(r) for r in found)
    subjects = {r["subject"]["reference"] for r in found if "subject" in r}
    assert len(subjects) == 1 and re.fullmatch(r"Patient/[0-9a-f]{64}", subjects.pop())
    assert hgvs_of(found) == {CFTR}  # a research consent is no consent to secondary findings
    assert all(validate_path(path).ok for path in (tmp_path / "out").iterdir())
    plain = convert(tmp_path / "plain", disclosure(tmp_path), OutputFormat.NDJSON)
    assert {r["id"] for r in plain}.isdisjoint(r["id"] for r in found)
    issued = {r["issued"] for r in [*found, *plain] if "issued" in r}
    assert len(issued) == 2  # the date is shifted


def test_research_needs_a_key_ndjson_and_a_research_consent(tmp_path: Path) -> None:
    given = disclosure(tmp_path, purpose="HRESCH")
    with pytest.raises(OptionsError, match="pseudonym key"):
        convert(tmp_path, given, OutputFormat.NDJSON)
    with pytest.raises(OptionsError, match="NDJSON"):
        convert(tmp_path, given, pseudonym_key=KEY)
    with pytest.raises(DisclosureDenied, match="research needs a research consent"):
        convert(tmp_path, given, OutputFormat.NDJSON, pseudonym_key=KEY)
    with pytest.raises(PolicyError, match="32"):
        convert(tmp_path, replace(given, consents=(_research_consent(),)), OutputFormat.NDJSON,
                pseudonym_key=b"short")  # fmt: skip
    assert not (tmp_path / "out").exists()


def _research_consent() -> Consent:
    """pat-1001's consent to research use of the results."""
    return consent_from_dict(
        {
            "resourceType": "Consent",
            "id": "research",
            "status": "active",
            "scope": {"coding": [{"system": _SCOPE, "code": "research"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/pat-1001"},
            "dateTime": "2025-01-10T09:00:00Z",
            "provision": {"type": "permit", "purpose": [{"system": _ACT_REASON, "code": "HRESCH"}]},
        }
    )


_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


@pytest.mark.usefixtures("tiny_spans")
@pytest.mark.parametrize("form", [OutputFormat.TRANSACTION, OutputFormat.NDJSON])
def test_several_processes_disclose_byte_for_byte_what_one_does(
    tmp_path: Path, form: OutputFormat
) -> None:
    given = disclosure(tmp_path, consent("r4_secondary_findings_opt_in"))
    outputs = []
    for jobs in (1, 2):
        folder = tmp_path / f"jobs{jobs}"
        folder.mkdir()
        out = folder / ("out" if form is OutputFormat.NDJSON else "out.json")
        options = replace(BASE, patient=PATIENT, output_format=form, disclosure=given, jobs=jobs)
        convert_vcf(SOURCE, out, options)
        outputs.append(_bytes(out))
    assert outputs[0] == outputs[1]


def test_the_default_audit_log_lies_beside_the_output(tmp_path: Path) -> None:
    assert audit_log_path(tmp_path / "out.json") == tmp_path / "out.json.audit.ndjson"


def test_the_indication_takes_genes_and_phenotypes() -> None:
    found = Indication.parse(["brca1, BRCA2", "HP:0001250"])
    assert found == Indication(frozenset({"BRCA1", "BRCA2"}), ("HP:0001250",))
    with pytest.raises(OptionsError, match="neither"):
        Indication.parse(["BRCA1;BRCA2"])


def test_a_female_patient_is_judged_as_one(tmp_path: Path) -> None:
    """The sex reaches the ACMG rules (here changing nothing: no X-linked call)."""
    given = disclosure(tmp_path, consent("r4_secondary_findings_opt_in"))
    found = convert(tmp_path, given, sex=Sex.FEMALE)
    assert hgvs_of(found) == {CFTR, BRCA2, *MUTYH}


@pytest.fixture
def tiny_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter.convert, "SPAN_BYTES", 1)
    monkeypatch.setattr(adapter.convert, "CHUNK_VARIANTS", 2)


def _bytes(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir())}
    return {path.name: path.read_bytes()}


def _hgvs(variant: dict[str, Any]) -> str | None:
    return next(iter(hgvs_of([variant])), None)


def _position(variant: dict[str, Any]) -> int | None:
    for c in variant["component"]:
        if c["code"]["coding"][0]["code"] == "81254-5":
            return int(c["valueRange"]["low"]["value"])  # 1-based-character: the POS
    return None


#: what each held gene of the fixture is to ACMG's rules: reportable, or never
REPORTABLE = {"BRCA2": True, "LDLR": True, "MUTYH": True, "HFE": False, "TTN": False}
CONSENT_NAMES = (
    "r4_treatment_opt_in",
    "r4_secondary_findings_opt_in",
    "r4_secondary_findings_cancer",
    "r4_expired",
    "r4_rejected",
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.sets(st.sampled_from(CONSENT_NAMES)),
    genes=st.sets(st.sampled_from(sorted(REPORTABLE))),
    born=st.sampled_from([ADULT, date(2012, 1, 1)]),
    purpose=st.sampled_from(["TREAT", "ETREAT"]),
    break_glass=st.booleans(),
)
def test_no_withheld_finding_is_ever_written_and_each_disclosed_one_is_audited(  # noqa: PLR0917
    tmp_path_factory: pytest.TempPathFactory,
    names: set[str],
    genes: set[str],
    born: date,
    purpose: str,
    break_glass: bool,
) -> None:
    tmp_path = tmp_path_factory.mktemp("property")
    consents = [c for c in map(_maybe_consent, sorted(names)) if c is not None]
    given_ = disclosure(
        tmp_path, *consents, purpose=purpose, genes=",".join(genes), born=born,
        break_glass=break_glass,
    )  # fmt: skip
    try:
        found = convert(tmp_path, given_)
    except DisclosureDenied:
        assert not (tmp_path / "out.json").exists()
        return
    text = orjson.dumps(found).decode()
    events = {_gene_of(e): e["outcome"] for e in audit(tmp_path)[1:]}
    assert set(events) == set(REPORTABLE) - genes  # a decision for each held gene
    for gene, outcome in events.items():
        if outcome == "8":
            assert gene not in text, gene  # withheld: no trace, not even its name
        assert outcome == "8" or REPORTABLE[gene]
        assert outcome == "8" or not break_glass
    permitted = {_about(e) for e in audit(tmp_path) if e["outcome"] == "0"}
    disclosures = [
        {t["reference"].removeprefix("urn:uuid:") for t in r["target"]}
        for r in found
        if r["resourceType"] == "Provenance"
    ]
    for resource in found:  # each disclosed finding: a Provenance, and its decision audited
        if SF_LABEL in labels(resource):
            assert any(resource["id"] in d and d & permitted for d in disclosures)
    assert (BRCA2_VUS in text) == ("BRCA2" in genes)


def _maybe_consent(name: str) -> Consent | None:
    try:
        return consent(name)
    except PolicyError:
        return None  # another patient's


def _about(event: dict[str, Any]) -> str:
    """The id of the result an AuditEvent decided on (its outcome description names it)."""
    return str(event["outcomeDesc"].split("urn:uuid:", 1)[1].split()[0].rstrip(":"))


def _gene_of(event: dict[str, Any]) -> str:
    """The held gene an AuditEvent decided on, from its outcome description."""
    return str(event["outcomeDesc"].split("(", 1)[1].split(",", 1)[0])


def test_a_held_resource_without_the_genomic_labels_is_never_written_unlabelled() -> None:
    labelled_ = orjson.dumps({"meta": {"security": list(SECURITY_LABELS)}})
    ids = bytes(16)
    assert SF_LABEL.encode() in secondary_labelled(labelled_, ids)
    with pytest.raises(OutputError, match="cannot be added"):
        secondary_labelled(orjson.dumps({"meta": {}}), ids)
    with pytest.raises(OutputError):
        secondary_labelled(labelled_ + labelled_, ids)  # two resources, one id


def test_the_labs_gene_places_a_call_it_classified(tmp_path: Path) -> None:
    """A classification file's gene column holds a call no annotation places (here the
    intergenic benign call, classified pathogenic in MUTYH by the lab)."""
    table = tmp_path / "lab.tsv"
    table.write_text(
        "build\tchromosome\tposition\tref\talt\tclassification\tcondition\tevidence\t"
        "classified_date\tgene\n"
        "GRCh38\tchr19\t11200000\tA\tG\tPathogenic\tMUTYH-associated polyposis\tPVS1\t"
        "2025-06-01\tMUTYH\n"
    )
    found = convert(tmp_path, disclosure(tmp_path), classifications=table)
    assert BENIGN_CHROM_POS[1] not in {_position(v) for v in variants(found)}


def test_regression_a_transaction_puts_its_provenance_by_id(tmp_path: Path) -> None:
    """R4 Provenance has no identifier: a conditional PUT on one could never match, and a
    server refuses the unknown search parameter. It goes by its id, which it keeps."""
    out = tmp_path / "out.json"
    options = replace(BASE, patient=PATIENT, disclosure=disclosure(tmp_path))
    convert_vcf(SOURCE, out, options)
    entries = orjson.loads(out.read_bytes())["entry"]
    [record] = [e for e in entries if e["resource"]["resourceType"] == "Provenance"]
    rid = record["fullUrl"].removeprefix("urn:uuid:")
    assert record["request"] == {"method": "PUT", "url": f"Provenance/{rid}"}
    assert record["resource"]["id"] == rid
    assert all("identifier=" in e["request"]["url"] for e in entries if e is not record)
