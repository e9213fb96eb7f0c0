"""The disclosure decision on a Bundle: Bundles made by the real converter (no policy applied),
decided under real Consents, the default policy and a frozen clock. Withheld findings leave no
trace in the output; disclosed secondary findings are labelled, given a Provenance and audited."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
from adapter.decision import BundleDecision, Obligation, decide_bundle
from adapter.disclosure import Disclosure, Indication
from adapter.errors import ConsentError, PolicyError
from adapter.model import PatientRef, Sex
from adapter.policy import Consent, Request, consent_from_dict, default_policy, read_consent
from adapter.policy.labels import LABEL_SECONDARY_FINDING
from adapter.validation import Validator

HERE = Path(__file__).resolve().parent
VCF = HERE / "data" / "vcf"
CONSENTS = HERE / "data" / "consent"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # inside the treatment Consent's period
ADULT, CHILD = date(1980, 5, 1), date(2015, 3, 9)
PATIENT = PatientRef(id="pat-1001")
POLICY = default_policy()
IG = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
GENE_STUDIED, SF_CODE = "48018-6", "secondary-finding"
CORE = "http://hl7.org/fhir/StructureDefinition/"

TREATMENT = read_consent(CONSENTS / "r4_treatment_opt_in.json", patient=PATIENT)
TREATMENT_JSON = json.loads((CONSENTS / "r4_treatment_opt_in.json").read_text())


def _ours(name: str) -> Consent:
    """A Consent file of the fixtures, made pat-1001's."""
    resource = json.loads((CONSENTS / name).read_text())
    resource["patient"] = {"reference": "Patient/pat-1001"}
    return consent_from_dict(resource, patient=PATIENT)


def _opted_out() -> Consent:
    """The secondary-findings opt-in turned round: its provision on them denies."""
    resource = json.loads((CONSENTS / "r4_secondary_findings_opt_in.json").read_text())
    resource["id"] = "secondary-findings-opt-out"
    [provision] = [p for p in resource["provision"]["provision"] if "code" in p]
    provision["type"] = "deny"
    return consent_from_dict(resource, patient=PATIENT)


SF_OPT_IN = read_consent(CONSENTS / "r4_secondary_findings_opt_in.json", patient=PATIENT)
SF_CANCER = read_consent(CONSENTS / "r4_secondary_findings_cancer.json", patient=PATIENT)
SF_OPT_OUT = _opted_out()


def disclosure(
    *consents: Consent,
    purpose: str | None = "TREAT",
    genes: tuple[str, ...] = (),
    born: date = ADULT,
    **changes: Any,
) -> Disclosure:
    request = Request(purpose, NOW, birth_date=born, **changes)
    return Disclosure(request, POLICY, consents, Indication.parse(genes))


def convert(folder: Path, vcf: Path, form: OutputFormat) -> Path:
    out = folder / (vcf.stem if form is OutputFormat.NDJSON else f"{vcf.stem}.{form}.json")
    options = ConvertOptions(
        patient=PATIENT, issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC), output_format=form
    )
    convert_vcf(vcf, out, options)
    return out


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """vep_sample.vcf converted with no policy: everything, in both Bundle forms."""
    folder = tmp_path_factory.mktemp("converted")
    return {
        form.value: orjson.loads(convert(folder, VCF / "vep_sample.vcf", form).read_bytes())
        for form in (OutputFormat.TRANSACTION, OutputFormat.COLLECTION)
    }


@pytest.fixture
def transaction(bundles: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return copy.deepcopy(bundles["transaction"])


# ---- reading the Bundles the test's own way ----------------------------------------------


def resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", [])]


def uuid_of(entry: dict[str, Any]) -> str:
    """The id in an entry's fullUrl, ``urn:uuid:`` or RESTful."""
    return str(entry["fullUrl"]).rpartition("/")[2].removeprefix("urn:uuid:")


def gene_of(resource: dict[str, Any]) -> str | None:
    for component in resource.get("component", []):
        if component["code"]["coding"][0]["code"] == GENE_STUDIED:
            return str(component["valueCodeableConcept"]["coding"][0]["display"])
    return None


def variants(bundle: dict[str, Any]) -> dict[str, str | None]:
    """Each Variant's UUID and gene."""
    return {
        uuid_of(e): gene_of(e["resource"])
        for e in bundle["entry"]
        if IG + "variant" in e["resource"]["meta"]["profile"]
    }


def derived(bundle: dict[str, Any], variant: str) -> set[str]:
    """The UUIDs of the resources derived from a Variant."""
    return {
        uuid_of(e)
        for e in bundle["entry"]
        if any(variant in d["reference"] for d in e["resource"].get("derivedFrom", []))
    }


def of_gene(bundle: dict[str, Any], gene: str) -> set[str]:
    """A gene's Variants and what derives from them."""
    found = {v for v, g in variants(bundle).items() if g == gene}
    return found.union(*(derived(bundle, v) for v in found))


def labels(resource: dict[str, Any]) -> list[str]:
    return [c["code"] for c in resource["meta"]["security"]]


def by_uuid(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {uuid_of(e): e["resource"] for e in bundle["entry"]}


def kind(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources(bundle) if r["resourceType"] == resource_type]


def provenances(result: BundleDecision) -> list[dict[str, Any]]:
    assert result.bundle is not None
    return kind(result.bundle, "Provenance")


def events_about(result: BundleDecision, reference: str) -> list[dict[str, Any]]:
    return [e for e in result.audit_events if reference in e["outcomeDesc"]]


# ---- the three outcomes ------------------------------------------------------------------


def test_without_consent_the_secondary_finding_leaves_no_trace(
    transaction: dict[str, Any],
) -> None:
    given_bundle = copy.deepcopy(transaction)
    result = decide_bundle(transaction, disclosure())
    assert transaction == given_bundle  # the input is not changed
    assert result.decision.permitted
    assert not result.genes["BRCA1"].decision.permitted
    assert result.bundle is not None
    out = orjson.dumps(result.bundle)
    brca1 = of_gene(transaction, "BRCA1")
    assert len(brca1) == 4  # the Variant, two molecular consequences, ClinVar's implication
    assert [uuid for uuid in brca1 if uuid.encode() in out] == []
    assert b"BRCA1" not in out and b"Glu23ValfsTer17" not in out
    [report] = kind(result.bundle, "DiagnosticReport")
    assert "conclusion" not in report
    assert {r["reference"].removeprefix("urn:uuid:") for r in report["result"]} <= set(
        by_uuid(result.bundle)
    )
    # the analysis's note counted the implications, the withheld one with them
    assert not any("note" in p for p in kind(result.bundle, "Procedure"))
    assert b"ClinVar: 3" in orjson.dumps(transaction) and b"ClinVar: 3" not in out
    why = "removed: the report's free text may name a result the policy withholds"
    assert Obligation("redact", report_url(transaction), f"conclusion {why}") in result.obligations
    assert SF_CODE.encode() not in out
    assert not any(o.action == "label" for o in result.obligations)
    assert all(labels(r) == ["R", "GDIS"] for r in resources(result.bundle))


def report_url(bundle: dict[str, Any]) -> str:
    return next(
        str(e["fullUrl"])
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    )


def test_the_report_is_audited_and_each_held_gene_and_only_its_disclosure_is_proven(
    transaction: dict[str, Any],
) -> None:
    result = decide_bundle(transaction, disclosure())
    assert result.bundle is not None
    assert [e["outcome"] for e in result.audit_events] == ["0", "8", "8"]  # report, BRCA1, TP53
    assert (
        "policy.no_consent: secondary findings need a consent"
        in (result.audit_events[1]["outcomeDesc"])
    )
    [record] = provenances(result)
    assert record["target"] == [{"reference": report_url(transaction), "type": "DiagnosticReport"}]
    [entry] = [e for e in result.bundle["entry"] if e["resource"] is record]
    assert entry["request"] == {"method": "PUT", "url": f"Provenance/{record['id']}"}
    assert entry["fullUrl"] == f"urn:uuid:{record['id']}"
    assert kind(result.bundle, "AuditEvent") == []


def test_an_sf_opt_in_discloses_brca1_labelled_and_proven(
    transaction: dict[str, Any], validator: Validator
) -> None:
    result = decide_bundle(transaction, disclosure(TREATMENT, SF_OPT_IN))
    ruling = result.genes["BRCA1"]
    assert ruling.decision.permitted
    assert result.bundle is not None
    brca1 = of_gene(transaction, "BRCA1")
    found = by_uuid(result.bundle)
    assert brca1 <= set(found)
    assert all(labels(found[u]) == ["R", "GDIS", SF_CODE] for u in brca1)
    others = set(found) - brca1
    assert all(SF_CODE not in labels(found[u]) for u in others)
    labelled = {o.target.removeprefix("urn:uuid:") for o in result.obligations if o.label}
    assert labelled == brca1
    assert {o.label for o in result.obligations if o.action == "label"} == {LABEL_SECONDARY_FINDING}
    # the report's Provenance and the gene's, which names the Consent that permitted it
    report, gene = provenances(result)
    assert [t["type"] for t in report["target"]] == ["DiagnosticReport"]
    assert {t["reference"].removeprefix("urn:uuid:") for t in gene["target"]} == brca1
    assert gene["policy"] == ["Consent/secondary-findings-opt-in"]
    [variant] = ruling.disclosed
    [event] = events_about(result, variant)
    assert event["outcome"] == "0" and event["outcomeDesc"].startswith("permit")
    # TP53 (no class) is still withheld, so the conclusion goes
    assert of_gene(transaction, "TP53").isdisjoint(found)
    [diagnostic] = kind(result.bundle, "DiagnosticReport")
    assert "conclusion" not in diagnostic
    for resource in resources(result.bundle):
        errors = [i for i in validator.validate(resource) if i.severity == "error"]
        assert errors == [], (resource["resourceType"], errors)
    assert [i for i in validator.validate(gene, CORE + "Provenance") if i.severity == "error"] == []


def test_an_indication_naming_brca1_makes_it_a_primary_result(
    transaction: dict[str, Any],
) -> None:
    result = decide_bundle(transaction, disclosure(genes=("BRCA1",)))
    assert set(result.genes) == {"TP53"}
    assert result.bundle is not None
    found = by_uuid(result.bundle)
    assert of_gene(transaction, "BRCA1") <= set(found)
    assert not any(SF_CODE in labels(r) for r in resources(result.bundle))
    assert not any(o.action == "label" for o in result.obligations)
    assert len(provenances(result)) == 1


def test_with_nothing_withheld_the_free_text_stays(transaction: dict[str, Any]) -> None:
    result = decide_bundle(transaction, disclosure(genes=("BRCA1", "TP53")))
    assert result.genes == {}
    assert result.obligations == ()
    assert result.bundle is not None
    [report] = kind(result.bundle, "DiagnosticReport")
    assert report["conclusion"].startswith("BRCA1 ENST00000357654.9:c.68_69del")
    assert len(result.bundle["entry"]) == len(transaction["entry"]) + 1  # the Provenance


def test_marketing_is_denied_with_no_bundle_and_one_audit_event(
    transaction: dict[str, Any],
) -> None:
    result = decide_bundle(transaction, disclosure(TREATMENT, SF_OPT_IN, purpose="HMARKT"))
    assert not result.decision.permitted
    assert (result.bundle, result.obligations, result.genes) == (None, (), {})
    [event] = result.audit_events
    assert event["outcome"] == "8"
    assert event["outcomeDesc"].startswith(f"deny DiagnosticReport {report_url(transaction)}")


def test_the_audit_log_gets_every_event(transaction: dict[str, Any], tmp_path: Path) -> None:
    log = tmp_path / "audit.ndjson"
    result = decide_bundle(transaction, replace(disclosure(SF_OPT_IN), audit_log=log))
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert lines == list(result.audit_events)


def test_replaying_a_decision_gives_the_same_bundle_and_ids(transaction: dict[str, Any]) -> None:
    first = decide_bundle(transaction, disclosure(TREATMENT, SF_OPT_IN))
    again = decide_bundle(copy.deepcopy(transaction), disclosure(TREATMENT, SF_OPT_IN))
    assert first.bundle == again.bundle
    assert [e["id"] for e in first.audit_events] == [e["id"] for e in again.audit_events]
    other = copy.deepcopy(transaction)
    other["timestamp"] = "2026-02-01T00:00:00+00:00"
    moved = decide_bundle(other, disclosure(TREATMENT, SF_OPT_IN))
    assert {e["id"] for e in moved.audit_events}.isdisjoint(e["id"] for e in first.audit_events)


def test_results_without_a_report_are_decided_on_as_a_bundle(
    transaction: dict[str, Any],
) -> None:
    """No DiagnosticReport: the decision is about the Bundle, named by its SHA-256, and the
    Provenance names every primary result. A read-only mapping is read like a dict."""
    observations = [
        e for e in transaction["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    bundle = MappingProxyType({**transaction, "entry": observations})
    result = decide_bundle(bundle, disclosure())
    assert result.audit_events[0]["outcomeDesc"].startswith(
        "permit Bundle urn:ietf:rfc:3986|ni:///sha-256;"
    )
    [record] = provenances(result)
    primary = (
        set(by_uuid(transaction)) - of_gene(transaction, "BRCA1") - of_gene(transaction, "TP53")
    )
    assert {t["reference"].removeprefix("urn:uuid:") for t in record["target"]} == {
        u for u in primary if by_uuid(transaction)[u]["resourceType"] == "Observation"
    }


# ---- other Bundle forms ------------------------------------------------------------------


def test_a_collection_gets_its_provenance_without_a_request(
    bundles: dict[str, dict[str, Any]],
) -> None:
    collection = bundles["collection"]
    result = decide_bundle(collection, disclosure())
    assert result.bundle is not None
    out = orjson.dumps(result.bundle)
    assert [u for u in of_gene(collection, "BRCA1") if u.encode() in out] == []
    [entry] = [e for e in result.bundle["entry"] if e["resource"]["resourceType"] == "Provenance"]
    assert set(entry) == {"fullUrl", "resource"}


def test_a_searchset_with_literal_references_loses_its_total(tmp_path: Path) -> None:
    """The NDJSON form (references Type/id) as a server's searchset would return it."""
    folder = convert(tmp_path, VCF / "vep_sample.vcf", OutputFormat.NDJSON)
    base = "https://fhir.example.org/r4"
    found = [
        orjson.loads(line) for f in sorted(folder.iterdir()) for line in f.read_bytes().splitlines()
    ]
    for r in found:  # the report cites its results by versioned absolute URLs
        for ref in r.get("result", []):
            ref["reference"] = f"{base}/{ref['reference']}/_history/1"
    entries = [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in found
    ]
    searchset = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    result = decide_bundle({**searchset, "entry": entries}, disclosure())
    assert result.bundle is not None
    assert "total" not in result.bundle
    out = orjson.dumps(result.bundle)
    brca1 = {v for v, g in variants({"entry": entries}).items() if g == "BRCA1"}
    assert brca1 and [u for u in brca1 if u.encode() in out] == []
    [report] = kind(result.bundle, "DiagnosticReport")
    assert len(report["result"]) == 8  # of 18: the BRCA1 and TP53 results went
    [entry] = [e for e in result.bundle["entry"] if e["resource"]["resourceType"] == "Provenance"]
    assert entry["search"] == {"mode": "include"}


def test_a_patient_named_by_identifier_is_audited_by_it(tmp_path: Path) -> None:
    """A transaction refers to such a patient conditionally (``Patient?identifier=``)."""
    mrn = PatientRef(identifier_system="http://hospital.example.org/mrn", identifier_value="M1")
    options = ConvertOptions(patient=mrn, issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC))
    convert_vcf(VCF / "vep_sample.vcf", tmp_path / "out.json", options)
    bundle = orjson.loads((tmp_path / "out.json").read_bytes())
    result = decide_bundle(bundle, disclosure())
    patients = [e["what"] for e in result.audit_events[0]["entity"]]
    assert patients == [
        {"type": "Patient", "identifier": {"system": mrn.identifier_system, "value": "M1"}}
    ]
    with pytest.raises(ConsentError):  # the Consent names Patient/pat-1001
        decide_bundle(bundle, disclosure(TREATMENT))


# ---- what depends on a withheld Variant --------------------------------------------------


def test_what_depends_on_a_withheld_variant_goes_with_it_transitively(
    transaction: dict[str, Any],
) -> None:
    brca1 = next(v for v, g in variants(transaction).items() if g == "BRCA1")
    [implication] = [
        u
        for u in derived(transaction, brca1)
        if IG + "diagnostic-implication" in by_uuid(transaction)[u]["meta"]["profile"]
    ]
    note = "00000000-0000-5000-8000-000000000001"
    task = "00000000-0000-5000-8000-000000000002"
    transaction["entry"] += [
        added(note, "Observation", derivedFrom=[{"reference": f"urn:uuid:{implication}"}]),
        added(task, "Task", reasonReference={"reference": f"urn:uuid:{note}"}),
    ]
    report = next(r for r in resources(transaction) if r["resourceType"] == "DiagnosticReport")
    report["result"].append({"reference": f"urn:uuid:{note}"})
    logical = {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{brca1}"}
    focused = "00000000-0000-5000-8000-000000000004"  # on the Variant, by its identifier
    transaction["entry"].append(added(focused, "Observation", focus=[{"identifier": logical}]))
    report["extension"].append(
        {"url": IG + "recommended-action", "valueReference": {"reference": f"urn:uuid:{task}"}}
    )
    result = decide_bundle(transaction, disclosure())
    assert result.bundle is not None
    out = orjson.dumps(result.bundle)
    assert [u for u in (note, task, focused, brca1) if u.encode() in out] == []
    [kept] = kind(result.bundle, "DiagnosticReport")
    assert [e["url"] for e in kept["extension"]] == [IG + "genomic-study-reference"]


def added(uuid: str, resource_type: str, **elements: Any) -> dict[str, Any]:
    """An entry of pat-1001's, to add to a Bundle."""
    resource = {"resourceType": resource_type, "subject": {"reference": "Patient/pat-1001"}}
    if resource_type == "Task":
        resource = {"resourceType": "Task", "for": resource["subject"]}
    return {"fullUrl": f"urn:uuid:{uuid}", "resource": {**resource, **elements}}


def test_a_gene_named_only_by_its_hgnc_id_is_still_held(transaction: dict[str, Any]) -> None:
    for resource in resources(transaction):
        for component in resource.get("component", []):
            if component["code"]["coding"][0]["code"] == GENE_STUDIED:
                component["valueCodeableConcept"]["coding"][0].pop("display")
    result = decide_bundle(transaction, disclosure())
    assert set(result.genes) == {"BRCA1", "TP53"}
    out = orjson.dumps(result.bundle)
    assert b"Glu23ValfsTer17" not in out


def test_two_classes_of_one_variant_are_refused_not_chosen(transaction: dict[str, Any]) -> None:
    brca1 = next(v for v, g in variants(transaction).items() if g == "BRCA1")
    [implication] = [
        e
        for e in transaction["entry"]
        if uuid_of(e) in derived(transaction, brca1)
        and IG + "diagnostic-implication" in e["resource"]["meta"]["profile"]
    ]
    benign = copy.deepcopy(implication)
    benign["fullUrl"] = "urn:uuid:00000000-0000-5000-8000-000000000003"
    benign["resource"]["identifier"] = []
    benign["resource"]["component"][0]["valueCodeableConcept"]["coding"][0]["code"] = "LA6675-8"
    transaction["entry"].append(benign)
    with pytest.raises(PolicyError) as caught:
        decide_bundle(transaction, disclosure(SF_OPT_IN))
    assert caught.value.field == (
        f"Bundle.entry[{len(transaction['entry']) - 1}].resource.component[0].valueCodeableConcept"
    )


# ---- phase: a recessive gene's two alleles -----------------------------------------------

MUTYH_VCF = """##fileformat=VCFv4.2
##fileDate=20260115
##description=Two MUTYH alleles (NM_001128425.2 c.1187G>A, c.536A>G) placed inside the gene for the test, not taken from dbSNP
##contig=<ID=chr1,length=248956422,assembly=GRCh38>
##INFO=<ID=CLNSIG,Number=.,Type=String,Description="Aggregate germline classification">
##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. Format: Allele|Consequence|IMPACT|SYMBOL|Feature_type|Feature|BIOTYPE|HGVSc|HGNC_ID|CANONICAL">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=PS,Number=1,Type=Integer,Description="Phase set">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tPROBAND
chr1\t45331556\t.\tC\tT\t60\tPASS\tCLNSIG=Pathogenic;CSQ=T|missense_variant|MODERATE|MUTYH|Transcript|NM_001128425.2|protein_coding|NM_001128425.2:c.1187G>A|HGNC:7527|YES\tGT:PS\t0|1:45331556
chr1\t45332803\t.\tT\tC\t60\tPASS\tCLNSIG=Pathogenic;CSQ=C|missense_variant|MODERATE|MUTYH|Transcript|NM_001128425.2|protein_coding|NM_001128425.2:c.536A>G|HGNC:7527|YES\tGT:PS\t{second}:45331556
"""  # noqa: E501


@pytest.mark.parametrize(("second", "reported"), [("1|0", True), ("0|1", False)])
def test_two_mutyh_alleles_are_disclosed_in_trans_and_withheld_in_cis(
    tmp_path: Path, second: str, reported: bool
) -> None:
    vcf = tmp_path / "mutyh.vcf"
    vcf.write_text(MUTYH_VCF.format(second=second))
    bundle = orjson.loads(convert(tmp_path, vcf, OutputFormat.TRANSACTION).read_bytes())
    phase = [
        uuid_of(e)
        for e in bundle["entry"]
        if IG + "sequence-phase-relationship" in e["resource"]["meta"]["profile"]
    ]
    assert len(phase) == 1
    result = decide_bundle(bundle, disclosure(TREATMENT, SF_OPT_IN))
    ruling = result.genes["MUTYH"]
    assert ruling.decision.permitted is reported
    assert ruling.acmg is not None and ("in cis" in ruling.acmg.reason) is not reported
    assert result.bundle is not None
    found = by_uuid(result.bundle)
    mutyh = of_gene(bundle, "MUTYH") | set(phase)
    assert "c.1187G>A and c.536A>G" in ruling.acmg.reason  # as the Variants name them
    if reported:
        assert len(ruling.disclosed) == 2
        assert mutyh <= set(found)
        assert all(SF_CODE in labels(found[u]) for u in mutyh)  # the genotype's too
        gene = provenances(result)[1]
        assert {t["reference"].removeprefix("urn:uuid:") for t in gene["target"]} == mutyh
    else:
        out = orjson.dumps(result.bundle)
        assert len(mutyh) == 7  # two Variants, their consequences and implications, the phase
        assert [uuid for uuid in mutyh if uuid.encode() in out] == []


TTN_VCF = """##fileformat=VCFv4.2
##fileDate=20260115
##description=A TTN allele, missense on its canonical transcript and stop-gained on another, placed inside the gene for the test
##contig=<ID=chr2,length=242193529,assembly=GRCh38>
##INFO=<ID=CLNSIG,Number=.,Type=String,Description="Aggregate germline classification">
##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. Format: Allele|Consequence|IMPACT|SYMBOL|Feature_type|Feature|BIOTYPE|HGVSc|HGNC_ID|CANONICAL">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tPROBAND
chr2\t178600000\t.\tG\tA\t60\tPASS\tCLNSIG=Likely_pathogenic;CSQ=A|missense_variant|MODERATE|TTN|Transcript|NM_001267550.2|protein_coding|NM_001267550.2:c.100C>T|HGNC:12403|YES,A|stop_gained|HIGH|TTN|Transcript|NM_133378.4|protein_coding|NM_133378.4:c.80C>T|HGNC:12403|\tGT\t0/1
"""  # noqa: E501


@pytest.mark.parametrize(
    ("name", "text"),
    [("vep_sample.vcf", None), ("ttn.vcf", TTN_VCF), ("mutyh.vcf", MUTYH_VCF.format(second="1|0"))],
)
@pytest.mark.parametrize("consents", [(), (TREATMENT, SF_OPT_IN)], ids=["none", "sf-opt-in"])
def test_a_bundle_decided_discloses_what_the_conversion_would(
    tmp_path: Path, name: str, text: str | None, consents: tuple[Consent, ...]
) -> None:
    """The same rules, from the Bundle's resources (a TTN allele is judged by its canonical
    transcript's consequences, as the conversion judges it) or from the calls."""
    vcf = VCF / name
    if text is not None:
        vcf = tmp_path / name
        vcf.write_text(text)
    asked = disclosure(*consents)
    everything = orjson.loads(convert(tmp_path, vcf, OutputFormat.COLLECTION).read_bytes())
    result = decide_bundle(everything, asked)
    assert result.bundle is not None
    options = ConvertOptions(
        patient=PATIENT,
        issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        output_format=OutputFormat.COLLECTION,
        disclosure=asked,
    )
    convert_vcf(vcf, tmp_path / "disclosed.json", options)
    converted = orjson.loads((tmp_path / "disclosed.json").read_bytes())

    def observations(bundle: dict[str, Any]) -> dict[str, list[str]]:
        return {
            uuid_of(e): labels(e["resource"])
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Observation"
        }

    assert observations(result.bundle) == observations(converted)
    disclosed = {g for g, r in result.genes.items() if r.disclosed}
    named = {"vep_sample.vcf": {"BRCA1"}, "ttn.vcf": set(), "mutyh.vcf": {"MUTYH"}}[name]
    assert disclosed == (named if consents else set())


# ---- refused inputs ----------------------------------------------------------------------


def test_a_resource_of_another_patient_is_refused(transaction: dict[str, Any]) -> None:
    transaction["entry"][4]["resource"]["subject"] = {"reference": "Patient/pat-2002"}
    with pytest.raises(PolicyError) as caught:
        decide_bundle(transaction, disclosure())
    assert caught.value.field == "Bundle.entry[4].resource.subject"
    assert "Patient/pat-2002" in caught.value.message


def test_a_patient_entry_of_another_patient_is_refused(transaction: dict[str, Any]) -> None:
    patient = {"resourceType": "Patient", "id": "pat-2002"}
    transaction["entry"].append({"fullUrl": "urn:uuid:p", "resource": patient})
    with pytest.raises(PolicyError) as caught:
        decide_bundle(transaction, disclosure())
    assert caught.value.field == f"Bundle.entry[{len(transaction['entry']) - 1}].resource"


def test_a_consent_of_another_patient_is_refused(transaction: dict[str, Any]) -> None:
    research = read_consent(CONSENTS / "r4_research.json")  # pat-2002's
    with pytest.raises(ConsentError) as caught:
        decide_bundle(transaction, disclosure(TREATMENT, research))
    assert (caught.value.source, caught.value.field) == (
        "Consent/research-biobank",
        "Consent.patient",
    )


def _added(entry: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The Bundle with ``entry`` after its 21 entries."""
    return lambda b: {**b, "entry": [*b["entry"], entry]}


DELETE = {"request": {"method": "DELETE", "url": "Observation/1"}}
ANONYMOUS = {"fullUrl": "urn:uuid:x", "resource": {"resourceType": "Observation"}}
REFUSED: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "a Consent": (lambda b: TREATMENT_JSON, "Bundle.resourceType"),
    "a list": (lambda b: b["entry"], "Bundle.resourceType"),
    "a document": (lambda b: {**b, "type": "document"}, "Bundle.type"),
    "entries not a list": (lambda b: {**b, "entry": {}}, "Bundle.entry"),
    "an entry without resource": (_added(DELETE), "Bundle.entry[21].resource"),
    "an entry without a name": (
        _added({"resource": {"resourceType": "Observation"}}),
        "Bundle.entry[21].fullUrl",
    ),
    "one fullUrl twice": (lambda b: _added(b["entry"][0])(b), "Bundle.entry[21].fullUrl"),
    "no patient": (lambda b: {**b, "entry": [ANONYMOUS]}, "Bundle.entry.resource.subject"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_is_not_one_patients_bundle_is_refused(transaction: dict[str, Any], case: str) -> None:
    change, field = REFUSED[case]
    with pytest.raises(PolicyError) as caught:
        decide_bundle(change(transaction), disclosure())
    assert caught.value.field == field


# ---- the property: withheld leaves no trace, disclosed is audited ------------------------

POOL = (
    TREATMENT,
    read_consent(CONSENTS / "r5_treatment_opt_in.json", patient=PATIENT),
    SF_OPT_IN,
    SF_CANCER,
    SF_OPT_OUT,
    _ours("r4_expired.json"),
    _ours("r4_rejected.json"),
    _ours("r4_research.json"),
    _ours("r4_minor_guardian.json"),
)


CASES = st.fixed_dictionaries(  # weighted towards a permit, which is the rarer outcome
    {
        "consents": st.sets(st.sampled_from(range(len(POOL)))),
        "genes": st.sets(st.sampled_from(["BRCA1", "TP53", "BRAF", "MUTYH"])),
        "purpose": st.sampled_from(["TREAT", "TREAT", "ETREAT", "HOPERAT", "HMARKT", None]),
        "born": st.sampled_from([ADULT, ADULT, CHILD]),
        "break_glass": st.sampled_from([False, False, False, True]),
    }
)
SF_CASE = {"consents": {0, 2}, "genes": set(), "purpose": "TREAT", "born": ADULT}


@settings(max_examples=100, deadline=None)
@example(form="transaction", case={**SF_CASE, "break_glass": False}, sex=Sex.FEMALE)
@example(form="collection", case={**SF_CASE, "break_glass": True}, sex=Sex.UNKNOWN)
@given(form=st.sampled_from(["transaction", "collection"]), case=CASES, sex=st.sampled_from(Sex))
def test_withheld_variants_leave_no_trace_and_disclosed_ones_are_audited(
    bundles: dict[str, dict[str, Any]], form: str, case: dict[str, Any], sex: Sex
) -> None:
    bundle, genes = bundles[form], case["genes"]
    asked = disclosure(
        *(POOL[i] for i in sorted(case["consents"])),
        purpose=case["purpose"],
        genes=tuple(genes),
        born=case["born"],
        break_glass=case["break_glass"],
    )
    result = decide_bundle(bundle, asked, sex=sex)
    if result.bundle is None:
        assert not result.decision.permitted and len(result.audit_events) == 1
        return
    out = orjson.dumps(result.bundle)
    held = {v: g for v, g in variants(bundle).items() if g in {"BRCA1", "TP53"} - genes}
    disclosed = {v for v in held if f"urn:uuid:{v}" in result.genes[held[v]].disclosed}
    for variant in set(held) - disclosed:
        assert variant.encode() not in out
        assert [u for u in derived(bundle, variant) if u.encode() in out] == []
    kept = by_uuid(result.bundle)
    assert set(variants(bundle)) - set(held) <= set(kept)  # primary results are all kept
    for variant in disclosed:
        ruling = result.genes[held[variant]]
        assert SF_CODE in labels(kept[variant])
        assert any(
            e["outcome"] == "0" and e["outcomeDesc"].startswith("permit")
            for e in events_about(result, ruling.first)
        )
    assert any(SF_CODE in labels(r) for r in kept.values()) is bool(disclosed)


def test_a_revoked_consent_stops_what_it_permitted_before_the_send(tmp_path: Path) -> None:
    """The revocation hook of the sync: a Bundle disclosed under an opt-in is decided again
    right before each send; once the Consent is revoked (inactive) or has expired, its
    secondary findings go, and the primary results still go out."""
    opt_in = read_consent(CONSENTS / "r4_secondary_findings_opt_in.json", patient=PATIENT)
    out = tmp_path / "disclosed.json"
    request = Request("TREAT", NOW, ADULT)
    options = ConvertOptions(
        PATIENT,
        output_format=OutputFormat.COLLECTION,
        disclosure=Disclosure(request, POLICY, (opt_in,)),
    )
    convert_vcf(VCF / "secondary_findings.vcf", out, options)
    disclosed = orjson.loads(out.read_bytes())
    assert SF_CODE in json.dumps(disclosed)
    revoked = replace(opt_in, status=type(opt_in.status)("inactive"))
    after_end = replace(request, at=datetime(2027, 1, 2, tzinfo=UTC))
    for consents, at in (((revoked,), request), ((opt_in,), after_end)):
        again = decide_bundle(disclosed, Disclosure(at, POLICY, consents))
        assert again.bundle is not None
        text = json.dumps(again.bundle)
        assert "c.5946del" not in text and "c.1187G>A" not in text
        labels = {
            c["code"] for e in again.bundle["entry"] for c in e["resource"]["meta"]["security"]
        }
        assert SF_CODE not in labels
        assert "c.1521_1523del" in text  # CFTR: a primary result
