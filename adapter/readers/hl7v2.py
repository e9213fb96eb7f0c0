"""HL7 v2 ORU^R01 genetic reports in, and the acknowledgement each message is owed.

One message holds one or more reports, each an ORDER_OBSERVATION group (ORC, OBR, NTE, OBX,
SPM) after its patient's PID; :func:`read_oru` reads each into an
:class:`~adapter.model.LabReport` and :func:`acknowledgement` writes the ACK. A message the
adapter cannot take raises :class:`~adapter.errors.MessageError`, never another exception: its
``ack_code`` is AR when the message itself is unusable (no MSH, broken encoding characters, a
message type, event or version the adapter does not take) and AE when its content is wrong;
its ``condition`` is the HL7 table 0357 code the ACK's ERR-3 carries, its ``field`` the place
(``OBX-3``, ``PID-3.4``) and its ``segment_index`` the ERR-2 segment sequence: the occurrence
of that segment among the message's segments of its type (the 3rd OBX is 3), as ERL-2 defines
it. No error message holds an identifier's value: errors name the field.

Model: HL7 Version 2 Implementation Guide: Clinical Genomics; Fully LOINC-Qualified Genetic
Variation Model (ORU^R01, HL7 v2.5.1; https://wiki.hl7.org/Product_CG_GENO), whose OBX codes
are the LOINC panel 81247-9 "Master HL7 genetic variant reporting panel"
(https://loinc.org/81247-9). Each variant is the group of OBX of one OBR sharing an OBX-4
sub-ID, the first of them 69548-6 Genetic variant assessment; OBX without a sub-ID speak of
the whole report. ``mappings/hl7v2_variant_obx.csv`` says which LOINC code fills which model
field and which OBX-2 value types each accepts; the HL7 v2 writer uses the same table.

Decisions, each a policy of this module:

* **Character set.** A ``str`` is taken as decoded. Bytes are decoded as MSH-18 names them
  (HL7 table 0211: ASCII, 8859/1-9 and 15, UNICODE UTF-8, ISO IR6/IR100/IR192, GB 18030-2000,
  BIG-5; others are refused, AR 103); without MSH-18 as UTF-8, and when that fails as ISO
  8859-1. Why: v2.5.1's default is 7-bit ASCII, which UTF-8 extends and which today's engines
  send as UTF-8; bytes that are not UTF-8 come from a legacy 8-bit sender, and ISO 8859-1 (the
  usual one) decodes any byte, so such a message is read rather than refused. Segments may end
  in CR (the standard), LF or CRLF (what engines and files produce).
* **Versions.** MSH-12 2.5, 2.5.1 and every later 2.x are taken (fields are only ever appended
  to segments, and SPM and CWE, which the model needs, exist from 2.5); earlier ones and
  non-2.x are refused, AR 203. MSH-9 must be ORU (else AR 200) with event R01 (else AR 201);
  MSH-9, MSH-10 and MSH-12 must be given (AR 101). One message per call: a second MSH or a
  batch (BHS, FHS) is AR 100, as is a line that is no segment. MSH-11 (processing ID) is not
  judged: :class:`MessageHeader` carries it for the deployment, and :func:`read_header` reads
  it from a message :func:`read_oru` refused, for that message's ACK.
* **Patient.** PID-3's repetition of identifier type MR (else the first) is the patient. Its
  system is the HD universal ID of PID-3.4 when typed ISO (``urn:oid:<oid>``), URI or URL (the
  URI itself), UUID or GUID (``urn:uuid:<uuid>``); otherwise PID-3.4's namespace ID looked up
  in ``authorities``, the deployment's map of assigning authority namespace → system URI. A
  namespace it lacks is AE 103 (table value not found: the namespace ID is a value of the
  receiver's user-defined table 0363 of assigning authorities; 204 "unknown key identifier" is
  kept for backwards compatibility only, for a key such as a patient that is not on file).
  PID-7 → birth date (a date of lower precision than a day is no birth date), PID-8 M/F → sex,
  anything else unknown. Names, addresses and telephone numbers are never read.
* **Order.** OBR-2 placer and OBR-3 filler order numbers (ORC-2/3 when empty), their systems
  by the rules of PID-3.4 from EI-3/EI-4 or EI-2. ``report_key`` is the filler number as
  ``system|value`` (a corrected report keeps its filler number, so it updates the resources of
  the original), else the placer's; neither is AE 101 OBR-3. OBR-4 → ``code``, OBR-7 (else
  SPM-17) → ``collected``, OBR-22 → ``issued``, SPM-2 (filler, else placer) → ``specimen``,
  SPM-4 → ``specimen_type``, NTE after OBR or after a report-level OBX → ``notes``, NTE after a
  variant's OBX → that variant's notes, MSH-10 → ``message_id``. OBX after SPM describe the
  specimen and are not read.
* **Times.** A DTM with a UTC offset is taken as written. One without is taken in
  ``sender_zone`` when the caller gives one (HL7: such a time is the sender's local time),
  else refused, AE 102: a report time must be unambiguous.
* **Status.** OBR-25 (HL7 table 0123, CodeSystem v2-0123 of HL7 Terminology 7.0.1) maps as the
  HL7 v2-to-FHIR ConceptMap table-hl70123-queries-to-diagnostic-report-status does
  (https://hl7.org/fhir/uv/v2mappings/ConceptMap-table-hl70123-queries-to-diagnostic-report-status.html):
  O, I, S → registered; P → preliminary; C → corrected; R → partial; F → final; X → cancelled.
  It leaves A, M and N unmapped; here A (some results) → partial, M (corrected, not final) →
  preliminary, N (procedure done, results pending) → registered. Y and Z are for queries only:
  AE 103. OBX-11 of a variant's 69548-6 (table 0085) becomes its ``status`` when it differs
  from the report's: F, V, U → final; C, A, B → corrected; P → preliminary; R, S → partial;
  I, O → registered; X → cancelled; D, W (delete, posted in error) and N (not asked) are AE 103.
* **Answers.** Coded answers are looked up by their LOINC answer code in
  ``mappings/answer_codes.csv`` (groups variant-value, allelic-state, source-class,
  variant-inheritance, genome-build, chromosome, coordinate-system, dna-change-type) and
  ``mappings/clinical_significance.csv``, else by their text against the model's names
  (``Heterozygous``, ``No call``, ``De novo``: answers the table has no row for, such as
  LL1971-2's Absent or 94186-4's Maternal, are read so); an answer neither names is AE 103.
  Genomic source class "De novo" (LL378-1) is germline with inheritance de novo; variant
  inheritance (94186-4) "Unknown" is no inheritance. A clinical significance that is none of
  the five ACMG/AMP tiers is kept as text. Other coded values become a
  :class:`~adapter.model.CodedTerm` in the system :func:`~adapter.code_systems.by_v2_name`
  names, text only when it names none.
* **Variants.** Gene (48018-6: ``HGNC:1100^BRCA1^HGNC``, or a symbol coded HGNC-Symb),
  transcript, c. and p.HGVS → the consequence (no Sequence Ontology consequence terms);
  g.HGVS, display name, cytogenetic location, DNA change type, ClinVar/dbSNP/COSMIC ids, VAF,
  allelic read depth, allelic state, genomic source class, clinical significance and its
  associated phenotypes, inheritance → their fields. A VariantCall is built only when
  chromosome, a 1-based start, REF and ALT are all given and REF and ALT are nucleotide
  strings, the coordinate system (92822-6) is absent or 1-based character counting and the
  genomic reference sequence (48013-7) is absent or the build's accession of that chromosome;
  its genotype is "" and its zygosity the allelic state. The v2 model writes indels without an
  anchor base (REF or ALT empty, https://loinc.org/69547-8): those keep their HGVS names and no
  call. One report has one genome build; two different ones are AE 207. The report's source
  class is its report-level 48002-0, else the one class all its variants state, else germline.
* **Strictness.** OBX-3 is read as LOINC when coded LN, when its alternate (CWE-4..6) is, or
  when it names no coding system. In a variant group an OBX code the table lacks is AE 103
  (the adapter could not carry it into the model, and a report must not lose a finding
  silently); a group not starting with 69548-6 is AE 100; a 69548-6 without a sub-ID is AE 101
  OBX-4; a value type the table does not list for the code is AE 102 OBX-2; a single-valued
  observation stated twice, differently, is AE 207. A report-level OBX the table lacks (a PDF
  of the report, a reason for study, 48018-6 listing the genes studied) is not read.

Acknowledgements (HL7 v2.5.1 chapter 2, Control: the ACK message, and the MSA and ERR
segments): MSH with sender and receiver swapped, written in the received message's delimiters
so its HD fields are copied as written, MSH-9 ``ACK^<event>^ACK`` (the event of the message
acknowledged, R01 when unknown), version 2.5.1; MSA-1 the acknowledgment code (HL7 table 0008:
AA accept, AE error, AR reject) and MSA-2 the control ID acknowledged; with an error, ERR-2 its
location (ERL: segment ID^segment sequence^field position[^^component]), ERR-3 its HL7 table
0357 condition (code^text^HL70357, CodeSystem v2-0357 of HL7 Terminology 7.0.1), ERR-4
severity E (table 0516) and ERR-8 the error's message, escaped. ERR field definitions as
https://www.integrationsoup.com/hl7-reference/segments/err lists them for v2.5.1, ERL as
https://usnistgov.github.io/v2plusDemo/data-type/ERL.html defines it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from functools import cache
from typing import Final, NoReturn, TypeVar

import hl7

from ..assembly import accession, normalize_chromosome, parse_build
from ..code_systems import by_v2_name
from ..errors import GenomeBuildError, MessageError
from ..model import (
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
from ..resources import mapping_rows
from .annotations import significance_tier

__all__ = ["MessageHeader", "OruMessage", "acknowledgement", "read_header", "read_oru"]

T = TypeVar("T", bound=Hashable)
E = TypeVar("E", bound=StrEnum)

#: the delimiters an acknowledgement uses when the message's own are unknown
_DEFAULT_FIELD: Final = "|"
_DEFAULT_ENCODING: Final = "^~\\&"
_ACK_VERSION: Final = "2.5.1"
#: HL7 table 0357, CodeSystem v2-0357 of HL7 Terminology 7.0.1: the conditions this module uses
_CONDITIONS: Final = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "203": "Unsupported version id",
    "207": "Application error",
}
_ACK_CODES: Final = frozenset({"AA", "AE", "AR"})  # HL7 table 0008, original mode
#: MSH-18 (HL7 table 0211) → Python codec
_CHARSETS: Final = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "ISO IR100": "latin-1",
    "UNICODE UTF-8": "utf-8",
    "ISO IR192": "utf-8",
    "GB 18030-2000": "gb18030",
    "BIG-5": "big5",
    **{f"8859/{n}": f"iso8859_{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
}
#: OBR-25, HL7 table 0123 → the report's status (see the module docstring)
_RESULT_STATUS: Final = {
    "O": ReportStatus.REGISTERED,
    "I": ReportStatus.REGISTERED,
    "S": ReportStatus.REGISTERED,
    "N": ReportStatus.REGISTERED,
    "A": ReportStatus.PARTIAL,
    "R": ReportStatus.PARTIAL,
    "P": ReportStatus.PRELIMINARY,
    "M": ReportStatus.PRELIMINARY,
    "C": ReportStatus.CORRECTED,
    "F": ReportStatus.FINAL,
    "X": ReportStatus.CANCELLED,
}
#: OBX-11, HL7 table 0085 → a variant's status
_OBSERVATION_STATUS: Final = {
    "F": ReportStatus.FINAL,
    "V": ReportStatus.FINAL,
    "U": ReportStatus.FINAL,
    "C": ReportStatus.CORRECTED,
    "A": ReportStatus.CORRECTED,
    "B": ReportStatus.CORRECTED,
    "P": ReportStatus.PRELIMINARY,
    "R": ReportStatus.PARTIAL,
    "S": ReportStatus.PARTIAL,
    "I": ReportStatus.REGISTERED,
    "O": ReportStatus.REGISTERED,
    "X": ReportStatus.CANCELLED,
}
_ASSESSMENT: Final = "69548-6"
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_VERSION = re.compile(r"2\.(\d+)(?:\.\d+)*")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9]\d*))+")
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_NUCLEOTIDES = re.compile(r"[ACGTN]+")
_DTM = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?"
    r"(?:([+-])(\d{2})(\d{2}))?"
)
_FIELD_NAME = re.compile(r"([A-Z][A-Z0-9]{2})(?:-(\d+)(?:\.(\d+))?)?")
_SHOWN = re.compile(r"[\w.:/ -]{1,40}")


# ---- the message header and what read_oru returns ------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """What an acknowledgement needs of a message's MSH, each field as written (in the
    message's own delimiters, so the ACK copies them unchanged)."""

    field_separator: str  # MSH-1
    encoding_characters: str  # MSH-2: component, repetition, escape, subcomponent[, truncation]
    sending_application: str  # MSH-3, the HD as written
    sending_facility: str  # MSH-4
    receiving_application: str  # MSH-5
    receiving_facility: str  # MSH-6
    message_type: str  # MSH-9, e.g. "ORU^R01^ORU_R01"
    control_id: str  # MSH-10: what MSA-2 of the ACK answers
    processing_id: str  # MSH-11, e.g. "P"
    version: str  # MSH-12's version ID, e.g. "2.5.1"


@dataclass(frozen=True, slots=True)
class OruMessage:
    """One ORU^R01 message: its header and one report per ORDER_OBSERVATION group."""

    header: MessageHeader
    reports: tuple[LabReport, ...]


# ---- reading -----------------------------------------------------------------------------


def read_oru(
    message: str | bytes,
    *,
    source: str = "message",
    authorities: Mapping[str, str] = {},
    sender_zone: tzinfo | None = None,
) -> OruMessage:
    """Read one ORU^R01 message into its reports; ``source`` names it in errors,
    ``authorities`` maps assigning authority namespace IDs to system URIs, ``sender_zone``
    is the zone of times written without a UTC offset (None: such times are refused)."""
    reader = _Reader.of(_decode(message, source), source, authorities, sender_zone)
    reader.check_message()
    return OruMessage(reader.header, tuple(reader.report(g) for g in reader.orders()))


def read_header(message: str | bytes) -> MessageHeader | None:
    """The message's MSH, for an acknowledgement of a message :func:`read_oru` refused;
    None when it has no usable MSH."""
    try:
        text = _decode(message, "message")
    except MessageError:  # an unknown character set: MSH-18 read as Latin-1 says which
        text = message.decode("latin-1") if isinstance(message, bytes) else message
    try:
        return _Reader.of(text, "message", {}, None).header
    except MessageError:
        pass
    first = text.replace("\n", "\r").split("\r", 1)[0]  # the MSH alone, when the rest is bad
    try:
        return _Reader.of(first, "message", {}, None).header if first.startswith("MSH") else None
    except MessageError:
        return None


def _decode(message: str | bytes, source: str) -> str:
    """The message as text, decoded as its MSH-18 says (see the module docstring)."""
    if isinstance(message, str):
        return message.removeprefix("\ufeff")
    raw = message.removeprefix(b"\xef\xbb\xbf")
    charset = _declared_charset(raw.decode("latin-1"))
    if not charset:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    codec = _CHARSETS.get(charset.upper())
    if codec is None:
        raise MessageError(
            f"MSH-18 names the character set {_shown(charset)}, which the adapter cannot "
            f"decode; send {', '.join(sorted(_CHARSETS))}, or bytes in UTF-8 without MSH-18",
            ack_code="AR",
            condition="103",
            source=source,
            field="MSH-18",
            segment_index=1,
            field_position=18,
        )
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as e:
        raise MessageError(
            f"the message's bytes are not {charset} as MSH-18 declares (byte {e.start}); "
            "declare the character set it is written in",
            ack_code="AR",
            condition="102",
            source=source,
            field="MSH-18",
            segment_index=1,
            field_position=18,
        ) from e


def _declared_charset(text: str) -> str:
    """MSH-18's first repetition, read before decoding (its names are ASCII)."""
    first = text.lstrip().split("\r", 1)[0].split("\n", 1)[0]
    if not first.startswith("MSH") or len(first) < 8:
        return ""
    fields = first.split(first[3])
    repetition = first[5]
    return fields[17].split(repetition)[0].strip() if len(fields) > 17 else ""


@dataclass(frozen=True, slots=True)
class _Segment:
    """One segment, its fields as written: ``fields[n]`` is field n (``fields[0]`` its ID)."""

    name: str
    sequence: int  # 1-based occurrence among the message's segments of this ID (ERL-2)
    fields: tuple[str, ...]

    def raw(self, position: int) -> str:
        return self.fields[position] if position < len(self.fields) else ""


@dataclass(frozen=True, slots=True)
class _Coded:
    """A CWE/CE value, unescaped: identifier, text, coding system name."""

    code: str
    text: str
    system: str

    def value(self) -> str:
        """The identifier, else the text: how the model keeps an HGVS name or an accession."""
        return self.code or self.text


@dataclass(slots=True)
class _Observation:
    """One OBX of a report (the NTE after it attached)."""

    segment: _Segment
    code: str  # the LOINC code of OBX-3
    sub_id: str  # OBX-4
    value_type: str  # OBX-2
    values: list[str]  # OBX-5's repetitions, as written
    status: str  # OBX-11
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Order:
    """One ORDER_OBSERVATION group and the PID it follows."""

    patient: _Segment
    order: _Segment | None  # the ORC before the OBR
    request: _Segment  # the OBR
    segments: list[_Segment] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Row:
    """What the reader needs of a row of ``mappings/hl7v2_variant_obx.csv``."""

    code: str
    model_field: str
    v2_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Observations:
    """The observations of a report, or of one variant, by model field."""

    by_field: dict[str, list[_Observation]]

    def of(self, name: str) -> list[_Observation]:
        return self.by_field.get(name, [])


@dataclass(frozen=True, slots=True)
class _Reader:
    """One message split into segments, with its delimiters and the caller's settings."""

    header: MessageHeader
    segments: tuple[_Segment, ...]
    parsed: hl7.Message  # for hl7's unescape
    source: str
    authorities: Mapping[str, str]
    sender_zone: tzinfo | None

    @classmethod
    def of(
        cls,
        text: str,
        source: str,
        authorities: Mapping[str, str],
        sender_zone: tzinfo | None,
    ) -> _Reader:
        lines = [s for s in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if s.strip()]
        _check_structure(lines, source)
        try:  # the MSH by python-hl7: the delimiters it declares, checked, and its unescape
            parsed = hl7.parse(lines[0])
        except (hl7.ParseException, ValueError, IndexError, AssertionError) as e:
            raise MessageError(
                "the message cannot be split into segments and fields; check its delimiters",
                ack_code="AR",
                condition="102",
                source=source,
                field="MSH-2",
                segment_index=1,
                field_position=2,
            ) from e
        msh = _Segment("MSH", 1, tuple(str(f) for f in parsed[0]))
        counts = {"MSH": 1}
        segments = [msh]
        for line in lines[1:]:  # split as python-hl7 would, without its ~100 objects a segment
            fields = tuple(line.split(msh.raw(1)))
            counts[fields[0]] = counts.get(fields[0], 0) + 1
            segments.append(_Segment(fields[0], counts[fields[0]], fields))
        header = MessageHeader(
            field_separator=msh.raw(1),
            encoding_characters=msh.raw(2),
            sending_application=msh.raw(3),
            sending_facility=msh.raw(4),
            receiving_application=msh.raw(5),
            receiving_facility=msh.raw(6),
            message_type=msh.raw(9),
            control_id=msh.raw(10),
            processing_id=msh.raw(11),
            version=msh.raw(12).split(msh.raw(2)[0])[0],
        )
        return cls(header, tuple(segments), parsed, source, authorities, sender_zone)

    # -- delimiters and errors --

    def fail(
        self,
        segment: _Segment | None,
        position: int | None,
        message: str,
        *,
        condition: str,
        component: int | None = None,
        ack_code: str = "AE",
    ) -> MessageError:
        """An error naming the field, for the caller to raise."""
        place = None if segment is None else segment.name
        if place is not None and position is not None:
            place += f"-{position}" + (f".{component}" if component else "")
        return MessageError(
            message,
            ack_code=ack_code,
            condition=condition,
            source=self.source,
            field=place,
            segment_index=None if segment is None else segment.sequence,
            field_position=position,
        )

    def repetitions(self, raw: str) -> list[str]:
        return raw.split(self.header.encoding_characters[1]) if raw else []

    def components(self, raw: str) -> list[str]:
        return raw.split(self.header.encoding_characters[0])

    def subcomponents(self, raw: str) -> list[str]:
        return raw.split(self.header.encoding_characters[3])

    def text(self, segment: _Segment, position: int, raw: str) -> str:
        """A value unescaped; an escape sequence HL7 does not define is AE 102."""
        escape = self.header.encoding_characters[2]
        if escape not in raw:
            return raw
        e = re.escape(escape)
        sequences = r"F|S|T|R|E|H|N|X(?:[0-9A-Fa-f]{2})+|\.(?:br|fi|nf|ce|(?:sp|in|ti|sk)[+-]?\d*)"
        if not re.fullmatch(rf"(?:[^{e}]|{e}(?:{sequences}){e})*", raw):
            raise self.fail(
                segment,
                position,
                "an escape sequence is unterminated or not one HL7 v2.5.1 "
                "defines (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh\\ \\.br\\ ...)",
                condition="102",
            )
        unescaped: str = self.parsed.unescape(raw, app_map={"H": "", "N": ""})
        return unescaped.replace("\r", "\n")

    def part(self, segment: _Segment, position: int, raw: str, index: int) -> str:
        """Component ``index`` (1-based) of a raw value, unescaped; "" when absent."""
        parts = self.components(raw)
        return self.text(segment, position, parts[index - 1]) if index <= len(parts) else ""

    def coded(self, segment: _Segment, position: int, raw: str) -> _Coded:
        code, text, system = (self.part(segment, position, raw, i).strip() for i in (1, 2, 3))
        return _Coded(code, text, system)

    # -- the message --

    def check_message(self) -> None:
        """MSH-9, MSH-10 and MSH-12 name a message this reader takes (see the docstring)."""
        msh = self.segments[0]
        kind = self.components(msh.raw(9))
        code, event = [*kind, ""][:2]
        if not code:
            raise self.fail(
                msh,
                9,
                "MSH-9 (message type) is empty; send ORU^R01^ORU_R01",
                condition="101",
                ack_code="AR",
            )
        if code != "ORU":
            raise self.fail(
                msh,
                9,
                f"message type {_shown(code)} is not taken: the adapter reads "
                "ORU^R01 lab results only",
                condition="200",
                component=1,
                ack_code="AR",
            )
        if event != "R01":
            raise self.fail(
                msh,
                9,
                f"event {_shown(event)} is not taken: the adapter reads "
                "ORU^R01 (unsolicited observation results) only",
                condition="201",
                component=2,
                ack_code="AR",
            )
        if not msh.raw(10):
            raise self.fail(
                msh,
                10,
                "MSH-10 (message control ID) is empty; an acknowledgement "
                "must name the message it answers",
                condition="101",
                ack_code="AR",
            )
        self._check_version(msh)

    def _check_version(self, msh: _Segment) -> None:
        version = self.header.version
        if not version:
            raise self.fail(
                msh, 12, "MSH-12 (version ID) is empty; send 2.5.1", condition="101", ack_code="AR"
            )
        match = _VERSION.fullmatch(version)
        if match is None or int(match.group(1)) < 5:
            raise self.fail(
                msh,
                12,
                f"HL7 version {_shown(version)} is not taken: the adapter "
                "reads v2.5, v2.5.1 and later v2.x messages",
                condition="203",
                ack_code="AR",
            )

    def orders(self) -> list[_Order]:
        """The ORDER_OBSERVATION groups, each with the PID before it."""
        patient: _Segment | None = None
        order: _Segment | None = None
        groups: list[_Order] = []
        for segment in self.segments[1:]:
            if segment.name == "PID":
                patient, order = segment, None
            elif segment.name == "ORC":
                order = segment
            elif segment.name == "OBR":
                if patient is None:
                    raise self.fail(
                        segment,
                        None,
                        "an OBR comes before any PID: each report needs its patient",
                        condition="100",
                    )
                groups.append(_Order(patient, order, segment))
                order = None
            elif groups:
                groups[-1].segments.append(segment)
            elif segment.name == "OBX":
                raise self.fail(
                    segment,
                    None,
                    "an OBX comes before any OBR: observations belong to an order",
                    condition="100",
                )
        if not groups:
            raise self.fail(
                None,
                None,
                "the message has no OBR: an ORU^R01 report is an "
                "ORDER_OBSERVATION group (OBR and its OBX)",
                condition="100",
            )
        return groups

    # -- one report --

    def report(self, order: _Order) -> LabReport:
        notes, observations, specimen = self._contents(order)
        request = order.request
        status = self._result_status(request)
        filler = self._order_number(order, 3)
        placer = self._order_number(order, 2)
        key = filler or placer
        if key is None:
            raise self.fail(
                request,
                3,
                "no filler (OBR-3, ORC-3) nor placer (OBR-2, ORC-2) "
                "order number: the report needs one to be identified",
                condition="101",
            )
        report_level, variant_groups = self._group(observations)
        build = self._build(report_level, variant_groups)
        variants = tuple(
            self._variant(sub_id, group, build, status) for sub_id, group in variant_groups
        )
        sex, birth_date = self._demographics(order.patient)
        return LabReport(
            source_format=f"HL7 v{self.header.version} ORU^R01",
            report_key=f"{key[0]}|{key[1]}",
            patient=self._patient(order.patient),
            status=status,
            code=self._term_of(request, 4),
            build=build,
            source_class=self._report_source_class(report_level, variants),
            sex=sex,
            birth_date=birth_date,
            placer_order=placer,
            filler_order=filler,
            specimen=self._specimen(specimen),
            specimen_type=None if specimen is None else self._term_of(specimen, 4),
            collected=self._collected(request, specimen),
            issued=self._moment(request, 22),
            conclusion="\n".join(self._all(report_level, "conclusion", self._prose)) or None,
            notes=tuple(notes + [n for obs in _each(report_level) for n in obs.notes]),
            diagnoses=self._all(report_level, "diagnoses", self._term),
            variants=variants,
            message_id=self.text(self.segments[0], 10, self.header.control_id),
        )

    def _contents(self, order: _Order) -> tuple[list[str], list[_Observation], _Segment | None]:
        """The OBR's notes, its OBX (each with the NTE after it) and its first SPM."""
        notes: list[str] = []
        observations: list[_Observation] = []
        specimen: _Segment | None = None
        for segment in order.segments:
            if segment.name == "SPM":
                specimen = specimen or segment
            elif specimen is not None:
                continue  # the specimen's own OBX and NTE
            elif segment.name == "OBX":
                observations.append(self._observation(segment))
            elif segment.name == "NTE":
                note = "\n".join(self.text(segment, 3, r) for r in self.repetitions(segment.raw(3)))
                (observations[-1].notes if observations else notes).append(note.strip())
        return notes, observations, specimen

    def _observation(self, segment: _Segment) -> _Observation:
        parts = [self.part(segment, 3, segment.raw(3), i).strip() for i in range(1, 7)]
        if not parts[0] and not parts[3]:
            raise self.fail(segment, 3, "OBX-3 (observation identifier) is empty", condition="101")
        alternate = parts[2] not in ("LN", "") and parts[5] == "LN"
        code, system = (parts[3], parts[5]) if alternate else (parts[0], parts[2])
        return _Observation(
            segment,
            code if system in ("LN", "") else f"{system}:{code}",
            self.text(segment, 4, segment.raw(4)).strip(),
            segment.raw(2).strip().upper(),
            [r for r in self.repetitions(segment.raw(5)) if r],
            self.text(segment, 11, segment.raw(11)).strip().upper(),
        )

    def _group(
        self, observations: Sequence[_Observation]
    ) -> tuple[_Observations, list[tuple[str, _Observations]]]:
        """The report-level observations, and each variant's, by model field."""
        report: dict[str, list[_Observation]] = {}
        variants: dict[str, dict[str, list[_Observation]]] = {}
        for obs in observations:
            row = self._row(obs)
            if row is None:
                report.setdefault("", []).append(obs)  # not read; its notes are the report's
            elif obs.sub_id:
                group = variants.setdefault(obs.sub_id, {})
                if not group and obs.code != _ASSESSMENT:
                    raise self.fail(
                        obs.segment,
                        4,
                        f"the group of OBX-4 sub-ID {_shown(obs.sub_id)} "
                        f"starts with LOINC {_shown(obs.code)}: each variant's group "
                        f"starts with {_ASSESSMENT} Genetic variant assessment",
                        condition="100",
                    )
                group.setdefault(row.model_field, []).append(obs)
            else:
                report.setdefault(row.model_field, []).append(obs)
        return _Observations(report), [(k, _Observations(v)) for k, v in variants.items()]

    def _row(self, obs: _Observation) -> _Row | None:
        """The table's row for an OBX; errors for codes a variant group cannot carry."""
        table = _table()
        row = table.get(("variant" if obs.sub_id else "report", obs.code))
        if row is None and obs.sub_id:
            raise self.fail(
                obs.segment,
                3,
                f"LOINC {_shown(obs.code)} is not an observation of "
                "the HL7 v2 genetic variant model the adapter reads into a variant "
                "(mappings/hl7v2_variant_obx.csv): send it without the variant's "
                "sub-ID, or leave it out",
                condition="103",
            )
        if row is None and obs.code == _ASSESSMENT:
            raise self.fail(
                obs.segment,
                4,
                f"a variant's {_ASSESSMENT} has no OBX-4 sub-ID: give "
                "each variant's OBX one sub-ID of their own",
                condition="101",
            )
        if row is not None and obs.value_type not in row.v2_types:
            raise self.fail(
                obs.segment,
                2,
                f"LOINC {row.code} takes value type "
                f"{' or '.join(row.v2_types)} in OBX-2, not {_shown(obs.value_type)}",
                condition="102",
            )
        return row

    # -- values of observations --

    def _one(
        self, found: _Observations, name: str, parse: Callable[[_Observation, str], T]
    ) -> T | None:
        """The one value of a single-valued field; stated twice, differently, is AE 207."""
        values = [(obs, parse(obs, raw)) for obs in found.of(name) for raw in obs.values]
        for obs, value in values[1:]:
            if value != values[0][1]:
                raise self.fail(
                    obs.segment,
                    5,
                    f"LOINC {obs.code} is stated twice, differently, "
                    "for one report or variant: send one value",
                    condition="207",
                )
        return values[0][1] if values else None

    def _all(
        self, found: _Observations, name: str, parse: Callable[[_Observation, str], T]
    ) -> tuple[T, ...]:
        return tuple(dict.fromkeys(parse(o, raw) for o in found.of(name) for raw in o.values))

    def _string(self, obs: _Observation, raw: str) -> str:
        if obs.value_type in ("CWE", "CE"):
            return self.coded(obs.segment, 5, raw).value()
        return self.text(obs.segment, 5, raw).strip()

    def _prose(self, obs: _Observation, raw: str) -> str:
        """Free text: TX, FT or ST."""
        return self.text(obs.segment, 5, raw).strip()

    def _term(self, obs: _Observation, raw: str) -> CodedTerm:
        return _coded_term(self.coded(obs.segment, 5, raw))

    def _term_of(self, segment: _Segment, position: int) -> CodedTerm | None:
        """The first repetition of a CWE field, None when empty."""
        first = (self.repetitions(segment.raw(position)) or [""])[0]
        coded = self.coded(segment, position, first)
        return _coded_term(coded) if coded.code or coded.text else None

    def _number(self, obs: _Observation, raw: str) -> float:
        """NM, or an SN with no comparator other than = and no second number."""
        text = self.text(obs.segment, 5, raw).strip()
        if obs.value_type == "SN":
            parts = self.components(text)
            if parts[0] not in ("", "=") or any(parts[2:]):
                raise self.fail(
                    obs.segment,
                    5,
                    f"LOINC {obs.code} takes an exact number, not a comparison or range",
                    condition="102",
                )
            text = parts[1] if len(parts) > 1 else ""
        value = float(text) if _NUMBER.fullmatch(text) else math.nan
        if not math.isfinite(value):
            raise self.fail(
                obs.segment,
                5,
                f"LOINC {obs.code} takes a number (NM: digits, an optional sign and decimal point)",
                condition="102",
            )
        return value

    def _fraction(self, obs: _Observation, raw: str) -> float:
        value = self._number(obs, raw)
        if not 0 <= value <= 1:
            raise self.fail(
                obs.segment,
                5,
                f"LOINC {obs.code} is a fraction from 0 to 1 (0.42, not 42 %)",
                condition="102",
            )
        return value

    def _count(self, obs: _Observation, raw: str) -> int:
        value = self._number(obs, raw)
        if value < 0 or value != int(value):
            raise self.fail(
                obs.segment,
                5,
                f"LOINC {obs.code} is a count of reads: a whole number, 0 or more",
                condition="102",
            )
        return int(value)

    def _span(self, obs: _Observation, raw: str) -> tuple[int, int | None]:
        """81254-5: start^end (NR) or a start (NM), 1-based."""
        parts = self.components(raw) if obs.value_type == "NR" else [raw]
        numbers = [self._number(obs, p) if p else None for p in [*parts, ""][:2]]
        start, end = numbers
        if (
            start is None
            or start < 1
            or start != int(start)
            or (end is not None and end != int(end))
        ):
            raise self.fail(
                obs.segment,
                5,
                "LOINC 81254-5 takes whole 1-based positions start^end",
                condition="102",
            )
        return int(start), None if end is None else int(end)

    def _answer(self, obs: _Observation, raw: str, kind: type[E], group: str) -> E | None:
        """A coded answer as the model's enum; None when it says "unknown"."""
        coded = self.coded(obs.segment, 5, raw)
        for name in (_answer_keys(group).get(coded.code), coded.text, coded.code):
            found = _member(kind, name)
            if found is not None:
                return found
        if _normal(coded.text or coded.code) == "unknown":
            return None
        names = ", ".join(m.value for m in kind)
        raise self.fail(
            obs.segment,
            5,
            f"the answer to LOINC {obs.code} is not one the adapter "
            f"knows ({names}); send its LOINC answer code",
            condition="103",
        )

    def _assessment(self, obs: _Observation, raw: str) -> VariantAssessment | None:
        return self._answer(obs, raw, VariantAssessment, "variant-value")

    def _zygosity(self, obs: _Observation, raw: str) -> Zygosity | None:
        return self._answer(obs, raw, Zygosity, "allelic-state")

    def _inheritance(self, obs: _Observation, raw: str) -> VariantInheritance | None:
        return self._answer(obs, raw, VariantInheritance, "variant-inheritance")

    def _source_class(
        self, obs: _Observation, raw: str
    ) -> tuple[GenomicSourceClass, VariantInheritance | None] | None:
        """48002-0; "De novo" (LL378-1) is germline, inherited de novo."""
        coded = self.coded(obs.segment, 5, raw)
        for name in (_answer_keys("variant-inheritance").get(coded.code), coded.text):
            if _member(VariantInheritance, name) is VariantInheritance.DE_NOVO:
                return GenomicSourceClass.GERMLINE, VariantInheritance.DE_NOVO
        found = self._answer(obs, raw, GenomicSourceClass, "source-class")
        return None if found is None else (found, None)

    def _genome_build(self, obs: _Observation, raw: str) -> GenomeBuild:
        coded = self.coded(obs.segment, 5, raw)
        name = _answer_keys("genome-build").get(coded.code) or coded.text or coded.code
        try:
            return parse_build(name)
        except GenomeBuildError as e:
            raise self.fail(
                obs.segment,
                5,
                "the reference assembly (LOINC 62374-4) is not "
                "GRCh37 nor GRCh38; send LA14029-5 GRCh37 or LA26806-2 GRCh38",
                condition="103",
            ) from e

    def _chromosome(self, obs: _Observation, raw: str) -> str:
        coded = self.coded(obs.segment, 5, raw)
        for name in (_answer_keys("chromosome").get(coded.code), coded.code, coded.text):
            found = normalize_chromosome((name or "").removeprefix("Chromosome ").strip())
            if found is not None:
                return found
        raise self.fail(
            obs.segment,
            5,
            "the chromosome (LOINC 48000-4) is none of 1-22, X, Y "
            "or M; send its LOINC answer (LL2938-0)",
            condition="103",
        )

    def _one_based(self, obs: _Observation, raw: str) -> bool:
        coded = self.coded(obs.segment, 5, raw)
        key = _answer_keys("coordinate-system").get(coded.code)
        return key == "1-based-character" or _normal(coded.text).startswith("1-based")

    def _allele(self, obs: _Observation, raw: str) -> str:
        allele = self._string(obs, raw).upper()
        return "" if allele == "-" else allele

    def _gene(self, obs: _Observation, raw: str) -> tuple[str | None, str | None]:
        """(HGNC id, symbol) of 48018-6."""
        coded = self.coded(obs.segment, 5, raw)
        if coded.system == "HGNC" and coded.code:
            hgnc = coded.code if coded.code.startswith("HGNC:") else f"HGNC:{coded.code}"
            return hgnc, coded.text or None
        return None, (coded.code if coded.system == "HGNC-Symb" else coded.value()) or None

    def _change_type(self, obs: _Observation, raw: str) -> CodedTerm:
        """48019-4: a Sequence Ontology id the answer table knows, else as coded."""
        coded = self.coded(obs.segment, 5, raw)
        known = _answer_codes("dna-change-type").get(coded.code)
        return known or _coded_term(coded)

    def _significance(self, obs: _Observation, raw: str) -> ReportedClassification:
        coded = self.coded(obs.segment, 5, raw)
        text = coded.text or coded.code
        tier = _tiers().get(coded.code) or _member(ClinicalSignificance, text)
        found = significance_tier(tier.value.replace(" ", "_")) if tier else None
        return ReportedClassification(text, tier, None if found is None else found[1])

    # -- the report's parts --

    def _result_status(self, request: _Segment) -> ReportStatus:
        code = self.text(request, 25, request.raw(25)).strip().upper()
        if not code:
            raise self.fail(
                request,
                25,
                "OBR-25 (result status) is empty; send F (final), C (corrected) or P (preliminary)",
                condition="101",
            )
        if code not in _RESULT_STATUS:
            raise self.fail(
                request,
                25,
                f"result status {_shown(code)} is not one of HL7 table "
                f"0123 a report can have ({', '.join(_RESULT_STATUS)})",
                condition="103",
            )
        return _RESULT_STATUS[code]

    def _variant_status(self, obs: _Observation, report: ReportStatus) -> ReportStatus | None:
        if not obs.status:
            return None
        status = _OBSERVATION_STATUS.get(obs.status)
        if status is None:
            raise self.fail(
                obs.segment,
                11,
                f"observation status {_shown(obs.status)} (HL7 table "
                "0085) has no place in a report: leave out a variant not sought, "
                "deleted or sent in error",
                condition="103",
            )
        return None if status is report else status

    def _patient(self, pid: _Segment) -> PatientRef:
        given = [self.components(raw) + [""] * 5 for raw in self.repetitions(pid.raw(3))]
        given = [parts for parts in given if self.text(pid, 3, parts[0]).strip()]
        chosen = next((p for p in given if p[4] == "MR"), given[0] if given else None)
        if chosen is None:
            raise self.fail(
                pid, 3, "PID-3 (patient identifier list) has no identifier", condition="101"
            )
        authority = self.subcomponents(chosen[3])
        system = self._system(pid, 3, 4, authority, what="the patient identifier")
        return PatientRef(
            identifier_system=system, identifier_value=self.text(pid, 3, chosen[0]).strip()
        )

    def _system(
        self,
        segment: _Segment,
        position: int,
        component: int,
        authority: Sequence[str],
        *,
        what: str,
    ) -> str:
        """The FHIR system of an identifier from its assigning authority: the parts namespace
        ID, universal ID, universal ID type of an HD (CX-4) or of an EI (EI-2 to EI-4)."""
        namespace, universal, kind = (
            self.text(segment, position, v).strip() for v in [*authority, "", "", ""][:3]
        )
        kind = kind.upper()
        if universal and kind == "ISO" and _OID.fullmatch(universal):
            return f"urn:oid:{universal}"
        if universal and kind in ("URI", "URL") and ":" in universal:
            return universal
        if universal and kind in ("UUID", "GUID") and _UUID.fullmatch(universal):
            return f"urn:uuid:{universal.lower()}"
        if namespace in self.authorities:
            return self.authorities[namespace]
        shown = _shown(namespace) if namespace else "empty"
        raise self.fail(
            segment,
            position,
            f"{what}'s assigning authority (namespace ID {shown}) has no system URI: give it a "
            "universal ID of type ISO (an OID) or URI, or map the namespace ID to a system URI "
            "in the deployment's assigning-authority table (authorities)",
            condition="103",
            component=component,
        )

    def _order_number(self, order: _Order, position: int) -> tuple[str, str] | None:
        """OBR-2/3 (EI), else ORC-2/3: (system, value)."""
        for segment in (order.request, order.order):
            if segment is None or not segment.raw(position):
                continue
            parts = self.components(segment.raw(position)) + [""] * 3
            value = self.text(segment, position, parts[0]).strip()
            if value:
                what = "the filler order number" if position == 3 else "the placer order number"
                return self._system(segment, position, 2, parts[1:4], what=what), value
        return None

    def _specimen(self, specimen: _Segment | None) -> tuple[str, str] | None:
        """SPM-2 (EIP): the filler's EI, else the placer's, as (system, value)."""
        if specimen is None:
            return None
        parts = [*self.components(specimen.raw(2)), "", ""]
        for component in (2, 1):
            ei = self.subcomponents(parts[component - 1]) + [""] * 3
            value = self.text(specimen, 2, ei[0]).strip()
            if value:
                return self._system(specimen, 2, component, ei[1:4], what="the specimen ID"), value
        return None

    def _demographics(self, pid: _Segment) -> tuple[Sex, date | None]:
        sex = {"M": Sex.MALE, "F": Sex.FEMALE}.get(self.text(pid, 8, pid.raw(8)).strip().upper())
        born = self.text(pid, 7, self.components(pid.raw(7))[0]).strip()
        match = _DTM.fullmatch(born)
        if born and match is None:
            raise self.fail(
                pid, 7, "PID-7 (birth date) is not an HL7 date (YYYYMMDD)", condition="102"
            )
        birth_date = None
        if match is not None and match.group(3):
            try:
                birth_date = date(*(int(match.group(i)) for i in (1, 2, 3)))
            except ValueError as e:
                raise self.fail(
                    pid, 7, "PID-7 (birth date) is no calendar date", condition="102"
                ) from e
        return sex or Sex.UNKNOWN, birth_date

    def _collected(self, request: _Segment, specimen: _Segment | None) -> datetime | None:
        collected = self._moment(request, 7)
        if collected is None and specimen is not None:
            collected = self._moment(specimen, 17)
        return collected

    def _moment(self, segment: _Segment, position: int) -> datetime | None:
        """A TS/DTM (or DR's start) as an aware datetime; see "Times" in the docstring."""
        first = self.subcomponents(self.components(segment.raw(position))[0])[0]
        written = self.text(segment, position, first).strip()
        if not written:
            return None
        match = _DTM.fullmatch(written)
        if match is None:
            raise self.fail(
                segment, position, "not an HL7 date/time (YYYYMMDDHHMMSS+ZZZZ)", condition="102"
            )
        y, mo, d, h, mi, s, frac, sign, zh, zm = match.groups()
        try:
            moment = datetime(
                int(y),
                int(mo or 1),
                int(d or 1),
                int(h or 0),
                int(mi or 0),
                int(s or 0),
                int((frac or "0").ljust(6, "0")),
            )
            zone = _offset(sign, zh, zm) if sign else self.sender_zone
        except ValueError as e:
            raise self.fail(
                segment,
                position,
                "the date/time or its UTC offset is out of range",
                condition="102",
            ) from e
        if zone is None:
            raise self.fail(
                segment,
                position,
                "the date/time has no UTC offset: send it as "
                "YYYYMMDDHHMM+ZZZZ, or configure the sender's time zone",
                condition="102",
            )
        return moment.replace(tzinfo=zone)

    def _build(
        self, report: _Observations, variants: Sequence[tuple[str, _Observations]]
    ) -> GenomeBuild | None:
        """The one build the report and its variants state (62374-4), if any."""
        stated = [*report.of("build"), *(obs for _, group in variants for obs in group.of("build"))]
        return self._one(_Observations({"build": stated}), "build", self._genome_build)

    def _report_source_class(
        self, report: _Observations, variants: Sequence[ReportedVariant]
    ) -> GenomicSourceClass:
        """The report's 48002-0; else the one class all its variants state; else germline."""
        stated = self._one(report, "source_class", self._source_class)
        if stated is not None:
            return stated[0]
        classes = {v.source_class for v in variants}
        if len(classes) == 1 and None not in classes:
            return next(c for c in classes if c is not None)
        return GenomicSourceClass.GERMLINE

    # -- one variant --

    def _variant(
        self, key: str, group: _Observations, build: GenomeBuild | None, status: ReportStatus
    ) -> ReportedVariant:
        assessment_obs = group.of("assessment")[0]
        assessment = self._one(group, "assessment", self._assessment)
        if assessment is None:
            raise self.fail(
                assessment_obs.segment,
                5,
                f"the variant's {_ASSESSMENT} has no "
                "answer: send present, absent, no call or indeterminate",
                condition="101",
            )
        source = self._one(group, "source_class", self._source_class)
        inheritance = self._one(group, "inheritance", self._inheritance)
        zygosity = self._one(group, "zygosity", self._zygosity)
        depth = self._one(group, "allele_depth", self._count)
        frequency = self._one(group, "allele_frequency", self._fraction)
        return ReportedVariant(
            key=key,
            assessment=assessment,
            consequence=self._consequence(group),
            genomic_hgvs=self._one(group, "genomic_hgvs", self._string),
            display_name=self._one(group, "display_name", self._prose),
            change_type=self._one(group, "change_type", self._change_type),
            cytogenetic_location=self._one(group, "cytogenetic_location", self._string),
            call=self._call(group, build, zygosity, depth, frequency),
            zygosity=zygosity,
            source_class=None if source is None else source[0],
            allele_frequency=frequency,
            allele_depth=depth,
            variation_codes=self._all(group, "variation_codes", self._term),
            classification=self._classification(group),
            inheritance=inheritance or (None if source is None else source[1]),
            status=self._variant_status(assessment_obs, status),
            notes=tuple(n for obs in _each(group) for n in obs.notes),
            where=f"OBX-4 {key}",
        )

    def _consequence(self, group: _Observations) -> TranscriptConsequence | None:
        hgnc_id, symbol = self._one(group, "consequence.gene", self._gene) or (None, None)
        transcript = self._one(group, "consequence.transcript", self._string)
        hgvs_c = self._one(group, "consequence.hgvs_c", self._string)
        hgvs_p = self._one(group, "consequence.hgvs_p", self._string)
        if not any((hgnc_id, symbol, transcript, hgvs_c, hgvs_p)):
            return None
        return TranscriptConsequence(
            consequences=(),
            gene_symbol=symbol,
            hgnc_id=hgnc_id,
            transcript=transcript,
            hgvs_c=hgvs_c,
            hgvs_p=hgvs_p,
        )

    def _classification(self, group: _Observations) -> ReportedClassification | None:
        found = self._one(group, "classification", self._significance)
        conditions = self._all(group, "classification.conditions", self._term)
        if found is None and conditions:
            obs = group.of("classification.conditions")[0]
            raise self.fail(
                obs.segment,
                3,
                "an associated phenotype (LOINC 81259-4) is given "
                "without the clinical significance (53037-8) it is stated for",
                condition="101",
            )
        if found is None:
            return None
        return ReportedClassification(found.text, found.tier, found.answer_code, conditions)

    def _call(
        self,
        group: _Observations,
        build: GenomeBuild | None,
        zygosity: Zygosity | None,
        depth: int | None,
        frequency: float | None,
    ) -> VariantCall | None:
        """A VCF-style call, when the group gives one (see "Variants" in the docstring)."""
        chromosome = self._one(group, "call.chromosome", self._chromosome)
        span = self._one(group, "call.pos", self._span)
        ref = self._one(group, "call.ref", self._allele)
        alt = self._one(group, "call.alt", self._allele)
        if chromosome is None or span is None or ref is None or alt is None:
            return None
        if not (_NUCLEOTIDES.fullmatch(ref) and _NUCLEOTIDES.fullmatch(alt)):
            return None
        if self._one(group, "call.coordinate_system", self._one_based) is False:
            return None
        sequence = self._one(group, "call.reference_sequence", self._string)
        if sequence is not None and (build is None or sequence != accession(build, chromosome)):
            return None
        start, end = span
        if end is not None and end != start + len(ref) - 1:
            obs = group.of("call.pos")[0]
            raise self.fail(
                obs.segment,
                5,
                "the start-end (LOINC 81254-5) does not span the reference allele (69547-8)",
                condition="102",
            )
        return VariantCall(
            chrom=chromosome,
            chromosome=chromosome,
            pos=start,
            ref=ref,
            alt=alt,
            alt_index=1,
            genotype="",
            zygosity=zygosity,
            allele_depth=depth,
            allele_frequency=frequency,
        )


def _check_structure(lines: Sequence[str], source: str) -> None:
    """The message starts with one MSH whose MSH-1 and MSH-2 are usable delimiters."""

    def reject(message: str, condition: str, position: int | None = None) -> NoReturn:
        raise MessageError(
            message,
            ack_code="AR",
            condition=condition,
            source=source,
            field=None if position is None else f"MSH-{position}",
            segment_index=None if position is None else 1,
            field_position=position,
        )

    if not lines or not lines[0].lstrip().startswith("MSH"):
        reject("the message does not start with an MSH segment", "100")
    msh = lines[0].lstrip()
    separator = msh[3:4]
    if not separator or separator.isalnum() or separator.isspace():
        reject("MSH-1 (field separator) is missing, or a letter, digit or space", "102", 1)
    end = msh.find(separator, 4)
    encoding = msh[4:] if end < 0 else msh[4:end]
    distinct = len(set(encoding + separator)) == len(encoding) + 1
    if len(encoding) not in (4, 5) or not distinct or not all(_delimiter(c) for c in encoding):
        reject(
            "MSH-2 (encoding characters) must be 4 distinct delimiters, none a letter, digit, "
            "space or the field separator (^~\\&)",
            "102",
            2,
        )
    if end < 0:
        reject("the MSH ends after MSH-2: MSH-9 (message type) is missing", "101", 9)
    if any(line[:3] in ("MSH", "BHS", "FHS", "BTS", "FTS") for line in lines[1:]):
        reject("more than one message: send one ORU^R01 per call, not a batch", "100")
    for index, line in enumerate(lines[1:], start=2):
        if not _SEGMENT_ID.fullmatch(line[:3]) or line[3:4] not in ("", separator):
            reject(f"segment {index} of the message does not start with a segment ID", "100")


def _delimiter(character: str) -> bool:
    return not (character.isalnum() or character.isspace())


def _offset(sign: str, hours: str, minutes: str) -> timezone:
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def _each(group: _Observations) -> list[_Observation]:
    """The group's observations in message order."""
    observations = [obs for found in group.by_field.values() for obs in found]
    return sorted(observations, key=lambda obs: obs.segment.sequence)


def _coded_term(coded: _Coded) -> CodedTerm:
    system = by_v2_name(coded.system) if coded.system else None
    if system is None or not coded.code:
        return CodedTerm(None, None, coded.text or coded.code or None)
    return CodedTerm(system.system, coded.code, coded.text or None)


def _normal(name: str) -> str:
    """A name compared without case, spaces, hyphens or underscores differing."""
    return "-".join(re.split(r"[\s_-]+", name.strip().casefold()))


def _member(kind: type[E], name: str | None) -> E | None:
    wanted = _normal(name or "")
    return next((m for m in kind if _normal(m.value) == wanted), None) if wanted else None


def _shown(text: str) -> str:
    """A code or name for an error message: as written when short and plain, else not shown."""
    return repr(text) if _SHOWN.fullmatch(text) else "(not shown)"


# ---- tables ----------------------------------------------------------------------------------


@cache
def _table() -> dict[tuple[str, str], _Row]:
    """``mappings/hl7v2_variant_obx.csv`` by (level, LOINC code)."""
    return {
        (r["level"], r["code"]): _Row(r["code"], r["field"], tuple(r["v2_types"].split()))
        for r in mapping_rows("hl7v2_variant_obx.csv")
    }


@cache
def _answers() -> dict[str, dict[str, tuple[str, CodedTerm]]]:
    """``mappings/answer_codes.csv``: group → code → (key, term)."""
    found: dict[str, dict[str, tuple[str, CodedTerm]]] = {}
    for r in mapping_rows("answer_codes.csv"):
        term = CodedTerm(r["system"], r["code"], r["display"] or None)
        found.setdefault(r["group"], {})[r["code"]] = (r["key"], term)
    return found


def _answer_keys(group: str) -> dict[str, str]:
    return {code: key for code, (key, _) in _answers().get(group, {}).items()}


def _answer_codes(group: str) -> dict[str, CodedTerm]:
    return {code: term for code, (_, term) in _answers().get(group, {}).items()}


@cache
def _tiers() -> dict[str, ClinicalSignificance]:
    """LOINC answer code → ACMG/AMP tier, from ``mappings/clinical_significance.csv``."""
    found = (significance_tier(t.value.replace(" ", "_")) for t in ClinicalSignificance)
    return {code: tier for tier, code in filter(None, found)}


# ---- acknowledgements --------------------------------------------------------------------------


def acknowledgement(
    header: MessageHeader | None,
    code: str,
    *,
    error: MessageError | None = None,
    control_id: str,
    now: datetime,
) -> str:
    """The ACK of a message (see the module docstring), segments ended by CR; ``header`` None
    for a message without a usable MSH, ``control_id`` the ACK's own MSH-10."""
    if code not in _ACK_CODES:
        raise ValueError(f"acknowledgment code {code!r} is none of AA, AE, AR")
    separator = header.field_separator if header else _DEFAULT_FIELD
    encoding = header.encoding_characters if header else _DEFAULT_ENCODING
    escape = _escaper(separator, encoding)
    event = _event(header, encoding[0])
    msh = [
        f"MSH{separator}{encoding}",
        *(
            ("", "", "", "")
            if header is None
            else (
                header.receiving_application,
                header.receiving_facility,
                header.sending_application,
                header.sending_facility,
            )
        ),
        now.strftime("%Y%m%d%H%M%S%z"),
        "",
        encoding[0].join(("ACK", event, "ACK")),
        escape(control_id),
        header.processing_id if header and header.processing_id else "P",
        _ACK_VERSION,
    ]
    segments = [
        separator.join(msh),
        separator.join(("MSA", code, header.control_id if header else "")),
    ]
    if error is not None:
        segments.append(separator.join(_err(error, encoding[0], escape)))
    return "\r".join(segments) + "\r"


def _event(header: MessageHeader | None, component: str) -> str:
    """MSH-9.2 of the message acknowledged, R01 when unknown."""
    parts = header.message_type.split(component) if header else []
    return parts[1] if len(parts) > 1 and parts[1] else "R01"


def _err(error: MessageError, component: str, escape: Callable[[str], str]) -> list[str]:
    """ERR-1 to ERR-8 of an error."""
    location = ""
    match = _FIELD_NAME.fullmatch(error.field or "")
    if match is not None and error.segment_index is not None:
        segment, position, part = match.groups()
        position = str(error.field_position or position or "")
        location = component.join((segment, str(error.segment_index), position, "", part or ""))
        location = location.rstrip(component)
    condition = component.join((error.condition, _CONDITIONS.get(error.condition, ""), "HL70357"))
    return ["ERR", "", location, condition, "E", "", "", "", escape(error.message)]


def _escaper(separator: str, encoding: str) -> Callable[[str], str]:
    """Escape text for a field of a message in these delimiters (python-hl7's escape; the
    v2.7 truncation character, when MSH-2 has one, as \\P\\)."""
    container = hl7.Message(
        separators="\r" + separator + encoding[1] + encoding[0] + encoding[3], esc=encoding[2]
    )

    def escape(text: str) -> str:
        plain = text.encode("ascii", "backslashreplace").decode("ascii")
        escaped: str = hl7.util.escape(container, plain)
        if len(encoding) == 5:
            escaped = escaped.replace(encoding[4], f"{encoding[2]}P{encoding[2]}")
        return escaped

    return escape
