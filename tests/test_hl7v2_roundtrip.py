"""HL7 v2 out, and the round trip v2 -> FHIR -> v2 that issue 7 accepts it by: a genomic-report
Bundle read back into a LabReport (adapter.readers.fhir_report), written as an ORU^R01
(adapter.hl7v2_oru) and read again (adapter.readers.hl7v2)."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.assembly import accession
from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
from adapter.errors import OptionsError, ReportError
from adapter.fhir.codes import coding
from adapter.fhir.variant import BARE_PROTEIN_HGVS
from adapter.hl7v2_oru import oru_message
from adapter.model import (
    ClinicalSignificance,
    CodedTerm,
    GenomeBuild,
    GenomicSourceClass,
    LabReport,
    PatientRef,
    ReportedClassification,
    ReportedVariant,
    ReportStatus,
    Sex,
    TranscriptConsequence,
    VariantAssessment,
    VariantCall,
    VariantInheritance,
    Zygosity,
)
from adapter.notation import describe
from adapter.readers.annotations import significance_tier
from adapter.readers.fhir_report import SOURCE_FORMAT, read_report_bundle
from adapter.readers.hl7v2 import read_oru
from adapter.readers.phenopacket import read_phenopacket
from adapter.reports import ReportOptions, convert_report

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "hl7v2").glob("*.hl7"))
VCF = ROOT / "tests" / "data" / "vcf"
MRN = "https://hospital.example.org/mrn"
#: the somatic example's PID-3.4 gives only a namespace ID: the deployment maps it
AUTHORITIES = {"HOSP": MRN}
NOW = datetime(2025, 8, 2, 10, 0, tzinfo=UTC)
SENDING = ("FHIR_GENOMICS", "EXAMPLE HOSPITAL^2.16.840.1.113883.19.5^ISO")
RECEIVING = ("HIS", "EXAMPLE HOSPITAL")
CONTROL_ID = "OUT-0001"
V2 = "HL7 v2.5.1 ORU^R01"
MONDO = "http://purl.obolibrary.org/obo/mondo.owl"
FORMS = [OutputFormat.TRANSACTION, OutputFormat.COLLECTION]


def _original(path: Path) -> LabReport:
    (report,) = read_oru(path.read_bytes(), source=path.name, authorities=AUTHORITIES).reports
    return report


def _bundle(report: LabReport, form: OutputFormat, folder: Path) -> dict[str, Any]:
    """The report converted as the CLI converts it, validated against the IG's profiles."""
    destination = folder / f"{form.value}-{len(list(folder.iterdir()))}.json"
    options = ReportOptions(output_format=form, validate=True)
    assert convert_report(report, destination, options).validation_errors == 0
    found: dict[str, Any] = json.loads(destination.read_bytes())
    return found


def _message(report: LabReport, **options: Any) -> str:
    return oru_message(
        report, control_id=CONTROL_ID, now=NOW, sending=SENDING, receiving=RECEIVING, **options
    )


def _again(report: LabReport) -> LabReport:
    """The report written as ORU^R01 and read back."""
    (found,) = read_oru(_message(report, authorities=AUTHORITIES), authorities=AUTHORITIES).reports
    return found


# ---- the round trip: what comes back, and the documented exceptions -----------------------------


def _expected(original: LabReport) -> LabReport:
    """What v2 -> FHIR -> v2 gives back of a report read from HL7 v2: all of it but these,
    which a genomic-report Bundle does not carry."""
    placed = any(v.call is not None for v in original.variants)
    return replace(
        original,
        message_id=CONTROL_ID,  # MSH-10: a Bundle has none; the new message's is the caller's
        sex=Sex.UNKNOWN,  # PID-8 and PID-7: the Bundle names the patient by identifier,
        birth_date=None,  # it holds no Patient
        specimen_type=None,  # SPM-4: the Bundle names the specimen by identifier
        build=original.build if placed else None,  # 62374-4: stated on Variants with a call
        variants=tuple(_expected_variant(v, original) for v in original.variants),
    )


def _expected_variant(original: ReportedVariant, report: LabReport) -> ReportedVariant:
    """A Variant states its source class (None is the report's), and a Variant with
    coordinates states the change type and g.HGVS they make (the builder derives them)."""
    call = original.call
    derived = None
    if call is not None and report.build is not None:
        derived = describe(accession(report.build, call.chromosome), call.pos, call.ref, call.alt)
    change_type = original.change_type
    if derived is not None:
        found = coding("dna-change-type", derived.change)
        assert found is not None
        change_type = CodedTerm(found["system"], found["code"], found["display"])
    return replace(
        original,
        source_class=original.source_class or report.source_class,
        change_type=change_type,
        genomic_hgvs=original.genomic_hgvs or (derived.hgvs if derived else None),
    )


def test_every_example_message_takes_the_round_trip() -> None:
    assert [p.name for p in EXAMPLES] == [
        "compound-heterozygote.hl7",
        "germline-panel-corrected.hl7",
        "germline-panel.hl7",
        "somatic-tumor.hl7",
    ]


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.value)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_v2_to_fhir_to_v2_keeps_every_variant_and_report_field(
    example: Path, form: OutputFormat, tmp_path: Path
) -> None:
    original = _original(example)
    from_fhir = read_report_bundle(_bundle(original, form, tmp_path), source=example.name)
    again = _again(from_fhir)
    expected = _expected(original)
    # every field of every variant, in order: a field the round trip lost fails here
    assert len(again.variants) == len(expected.variants) == len(original.variants)
    for found, wanted in zip(again.variants, expected.variants, strict=True):
        assert asdict(found) == asdict(wanted), wanted.key
    assert asdict(replace(again, variants=())) == asdict(replace(expected, variants=()))


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.value)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_v2_to_fhir_to_v2_to_fhir_gives_the_same_bundle(
    example: Path, form: OutputFormat, tmp_path: Path
) -> None:
    first = _bundle(_original(example), form, tmp_path)
    second = _bundle(_again(read_report_bundle(first)), form, tmp_path)
    assert second == first  # same ids: they derive from the report's and the variants' keys


def test_the_documented_exceptions_apply_only_where_the_bundle_lacks_the_field() -> None:
    original = _original(ROOT / "examples" / "hl7v2" / "somatic-tumor.hl7")
    expected = _expected(original)
    assert expected.build is GenomeBuild.GRCH38  # its variants are placed: the build is kept
    egfr, tp53 = expected.variants
    assert egfr == original.variants[0]  # it states source class, change type and g.HGVS
    assert tp53.change_type == CodedTerm(
        "http://www.sequenceontology.org", "SO:0001483", "SNV"
    )  # derived from C>T
    assert tp53.genomic_hgvs == original.variants[1].genomic_hgvs


# ---- a VCF conversion's Bundle as an ORU^R01 -----------------------------------------------------

SNV_CALLS = [  # snv.vcf's records that are converted: (chromosome, POS, REF, ALT, g.HGVS)
    ("1", 69511, "A", "G", "NC_000001.11:g.69511A>G"),
    ("1", 930220, "G", "A", "NC_000001.11:g.930220G>A"),
    ("2", 166848646, "G", "T", "NC_000002.12:g.166848646G>T"),
    ("3", 37000000, "C", "A", "NC_000003.12:g.37000000C>A"),
    ("17", 43045712, "T", "C", "NC_000017.11:g.43045712T>C"),
    ("22", 42128945, "G", "A", "NC_000022.11:g.42128945G>A"),
]


def _vcf_bundle(name: str, tmp_path: Path) -> dict[str, Any]:
    options = ConvertOptions(
        patient=PatientRef(identifier_system=MRN, identifier_value="MRN-1"),
        issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        validate=True,
    )
    destination = tmp_path / f"{name}.json"
    assert convert_vcf(VCF / name, destination, options).validation_errors == 0
    found: dict[str, Any] = json.loads(destination.read_bytes())
    return found


def test_a_vcf_conversion_becomes_an_oru_keeping_coordinates_and_hgvs(tmp_path: Path) -> None:
    bundle = _vcf_bundle("snv.vcf", tmp_path)
    report = read_report_bundle(bundle, source="snv.json")
    assert report.source_format == SOURCE_FORMAT
    assert report.build is GenomeBuild.GRCH38
    assert report.patient == PatientRef(identifier_system=MRN, identifier_value="MRN-1")
    placed = [(v.call, v.genomic_hgvs) for v in report.variants]
    assert [(c.chromosome, c.pos, c.ref, c.alt, g) for c, g in placed if c] == SNV_CALLS
    # no filler order number: the report's own business identifier stands in (OBR-3)
    (own,) = _report_resource(bundle)["identifier"]
    assert report.filler_order == (own["system"], own["value"])
    message = _message(report)
    (again,) = read_oru(message).reports
    assert [replace(v, where=None) for v in again.variants] == [
        replace(v, where=None) for v in report.variants
    ]
    assert replace(again, variants=(), source_format=V2, message_id=None) == replace(
        report, variants=(), source_format=V2, message_id=None
    )
    assert again.message_id == CONTROL_ID
    assert report.variants[1].variation_codes == (
        CodedTerm("http://www.ncbi.nlm.nih.gov/projects/SNP", "rs1234", None),
    )  # the dbSNP id, not the SPDI the builder derives from the coordinates


def test_a_vcf_conversion_keeps_clinvar_classifications_but_their_evidence(
    tmp_path: Path,
) -> None:
    report = read_report_bundle(_vcf_bundle("vep_sample.vcf", tmp_path))
    brca1 = next(v for v in report.variants if v.call and v.call.pos == 43124027)
    assert brca1.consequence is not None and brca1.consequence.gene_symbol == "BRCA1"
    assert brca1.classification == ReportedClassification(
        "Pathogenic",
        ClinicalSignificance.PATHOGENIC,
        "LA6668-3",
        (
            CodedTerm(MONDO, "MONDO:0003582", "Hereditary breast ovarian cancer syndrome"),
            CodedTerm(
                MONDO, "MONDO:0011450", "Breast-ovarian cancer, familial, susceptibility to, 1"
            ),
        ),
        "ClinVar: reviewed by expert panel (3 of 4 stars)",
    )
    (again,) = read_oru(_message(report)).reports
    found = next(v for v in again.variants if v.key == brca1.key)
    # the v2 model has no OBX for the level of evidence: all else of the class comes back
    assert found.classification == replace(brca1.classification, evidence=None)
    assert found.call == brca1.call and found.genomic_hgvs == "NC_000017.11:g.43124028_43124029del"


def test_structural_variants_of_a_vcf_bundle_keep_their_names_but_no_call(tmp_path: Path) -> None:
    report = read_report_bundle(_vcf_bundle("sv.vcf", tmp_path))
    assert report.variants and all(v.call is None for v in report.variants)
    assert "NC_000002.12:g.2000001_2010000dup" in {v.genomic_hgvs for v in report.variants}
    (again,) = read_oru(_message(report)).reports
    assert [v.genomic_hgvs for v in again.variants] == [v.genomic_hgvs for v in report.variants]


def _report_resource(bundle: dict[str, Any]) -> dict[str, Any]:
    (found,) = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    ]
    return found


# ---- a phenopacket's report through FHIR ---------------------------------------------------------


def test_phenotypes_therapies_and_notes_come_back_from_the_bundle(tmp_path: Path) -> None:
    path = ROOT / "examples" / "phenopackets" / "recessive.json"
    original = read_phenopacket(path.read_bytes(), subject_system=MRN)
    # the example has phenotypes present and excluded, and an actionable variant
    assert original.phenotypes and original.excluded_phenotypes
    assert any(v.actionable and v.therapies for v in original.variants)
    found = read_report_bundle(_bundle(original, OutputFormat.COLLECTION, tmp_path))
    assert (found.phenotypes, found.excluded_phenotypes) == (
        original.phenotypes,
        original.excluded_phenotypes,
    )
    assert (found.diagnoses, found.notes, found.conclusion, found.issued) == (
        original.diagnoses,
        original.notes,
        original.conclusion,
        original.issued,
    )
    for variant, before in zip(found.variants, original.variants, strict=True):
        assert (variant.actionable, variant.therapies) == (before.actionable, before.therapies)
        assert variant.notes == before.notes


# ---- reading Bundles: references, searchsets, errors ---------------------------------------------

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
BLOOD = {"system": "http://snomed.info/sct", "code": "119297000", "display": "Blood specimen"}


def _searchset(collection: dict[str, Any]) -> dict[str, Any]:
    """A server's answer: absolute fullUrls, Type/id references, the Patient and Specimen
    included."""
    base = "https://fhir.example.org/r4"
    found = copy.deepcopy(collection)
    text = json.dumps(found["entry"])
    for entry in found["entry"]:
        resource = entry["resource"]
        local = f"{resource['resourceType']}/{resource['id']}"
        text = text.replace(f'"urn:uuid:{resource["id"]}"', f'"{local}"')
    entries = json.loads(text)
    for entry in entries:
        resource = entry["resource"]
        entry["fullUrl"] = f"{base}/{resource['resourceType']}/{resource['id']}"
    report = entries[-1]["resource"]
    report["subject"] = {"reference": "Patient/p1"}
    report["specimen"] = [{"reference": f"{base}/Specimen/s1/_history/2"}]
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-04-15"}
    patient["identifier"] = [
        {"system": "urn:oid:2.16.840.1.113883.19.4.3", "value": "LAB-1"},
        {"type": {"coding": [{"system": V2_0203, "code": "MR"}]}, "system": MRN, "value": "M-9"},
    ]
    specimen = {"resourceType": "Specimen", "id": "s1", "type": {"coding": [BLOOD]}}
    specimen["identifier"] = [{"system": "urn:oid:2.16.840.1.113883.19.4.2", "value": "SPC-1"}]
    for resource in (patient, specimen):
        entries.append({"fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
                        "resource": resource, "search": {"mode": "include"}})  # fmt: skip
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def test_a_searchset_with_type_id_references_and_the_patient_included(tmp_path: Path) -> None:
    original = _original(ROOT / "examples" / "hl7v2" / "germline-panel.hl7")
    collection = _bundle(original, OutputFormat.COLLECTION, tmp_path)
    found = read_report_bundle(_searchset(collection))
    assert found.patient == PatientRef(identifier_system=MRN, identifier_value="M-9")  # MR first
    assert (found.sex, found.birth_date) == (Sex.FEMALE, date(1980, 4, 15))
    assert found.specimen == ("urn:oid:2.16.840.1.113883.19.4.2", "SPC-1")
    assert found.specimen_type == CodedTerm(BLOOD["system"], BLOOD["code"], BLOOD["display"])
    assert [v.classification for v in found.variants] == [
        v.classification for v in original.variants
    ]
    assert [v.consequence for v in found.variants] == [v.consequence for v in original.variants]


def test_a_bare_protein_hgvs_comes_back_from_the_variant_note_not_as_a_note(
    tmp_path: Path,
) -> None:
    original = _original(ROOT / "examples" / "hl7v2" / "germline-panel.hl7")
    bundle = _bundle(original, OutputFormat.COLLECTION, tmp_path)
    notes = [n["text"] for e in bundle["entry"] for n in e["resource"].get("note", [])]
    assert f"{BARE_PROTEIN_HGVS}p.Glu23ValfsTer17" in notes
    brca1 = read_report_bundle(bundle).variants[0]
    assert brca1.consequence is not None and brca1.consequence.hgvs_p == "p.Glu23ValfsTer17"
    assert brca1.notes == ()


@pytest.fixture(scope="module")
def germline_collection(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    original = _original(ROOT / "examples" / "hl7v2" / "germline-panel.hl7")
    return _bundle(original, OutputFormat.COLLECTION, tmp_path_factory.mktemp("collection"))


def _broken(bundle: dict[str, Any], change: str) -> Any:
    """A copy of the germline example's collection Bundle, damaged as ``change`` says."""
    found = copy.deepcopy(bundle)
    report = found["entry"][-1]["resource"]
    variant = found["entry"][0]["resource"]
    if change == "not a bundle":
        return report
    if change == "batch":
        found["type"] = "batch"
    elif change == "no report":
        found["entry"] = found["entry"][:-1]
    elif change == "two reports":
        found["entry"].append(copy.deepcopy(found["entry"][-1]))
    elif change == "unresolvable result":
        report["result"][1]["reference"] = "urn:uuid:00000000-0000-5000-8000-000000000000"
    elif change == "no subject":
        del report["subject"]
    elif change == "entered in error":
        report["status"] = "entered-in-error"
    elif change == "no identifier":
        report["identifier"] = report["identifier"][:1]
        report["identifier"][0]["system"] = None
        del report["basedOn"]
    elif change == "two classifications":
        found["entry"].insert(2, copy.deepcopy(found["entry"][1]))
    elif change == "two allelic states":
        variant["component"].append(copy.deepcopy(variant["component"][-1]))
        variant["component"][-1]["valueCodeableConcept"]["coding"][0]["code"] = "LA6705-3"
    elif change == "no assessment":
        del variant["valueCodeableConcept"]
    return found


#: damage → the element the error names
REFUSED = {
    "not a bundle": "resourceType",
    "batch": "Bundle.type",
    "no report": "Bundle.entry",
    "two reports": "Bundle.entry[5].resource",
    "unresolvable result": "Bundle.entry[4].resource.result[1]",
    "no subject": "Bundle.entry[4].resource.subject",
    "entered in error": "Bundle.entry[4].resource.status",
    "no identifier": "Bundle.entry[4].resource.identifier",
    "two classifications": "Bundle.entry[2].resource",
    "two allelic states": "Bundle.entry[0].resource.component[8]",
    "no assessment": "Bundle.entry[0].resource.valueCodeableConcept",
}


@pytest.mark.parametrize("change", sorted(REFUSED))
def test_a_bundle_it_cannot_read_raises_a_report_error_naming_the_element(
    germline_collection: dict[str, Any], change: str
) -> None:
    with pytest.raises(ReportError) as caught:
        read_report_bundle(_broken(germline_collection, change), source="report.json")
    assert (caught.value.field, caught.value.source) == (REFUSED[change], "report.json")
    for value in ("MRN-004711", "FIL-GX-77821", "PLC-2025-0042", "SPC-1029"):
        assert value not in str(caught.value)


def test_two_builds_in_one_bundle_are_refused(tmp_path: Path) -> None:
    bundle = _bundle(
        _original(ROOT / "examples" / "hl7v2" / "somatic-tumor.hl7"),
        OutputFormat.COLLECTION,
        tmp_path,
    )
    tp53 = bundle["entry"][1]["resource"]
    assembly = next(c for c in tp53["component"] if c["code"]["coding"][0]["code"] == "62374-4")
    assembly["valueCodeableConcept"]["coding"][0]["code"] = "LA14029-5"  # GRCh37
    with pytest.raises(ReportError) as caught:
        read_report_bundle(bundle)
    assert caught.value.field is not None and caught.value.field.startswith("Bundle.entry[1]")


# ---- the message: segments, header, escaping, identifiers -------------------------------------


def _report(**changes: Any) -> LabReport:
    base = LabReport(
        source_format=V2,
        report_key="urn:oid:2.16.840.1.113883.19.4.1|F-1",
        patient=PatientRef(
            identifier_system="urn:oid:2.16.840.1.113883.19.5.1", identifier_value="M-1"
        ),
        filler_order=("urn:oid:2.16.840.1.113883.19.4.1", "F-1"),
        message_id=CONTROL_ID,
    )
    return replace(base, **changes)


def _segments(message: str) -> list[list[str]]:
    assert message.endswith("\r") and "\n" not in message
    return [segment.split("|") for segment in message[:-1].split("\r")]


def test_the_header_names_sender_receiver_version_and_character_set() -> None:
    msh = _segments(_message(_report()))[0]
    assert msh[:12] == [
        "MSH", "^~\\&", *SENDING, *RECEIVING, "20250802100000+0000", "", "ORU^R01^ORU_R01",
        CONTROL_ID, "P", "2.5.1",
    ]  # fmt: skip
    assert msh[17] == "UNICODE UTF-8"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"control_id": ""}, "control_id"),
        ({"sending": ("LAB|X", "F")}, "sending"),
        ({"receiving": ("EHR", "A~B")}, "receiving"),
    ],
)
def test_header_values_that_would_break_the_message_are_refused(
    options: dict[str, Any], field: str
) -> None:
    arguments = {"control_id": "C", "now": NOW, "sending": SENDING, "receiving": RECEIVING}
    with pytest.raises(OptionsError) as caught:
        oru_message(_report(), **(arguments | options))
    assert caught.value.field == field


def test_delimiters_line_breaks_and_unicode_in_text_are_escaped_and_read_back() -> None:
    text = "a|b^c~d\\e&f\nline two\tend: Müller, 東京, ✓"
    variant = ReportedVariant(key="1", display_name=text, notes=(text,))
    report = _report(notes=(text,), conclusion=text, variants=(variant,))
    message = _message(report)
    segments = _segments(message)
    names = ["MSH", "PID", "ORC", "OBR", "NTE", *["OBX"] * 4, "NTE"]
    assert [s[0] for s in segments] == names
    assert all(len(s) == 4 for s in segments if s[0] == "NTE")  # one field each, escaped
    assert "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f\\.br\\line two\\X09\\end: Müller, 東京, ✓" in message
    (again,) = read_oru(message).reports
    assert (again.notes, again.conclusion) == ((text,), text)
    assert (again.variants[0].display_name, again.variants[0].notes) == (text, (text,))


@pytest.mark.parametrize(
    ("system", "authorities", "written"),
    [
        ("urn:oid:2.16.840.1.113883.19.5.1", {}, "M-1^^^&2.16.840.1.113883.19.5.1&ISO^MR"),
        (MRN, {}, f"M-1^^^&{MRN}&URI^MR"),
        (MRN, AUTHORITIES, f"M-1^^^HOSP&{MRN}&URI^MR"),
        ("LOCAL-MRN", {"LOCAL": "LOCAL-MRN"}, "M-1^^^LOCAL^MR"),
        ("urn:oid:not-an-oid", {}, "M-1^^^&urn:oid:not-an-oid&URI^MR"),
    ],
)
def test_identifier_systems_become_assigning_authorities_the_reader_reads_back(
    system: str, authorities: dict[str, str], written: str
) -> None:
    patient = PatientRef(identifier_system=system, identifier_value="M-1")
    message = _message(_report(patient=patient), authorities=authorities)
    assert _segments(message)[1][3] == written
    (again,) = read_oru(message, authorities=authorities).reports
    assert again.patient == patient


def test_a_system_that_is_no_uri_and_has_no_namespace_is_refused() -> None:
    patient = PatientRef(identifier_system="LOCAL-MRN", identifier_value="M-1")
    with pytest.raises(ReportError) as caught:
        _message(_report(patient=patient))
    assert caught.value.field == "PID-3.4"
    assert "M-1" not in str(caught.value)


def test_a_patient_known_by_server_id_alone_cannot_be_written() -> None:
    with pytest.raises(ReportError) as caught:
        _message(_report(patient=PatientRef(id="123")))
    assert caught.value.field == "PID-3"


def test_a_report_without_order_numbers_cannot_be_written() -> None:
    with pytest.raises(ReportError) as caught:
        _message(_report(filler_order=None))
    assert caught.value.field == "OBR-3"


def test_two_variants_with_one_key_cannot_be_written() -> None:
    twins = (ReportedVariant(key="1"), ReportedVariant(key="1"))
    with pytest.raises(ReportError) as caught:
        _message(_report(variants=twins))
    assert caught.value.field == "OBX-4"


#: status → (OBR-25, HL7 table 0123; OBX-11 of a variant with it, HL7 table 0085)
STATUS_CODES = {
    ReportStatus.REGISTERED: ("I", "I"),
    ReportStatus.PARTIAL: ("A", "R"),
    ReportStatus.PRELIMINARY: ("P", "P"),
    ReportStatus.FINAL: ("F", "F"),
    ReportStatus.CORRECTED: ("C", "C"),
    ReportStatus.CANCELLED: ("X", "X"),
}


@pytest.mark.parametrize("status", list(ReportStatus))
def test_each_status_is_written_as_the_code_the_reader_maps_to_it(status: ReportStatus) -> None:
    other = ReportStatus.FINAL if status is not ReportStatus.FINAL else ReportStatus.CORRECTED
    variants = (ReportedVariant(key="1", status=status), ReportedVariant(key="2"))
    report = _report(status=other, variants=variants)
    segments = _segments(_message(report))
    obr = next(s for s in segments if s[0] == "OBR")
    assessments = [s for s in segments if s[0] == "OBX" and s[3].startswith("69548-6")]
    assert obr[25] == STATUS_CODES[other][0]
    assert [s[11] for s in assessments] == [STATUS_CODES[status][1], STATUS_CODES[other][1]]
    assert _again(report).variants == tuple(replace(v, where=f"OBX-4 {v.key}") for v in variants)
    assert _again(_report(status=status)).status is status


# ---- any valid report: LabReport -> v2 -> LabReport --------------------------------------------

#: text as a lab writes it: delimiters, escape characters and non-ASCII letters included;
#: surrounding blanks are not kept (the reader strips values)
TEXT = st.text(
    st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from("|^~\\&"),
    min_size=1,
    max_size=30,
).filter(lambda s: s == s.strip())
PROSE = st.lists(TEXT, min_size=1, max_size=3).map("\n".join)
IDS = st.from_regex(r"[A-Z][A-Z0-9\-]{0,11}", fullmatch=True)
SYSTEMS = st.sampled_from(
    [
        "http://purl.obolibrary.org/obo/mondo.owl",
        "https://www.omim.org",
        "http://human-phenotype-ontology.org",
        "http://snomed.info/sct",
    ]
)
#: a term as the reader gives one back: coded in a system with an HL7 v2 name, or words alone
TERMS = st.one_of(
    st.builds(CodedTerm, SYSTEMS, IDS, st.none() | TEXT),
    st.builds(CodedTerm, st.none(), st.none(), TEXT),
)
CODES = st.builds(
    CodedTerm,
    st.sampled_from(
        ["http://www.ncbi.nlm.nih.gov/projects/SNP", "http://www.ncbi.nlm.nih.gov/clinvar"]
    ),
    IDS,
    st.none(),
)
CHANGE_TYPES = st.sampled_from(
    [CodedTerm("http://www.sequenceontology.org", "SO:0000159", "deletion"),
     CodedTerm("http://www.sequenceontology.org", "SO:1000032", "delins"),
     CodedTerm(None, None, "complex rearrangement")]
)  # fmt: skip


def _tier_name(words: str) -> str:
    """Words as the reader compares them with the tiers' names."""
    return re.sub(r"[\s_-]+", "-", words.strip().casefold())


#: words that name no ACMG/AMP tier, for a significance stated as text
UNTIERED = TEXT.filter(lambda s: _tier_name(s) not in {_tier_name(t) for t in ClinicalSignificance})


@st.composite
def classifications(draw: st.DrawFn) -> ReportedClassification:
    conditions = tuple(draw(st.lists(TERMS, max_size=3, unique=True)))
    tier = draw(st.none() | st.sampled_from(ClinicalSignificance))
    if tier is None:
        return ReportedClassification(draw(UNTIERED), conditions=conditions)
    found = significance_tier(tier.value.replace(" ", "_"))  # its LOINC answer
    assert found is not None
    return ReportedClassification(draw(TEXT), tier, found[1], conditions)


@st.composite
def consequences(draw: st.DrawFn) -> TranscriptConsequence | None:
    fields = {
        "hgnc_id": draw(st.none() | st.integers(1, 60000).map(lambda n: f"HGNC:{n}")),
        "gene_symbol": draw(st.none() | TEXT),
        "transcript": draw(st.none() | st.sampled_from(["NM_007294.4", "ENST00000357654.9"])),
        "hgvs_c": draw(st.none() | TEXT),
        "hgvs_p": draw(st.none() | TEXT),
    }
    if not any(fields.values()):
        return None
    return TranscriptConsequence(consequences=(), **fields)


@st.composite
def variants(draw: st.DrawFn, key: str, report: ReportStatus) -> ReportedVariant:
    zygosity = draw(st.none() | st.sampled_from(Zygosity))
    frequency = draw(st.none() | st.floats(0, 1))
    depth = draw(st.none() | st.integers(0, 10**9))
    call = None
    if draw(st.booleans()):
        chromosome = draw(st.sampled_from([*map(str, range(1, 23)), "X", "Y", "M"]))
        ref = draw(st.from_regex(r"[ACGTN]{1,5}", fullmatch=True))
        call = VariantCall(
            chrom=chromosome, chromosome=chromosome, pos=draw(st.integers(1, 10**8)), ref=ref,
            alt=draw(st.from_regex(r"[ACGTN]{1,5}", fullmatch=True)), alt_index=1, genotype="",
            zygosity=zygosity, allele_depth=depth, allele_frequency=frequency,
        )  # fmt: skip
    return ReportedVariant(
        key=key,
        assessment=draw(st.sampled_from(VariantAssessment)),
        consequence=draw(consequences()),
        genomic_hgvs=draw(st.none() | TEXT),
        display_name=draw(st.none() | PROSE),
        change_type=draw(st.none() | CHANGE_TYPES),
        cytogenetic_location=draw(st.none() | TEXT),
        call=call,
        zygosity=zygosity,
        source_class=draw(st.none() | st.sampled_from(GenomicSourceClass)),
        allele_frequency=frequency,
        allele_depth=depth,
        variation_codes=tuple(draw(st.lists(CODES, max_size=3, unique=True))),
        classification=draw(st.none() | classifications()),
        inheritance=draw(st.none() | st.sampled_from(VariantInheritance)),
        status=draw(st.none() | st.sampled_from([s for s in ReportStatus if s is not report])),
        notes=tuple(draw(st.lists(PROSE, max_size=2))),
        where=f"OBX-4 {key}",
    )


MOMENTS = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=d.microsecond // 100 * 100)  # DTM: to 1/10,000 s
    ),
    st.integers(-12 * 60, 14 * 60),
)


@st.composite
def reports(draw: st.DrawFn) -> LabReport:
    status = draw(st.sampled_from(ReportStatus))
    keys = draw(
        st.lists(st.from_regex(r"[1-9][0-9]?(\.[a-z])?", fullmatch=True), max_size=4, unique=True)
    )
    found = tuple(draw(variants(key, status)) for key in keys)
    filler = draw(
        st.none() | st.tuples(st.sampled_from(["urn:oid:2.16.840.1.113883.19.4.1", MRN]), IDS)
    )
    placer = ("urn:oid:2.16.840.1.113883.19.5.2", draw(IDS)) if filler is None else None
    key = filler or placer
    assert key is not None
    return LabReport(
        source_format=V2,
        report_key=f"{key[0]}|{key[1]}",
        patient=PatientRef(
            identifier_system=draw(st.sampled_from([MRN, "urn:oid:1.2.3"])),
            identifier_value=draw(TEXT),
        ),
        status=status,
        code=draw(st.none() | TERMS),
        build=draw(st.sampled_from(GenomeBuild)) if any(v.call for v in found) else None,
        source_class=draw(st.sampled_from(GenomicSourceClass)),
        sex=draw(st.sampled_from(Sex)),
        birth_date=draw(st.none() | st.dates(date(1900, 1, 1), date(2100, 1, 1))),
        placer_order=placer,
        filler_order=filler,
        specimen=draw(st.none() | st.tuples(st.just("urn:oid:2.16.840.1.113883.19.4.2"), TEXT)),
        specimen_type=draw(st.none() | TERMS),
        collected=draw(st.none() | MOMENTS),
        issued=draw(st.none() | MOMENTS),
        conclusion=draw(st.none() | PROSE),
        notes=tuple(draw(st.lists(PROSE, max_size=2))),
        diagnoses=tuple(draw(st.lists(TERMS, max_size=3, unique=True))),
        variants=found,
        message_id=CONTROL_ID,
    )


@settings(max_examples=200, deadline=None)
@given(reports())
def test_any_report_comes_back_from_its_oru_message(report: LabReport) -> None:
    (again,) = read_oru(_message(report)).reports
    assert asdict(again) == asdict(report)
