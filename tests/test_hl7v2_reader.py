"""HL7 v2 ORU^R01 genetic reports read into LabReports, bad messages refused with the error an
ACK reports, and the ACK itself (adapter.readers.hl7v2)."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import hl7
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.errors import MessageError
from adapter.model import (
    ClinicalSignificance,
    CodedTerm,
    GenomeBuild,
    GenomicSourceClass,
    LabReport,
    ReportedVariant,
    ReportStatus,
    Sex,
    VariantAssessment,
    VariantCall,
    VariantInheritance,
    Zygosity,
)
from adapter.readers.hl7v2 import (
    MessageHeader,
    OruMessage,
    acknowledgement,
    read_header,
    read_oru,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "hl7v2"
BAD = ROOT / "tests" / "data" / "hl7v2"
LOINC = "http://loinc.org"
MONDO = "http://purl.obolibrary.org/obo/mondo.owl"
OMIM = "https://www.omim.org"
SNOMED = "http://snomed.info/sct"
DBSNP = "http://www.ncbi.nlm.nih.gov/projects/SNP"
SO = "http://www.sequenceontology.org"
LAB_ORDERS = "urn:oid:2.16.840.1.113883.19.4.1"
#: the somatic example's PID-3.4 gives only a namespace ID: the deployment maps it
AUTHORITIES = {"HOSP": "https://hospital.example.org/mrn"}
CEST = timezone(timedelta(hours=2))
NOW = datetime(2025, 6, 12, 14, 31, 5, tzinfo=UTC)


def _read(name: str) -> OruMessage:
    return read_oru((EXAMPLES / name).read_bytes(), source=name, authorities=AUTHORITIES)


def _report(name: str) -> LabReport:
    message = _read(name)
    assert len(message.reports) == 1
    return message.reports[0]


# ---- the examples ------------------------------------------------------------------------------


def test_example_files_end_segments_in_carriage_returns_only() -> None:
    for path in EXAMPLES.glob("*.hl7"):
        data = path.read_bytes()
        assert b"\n" not in data, path.name
        assert data.startswith(b"MSH|^~\\&|") and data.endswith(b"\r"), path.name


def test_germline_panel_reads_the_order_patient_and_specimen() -> None:
    message = _read("germline-panel.hl7")
    report = message.reports[0]
    assert message.header == MessageHeader(
        field_separator="|",
        encoding_characters="^~\\&",
        sending_application="GENELAB",
        sending_facility="EXAMPLE GENOMICS LAB^2.16.840.1.113883.19.4^ISO",
        receiving_application="HOSPITAL_EHR",
        receiving_facility="EXAMPLE HOSPITAL^2.16.840.1.113883.19.5^ISO",
        message_type="ORU^R01^ORU_R01",
        control_id="GL-20250612-0001",
        processing_id="P",
        version="2.5.1",
    )
    assert report.source_format == "HL7 v2.5.1 ORU^R01"
    assert report.message_id == "GL-20250612-0001"
    assert report.report_key == f"{LAB_ORDERS}|FIL-GX-77821"
    assert report.filler_order == (LAB_ORDERS, "FIL-GX-77821")
    assert report.placer_order == ("urn:oid:2.16.840.1.113883.19.5.2", "PLC-2025-0042")
    # PID-3: the MR repetition, its system the ISO OID of PID-3.4
    assert report.patient.identifier_system == "urn:oid:2.16.840.1.113883.19.5.1"
    assert report.patient.identifier_value == "MRN-004711"
    assert (report.sex, report.birth_date) == (Sex.FEMALE, date(1980, 4, 15))
    assert report.status is ReportStatus.FINAL
    assert report.code == CodedTerm(LOINC, "81247-9", "Master HL7 genetic variant reporting panel")
    assert report.build is GenomeBuild.GRCH38
    assert report.source_class is GenomicSourceClass.GERMLINE
    assert report.collected == datetime(2025, 5, 20, 8, 30, tzinfo=CEST)
    assert report.issued == datetime(2025, 6, 12, 14, 25, tzinfo=CEST)
    assert report.specimen == ("urn:oid:2.16.840.1.113883.19.4.2", "SPC-1029")
    assert report.specimen_type == CodedTerm(SNOMED, "119297000", "Blood specimen (specimen)")
    assert report.diagnoses == (
        CodedTerm(MONDO, "MONDO:0003582", "Hereditary breast ovarian cancer syndrome"),
    )
    assert report.conclusion == (
        "A pathogenic BRCA1 variant was identified, consistent with hereditary breast and "
        "ovarian cancer syndrome.\nA BRCA2 variant of uncertain significance was also found."
    )
    assert report.notes == (
        "Example message of the fhir-genomics-adapter project (examples/hl7v2): not clinical data.",
    )


def test_germline_panel_reads_a_pathogenic_finding_and_a_vus() -> None:
    pathogenic, vus = _report("germline-panel.hl7").variants
    assert (pathogenic.key, pathogenic.where) == ("1", "OBX-4 1")
    assert pathogenic.assessment is VariantAssessment.PRESENT
    assert pathogenic.consequence is not None
    assert pathogenic.consequence.consequences == ()
    assert pathogenic.consequence.hgnc_id == "HGNC:1100"
    assert pathogenic.consequence.gene_symbol == "BRCA1"
    assert pathogenic.consequence.transcript == "NM_007294.4"
    assert pathogenic.consequence.hgvs_c == "NM_007294.4:c.68_69del"
    assert pathogenic.consequence.hgvs_p == "p.Glu23ValfsTer17"
    assert pathogenic.display_name == "BRCA1 c.68_69del (185delAG)"
    assert pathogenic.change_type == CodedTerm(SO, "SO:0000159", "deletion")
    assert pathogenic.cytogenetic_location == "17q21.31"
    assert pathogenic.variation_codes == (CodedTerm(DBSNP, "rs80357914", None),)
    assert pathogenic.zygosity is Zygosity.HETEROZYGOUS
    assert pathogenic.classification is not None
    assert pathogenic.classification.tier is ClinicalSignificance.PATHOGENIC
    assert pathogenic.classification.answer_code == "LA6668-3"
    condition = "Breast-ovarian cancer, familial, susceptibility to, 1"
    assert pathogenic.classification.conditions == (
        CodedTerm(MONDO, "MONDO:0011450", condition),
        CodedTerm(OMIM, "604370", condition),
    )
    # the v2 model writes a deletion without an anchor base (ALT empty): no VCF-style call
    assert pathogenic.call is None
    assert pathogenic.status is None  # OBX-11 F, as the report
    assert vus.classification is not None
    assert vus.classification.tier is ClinicalSignificance.UNCERTAIN_SIGNIFICANCE
    assert vus.classification.answer_code == "LA26333-7"
    assert vus.consequence is not None and vus.consequence.gene_symbol == "BRCA2"
    assert vus.notes == ("Classification may change as evidence accrues.",)


def test_somatic_tumor_reads_calls_with_allele_frequencies() -> None:
    report = _report("somatic-tumor.hl7")
    assert report.source_class is GenomicSourceClass.SOMATIC
    assert report.patient.identifier_system == AUTHORITIES["HOSP"]  # PID-3.4 namespace, mapped
    assert report.patient.identifier_value == "MRN-009823"
    assert report.sex is Sex.MALE
    # OBR-2 empty: the placer number is ORC-2's; OBR-3's system a URI
    assert report.placer_order == ("urn:oid:2.16.840.1.113883.19.5.2", "PLC-2025-0311")
    assert report.report_key == "https://lab.test/orders|SOM-5521"
    assert report.collected == datetime(2025, 6, 24, 11, 30, tzinfo=CEST)  # SPM-17: no OBR-7
    assert report.specimen_type == CodedTerm(SNOMED, "258435002", "Tumor tissue sample (specimen)")
    assert report.diagnoses == (
        CodedTerm(SNOMED, "254626006", "Adenocarcinoma of lung (disorder)"),
    )
    egfr, tp53 = report.variants
    assert egfr.call == VariantCall(
        chrom="7", chromosome="7", pos=55191822, ref="T", alt="G", alt_index=1, genotype="",
        zygosity=None, allele_depth=30, allele_frequency=0.3,
    )  # fmt: skip
    assert (egfr.allele_frequency, egfr.allele_depth) == (0.3, 30)
    assert egfr.genomic_hgvs == "NC_000007.14:g.55191822T>G"
    assert egfr.source_class is GenomicSourceClass.SOMATIC
    assert egfr.classification is None
    assert egfr.consequence is not None and egfr.consequence.hgvs_p == "p.Leu858Arg"
    assert tp53.call is not None
    assert (tp53.call.chromosome, tp53.call.pos, tp53.call.ref, tp53.call.alt) == (
        "17",
        7674220,
        "C",
        "T",
    )
    assert (tp53.allele_frequency, tp53.allele_depth) == (0.45, 18)
    assert tp53.variation_codes == (CodedTerm(DBSNP, "rs11540652", None),)


def test_compound_heterozygote_reads_two_variants_of_one_gene_in_trans() -> None:
    report = _report("compound-heterozygote.hl7")
    assert report.patient.identifier_system == "https://hospital.test/mrn"  # PID-3.4 URI
    assert report.diagnoses == (CodedTerm(SNOMED, "190905008", "Cystic fibrosis (disorder)"),)
    maternal, paternal = report.variants
    for variant in (maternal, paternal):
        assert variant.consequence is not None
        assert variant.consequence.gene_symbol == "CFTR"
        assert variant.consequence.hgnc_id == "HGNC:1884"
        assert variant.zygosity is Zygosity.HETEROZYGOUS
        assert variant.source_class is GenomicSourceClass.GERMLINE
        assert variant.classification is not None
        assert variant.classification.tier is ClinicalSignificance.PATHOGENIC
        assert variant.classification.conditions == (
            CodedTerm(MONDO, "MONDO:0009061", "Cystic fibrosis"),
            CodedTerm(OMIM, "219700", "Cystic fibrosis"),
        )
    assert maternal.inheritance is VariantInheritance.MATERNAL
    assert paternal.inheritance is VariantInheritance.PATERNAL
    assert maternal.consequence is not None and maternal.consequence.hgvs_p == "p.Phe508del"
    assert paternal.consequence is not None and paternal.consequence.hgvs_p == "p.Gly542Ter"


def test_corrected_report_keeps_the_report_and_variant_keys() -> None:
    original = _report("germline-panel.hl7")
    corrected = _report("germline-panel-corrected.hl7")
    assert corrected.status is ReportStatus.CORRECTED
    assert corrected.report_key == original.report_key
    assert [v.key for v in corrected.variants] == [v.key for v in original.variants]
    assert corrected.message_id != original.message_id
    unchanged, reclassified = corrected.variants
    assert unchanged.classification == original.variants[0].classification
    assert unchanged.status is ReportStatus.FINAL  # OBX-11 F under a corrected report
    assert reclassified.status is None  # OBX-11 C, as the report
    assert reclassified.classification is not None
    assert reclassified.classification.tier is ClinicalSignificance.LIKELY_BENIGN
    assert reclassified.classification.answer_code == "LA26334-5"


def test_names_addresses_and_other_identifiers_stay_out_of_the_model() -> None:
    report = _report("germline-panel.hl7")
    for phi in ("Doe", "Jane", "Example Street", "Springfield", "LAB-PT-8812"):
        assert phi not in repr(report)


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_lf_and_crlf_segment_ends_read_as_cr(line_end: str) -> None:
    text = (EXAMPLES / "somatic-tumor.hl7").read_text(encoding="utf-8")
    again = read_oru(text.replace("\r", line_end), authorities=AUTHORITIES)
    assert again == _read("somatic-tumor.hl7")


# ---- character sets and times -------------------------------------------------------------------


def _with_note(note: bytes, charset: bytes = b"") -> bytes:
    """The germline example with MSH-18 set and a note before its first OBX."""
    data = (EXAMPLES / "germline-panel.hl7").read_bytes()
    msh, rest = data.split(b"\r", 1)
    if charset:
        msh += b"|" * (17 - msh.count(b"|")) + charset
    obr_end = rest.index(b"\rOBX|") + 1
    return msh + b"\r" + rest[:obr_end] + b"NTE|2|L|" + note + b"\r" + rest[obr_end:]


def test_bytes_without_msh18_that_are_not_utf8_are_read_as_latin1() -> None:
    report = read_oru(_with_note("Befund für Müller".encode("latin-1"))).reports[0]
    assert report.notes[-1] == "Befund für Müller"


def test_bytes_are_decoded_as_msh18_declares() -> None:
    note = "Befund für Müller"
    as_utf8 = read_oru(_with_note(note.encode("utf-8"), b"UNICODE UTF-8")).reports[0]
    as_latin1 = read_oru(_with_note(note.encode("latin-1"), b"8859/1")).reports[0]
    assert as_utf8.notes[-1] == as_latin1.notes[-1] == note


def test_bytes_that_are_not_the_declared_character_set_are_rejected() -> None:
    with pytest.raises(MessageError) as caught:
        read_oru(_with_note("für".encode("latin-1"), b"ASCII"))
    assert (caught.value.ack_code, caught.value.condition, caught.value.field) == (
        "AR", "102", "MSH-18",
    )  # fmt: skip


def test_a_time_without_offset_is_taken_in_the_sender_zone_given() -> None:
    data = (BAD / "no_utc_offset.hl7").read_bytes()
    berlin = ZoneInfo("Europe/Berlin")
    report = read_oru(data, sender_zone=berlin).reports[0]
    assert report.issued == datetime(2025, 6, 12, 14, 25, tzinfo=berlin)
    assert report.issued is not None and report.issued.utcoffset() == timedelta(hours=2)


# ---- answers given as text, codes given as alternates -------------------------------------------

HEAD = (
    "MSH|^~\\&|LAB|LAB|EHR|EHR|20250101120000+0000||ORU^R01^ORU_R01|C1|P|2.5.1\r"
    "PID|1||M1^^^H&2.16.840.1.113883.19.5.1&ISO^MR\r"
    "OBR|1||F1^L^2.16.840.1.113883.19.4.1^ISO|81247-9^^LN|||||||||||||||||||||F\r"
)


def _variant(*observations: str) -> ReportedVariant:
    """The one variant of a message holding these OBX (their set IDs left empty)."""
    obx = "".join(f"OBX||{o}\r" for o in observations)
    report = read_oru(HEAD + "OBX||CWE|69548-6^^LN|1|LA9633-4^Present^LN\r" + obx).reports[0]
    (variant,) = report.variants
    return variant


def test_de_novo_source_class_is_germline_inherited_de_novo() -> None:
    variant = _variant("CWE|48002-0^^LN|1|LA26807-0^De novo^LN")
    assert variant.source_class is GenomicSourceClass.GERMLINE
    assert variant.inheritance is VariantInheritance.DE_NOVO


def test_unknown_inheritance_is_no_inheritance() -> None:
    assert _variant("CWE|94186-4^^LN|1|LA4489-6^Unknown^LN").inheritance is None


def test_loinc_code_as_obx3_alternate_is_read() -> None:
    variant = _variant("CWE|LOCAL-ZYG^Zygosity^L^53034-5^Allelic state^LN|1|LA6705-3^Homozygous^LN")
    assert variant.zygosity is Zygosity.HOMOZYGOUS


def test_a_significance_that_is_no_acmg_tier_is_kept_as_text() -> None:
    variant = _variant("CWE|53037-8^^LN|1|^Drug response")
    classification = variant.classification
    assert classification is not None
    assert (classification.text, classification.tier, classification.answer_code) == (
        "Drug response", None, None,
    )  # fmt: skip


def test_a_value_stated_twice_alike_is_one_value() -> None:
    variant = _variant("NM|81258-6^^LN|1|0.5", "NM|81258-6^^LN|1|0.50")
    assert variant.allele_frequency == 0.5


# ---- bad input: each its MessageError ------------------------------------------------------------

#: file → (ack code, HL7 table 0357 condition, field, ERR-2 segment sequence)
REFUSED = {
    "missing_msh.hl7": ("AR", "100", None, None),
    "broken_encoding_characters.hl7": ("AR", "102", "MSH-2", 1),
    "wrong_message_type.hl7": ("AR", "200", "MSH-9.1", 1),
    "wrong_event.hl7": ("AR", "201", "MSH-9.2", 1),
    "unsupported_version.hl7": ("AR", "203", "MSH-12", 1),
    "undecodable_character_set.hl7": ("AR", "103", "MSH-18", 1),
    # the 3rd OBX of the message: ERR-2's segment sequence counts OBX, not all segments
    "unknown_loinc_in_variant.hl7": ("AE", "103", "OBX-3", 3),
    "missing_result_status.hl7": ("AE", "101", "OBR-25", 1),
    "missing_patient_identifier.hl7": ("AE", "101", "PID-3", 1),
    "assessment_without_sub_id.hl7": ("AE", "101", "OBX-4", 1),
    "no_order_number.hl7": ("AE", "101", "OBR-3", 1),
    "non_numeric_allele_frequency.hl7": ("AE", "102", "OBX-5", 3),
    "wrong_value_type.hl7": ("AE", "102", "OBX-2", 2),
    "no_utc_offset.hl7": ("AE", "102", "OBR-22", 1),
    "bad_escape_sequence.hl7": ("AE", "102", "NTE-3", 1),
    "unmapped_assigning_authority.hl7": ("AE", "103", "PID-3.4", 1),
    "query_only_result_status.hl7": ("AE", "103", "OBR-25", 1),
    "unknown_allelic_state.hl7": ("AE", "103", "OBX-5", 2),
    "deleted_observation_status.hl7": ("AE", "103", "OBX-11", 1),
    "group_without_assessment.hl7": ("AE", "100", "OBX-4", 1),
    "obx_before_obr.hl7": ("AE", "100", "OBX", 1),
    "two_genome_builds.hl7": ("AE", "207", "OBX-5", 3),
}
#: every identifier value, name and date the bad files hold
IDENTIFIERS = ("MRN-BAD-1234", "PLC-BAD-42", "FIL-BAD-77", "SPC-BAD-9", "Doe", "Jane", "19800415")


def test_every_bad_input_file_is_listed() -> None:
    assert sorted(p.name for p in BAD.glob("*.hl7")) == sorted(REFUSED)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_input_raises_its_message_error(name: str) -> None:
    with pytest.raises(MessageError) as caught:
        read_oru((BAD / name).read_bytes(), source=name)
    error = caught.value
    assert (error.ack_code, error.condition, error.field, error.segment_index) == REFUSED[name]
    assert error.source == name
    for value in IDENTIFIERS:
        assert value not in str(error), value


def test_unmapped_authority_error_tells_how_to_map_it() -> None:
    with pytest.raises(MessageError) as caught:
        read_oru((EXAMPLES / "somatic-tumor.hl7").read_bytes())
    assert caught.value.field == "PID-3.4"
    assert "'HOSP'" in caught.value.message and "authorities" in caught.value.message
    assert "MRN-009823" not in str(caught.value)


def test_read_header_reads_the_msh_of_a_refused_message() -> None:
    header = read_header((BAD / "wrong_message_type.hl7").read_bytes())
    assert header is not None
    assert (header.message_type, header.control_id) == ("ADT^A01^ADT_A01", "BAD-0001")
    assert read_header((BAD / "missing_msh.hl7").read_bytes()) is None
    assert read_header((BAD / "broken_encoding_characters.hl7").read_bytes()) is None


# ---- acknowledgements --------------------------------------------------------------------------


def _parsed_ack(text: str) -> hl7.Message:
    assert text.endswith("\r") and "\n" not in text
    return hl7.parse(text)


def test_accept_ack_swaps_sender_and_receiver_and_answers_the_control_id() -> None:
    header = _read("germline-panel.hl7").header
    ack = _parsed_ack(acknowledgement(header, "AA", control_id="ACK-77", now=NOW))
    assert [str(s[0]) for s in ack] == ["MSH", "MSA"]
    assert str(ack["MSH.F3"]) == "HOSPITAL_EHR"
    assert str(ack.segment("MSH")(4)) == "EXAMPLE HOSPITAL^2.16.840.1.113883.19.5^ISO"
    assert str(ack["MSH.F5"]) == "GENELAB"
    assert str(ack.segment("MSH")(6)) == "EXAMPLE GENOMICS LAB^2.16.840.1.113883.19.4^ISO"
    assert str(ack.segment("MSH")(7)) == "20250612143105+0000"
    assert str(ack.segment("MSH")(9)) == "ACK^R01^ACK"
    assert (str(ack["MSH.F10"]), str(ack["MSH.F11"]), str(ack["MSH.F12"])) == (
        "ACK-77",
        "P",
        "2.5.1",
    )
    assert (str(ack["MSA.F1"]), str(ack["MSA.F2"])) == ("AA", "GL-20250612-0001")


def test_error_ack_names_the_segment_field_and_condition() -> None:
    data = (BAD / "unmapped_assigning_authority.hl7").read_bytes()
    with pytest.raises(MessageError) as caught:
        read_oru(data)
    error = caught.value
    text = acknowledgement(read_header(data), error.ack_code, error=error, control_id="A2", now=NOW)
    ack = _parsed_ack(text)
    assert (str(ack["MSA.F1"]), str(ack["MSA.F2"])) == ("AE", "BAD-0001")
    err = ack.segment("ERR")
    assert str(err(2)) == "PID^1^3^^4"  # ERL: segment, sequence, field, (repetition), component
    assert str(err(3)) == "103^Table value not found^HL70357"
    assert str(err(4)) == "E"
    assert ack.unescape(str(err(8))) == error.message
    assert "MRN-BAD-1234" not in text


def test_reject_ack_for_a_message_without_msh() -> None:
    with pytest.raises(MessageError) as caught:
        read_oru((BAD / "missing_msh.hl7").read_bytes())
    error = caught.value
    ack = _parsed_ack(acknowledgement(None, "AR", error=error, control_id="A3", now=NOW))
    assert str(ack.segment("MSH")(9)) == "ACK^R01^ACK"
    assert (str(ack["MSA.F1"]), str(ack["MSA.F2"])) == ("AR", "")
    assert str(ack.segment("ERR")(2)) == ""  # no segment to name
    assert str(ack.segment("ERR")(3)) == "100^Segment sequence error^HL70357"


def test_reject_ack_echoes_the_event_and_escapes_delimiters_in_its_message() -> None:
    data = (BAD / "wrong_event.hl7").read_bytes()
    with pytest.raises(MessageError) as caught:
        read_oru(data)
    ack = _parsed_ack(
        acknowledgement(read_header(data), "AR", error=caught.value, control_id="A4", now=NOW)
    )
    assert str(ack.segment("MSH")(9)) == "ACK^R30^ACK"
    assert str(ack.segment("ERR")(2)) == "MSH^1^9^^2"
    assert str(ack.segment("ERR")(3)) == "201^Unsupported event code^HL70357"
    assert "ORU^R01" in caught.value.message
    assert ack.unescape(str(ack.segment("ERR")(8))) == caught.value.message


def test_ack_uses_the_message_own_delimiters() -> None:
    text = (BAD / "wrong_message_type.hl7").read_text().replace("^", "$").replace("|", "#")
    header = read_header(text)
    assert header is not None and header.encoding_characters == "$~\\&"
    ack = acknowledgement(header, "AR", control_id="A5", now=NOW)
    assert ack.startswith("MSH#$~\\&#HOSPITAL_EHR#") and "ACK$A01$ACK" in ack
    assert str(_parsed_ack(ack)["MSA.F2"]) == "BAD-0001"


def test_ack_code_must_be_aa_ae_or_ar() -> None:
    with pytest.raises(ValueError, match="AA, AE, AR"):
        acknowledgement(None, "CA", control_id="A6", now=NOW)


# ---- nothing but MessageError --------------------------------------------------------------------

GERMLINE = (EXAMPLES / "germline-panel.hl7").read_text(encoding="utf-8")


def _only_message_errors(message: str | bytes) -> None:
    try:
        read_oru(message, authorities=AUTHORITIES)
    except MessageError as e:
        assert e.ack_code in ("AE", "AR")
        assert e.condition.isdigit()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_arbitrary_input_raises_nothing_but_message_error(message: str | bytes) -> None:
    _only_message_errors(message)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="|^~\\&\r\nMSHPIDOBXR0123456789.-+ LNCWE", max_size=300))
def test_delimiter_soup_after_an_msh_raises_nothing_but_message_error(tail: str) -> None:
    _only_message_errors("MSH|^~\\&|" + tail)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(GERMLINE) - 1), st.text(max_size=8))
def test_a_damaged_example_raises_nothing_but_message_error(at: int, damage: str) -> None:
    _only_message_errors(GERMLINE[:at] + damage + GERMLINE[at + len(damage) :])


def _variant_rows() -> list[tuple[str, str]]:
    """(LOINC code, OBX-2 value type) of every variant row of mappings/hl7v2_variant_obx.csv."""
    with (ROOT / "mappings" / "hl7v2_variant_obx.csv").open(encoding="utf-8") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return [
            (r["code"], t) for r in rows if r["level"] == "variant" for t in r["v2_types"].split()
        ]


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(_variant_rows()), st.text(alphabet="0123456789.-+eE^&~\\ACGTLNa|", max_size=40)
)
def test_any_value_of_a_variant_observation_raises_nothing_but_message_error(
    row: tuple[str, str], value: str
) -> None:
    code, value_type = row
    assessment = "OBX||CWE|69548-6^^LN|1|LA9633-4^Present^LN\r"
    _only_message_errors(f"{HEAD}{assessment}OBX||{value_type}|{code}^^LN|1|{value}\r")


def test_a_huge_read_depth_is_a_data_type_error() -> None:
    with pytest.raises(MessageError) as caught:
        _variant("NM|82121-5^^LN|1|" + "9" * 400)
    assert (caught.value.condition, caught.value.field) == ("102", "OBX-5")
