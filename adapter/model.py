"""The one internal model every reader produces and every FHIR builder consumes.

Readers (VCF, HL7 v2, Phenopackets) know nothing of FHIR; builders know nothing of file
formats. Names follow the domain: allele, zygosity, genomic source class, genome build.
Coordinates are kept as the lab wrote them (VCF: 1-based, REF/ALT with their anchor base);
builders derive trimmed, 0-based SPDI and HGVS forms from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

__all__ = [
    "AnalysisContext",
    "ConversionSummary",
    "GenomeBuild",
    "GenomicRegion",
    "GenomicSourceClass",
    "MicrosatelliteStatus",
    "PatientRef",
    "Sex",
    "StructuralVariant",
    "SvType",
    "TumorBiomarkers",
    "VariantCall",
    "Zygosity",
]


class GenomeBuild(StrEnum):
    """Reference assemblies the adapter can state coordinates on."""

    GRCH37 = "GRCh37"
    GRCH38 = "GRCh38"


class Zygosity(StrEnum):
    """Allelic state of the called allele in the sample (LOINC 53034-5 answers)."""

    HETEROZYGOUS = "heterozygous"
    HOMOZYGOUS = "homozygous"
    HEMIZYGOUS = "hemizygous"
    HOMOPLASMIC = "homoplasmic"
    HETEROPLASMIC = "heteroplasmic"


class GenomicSourceClass(StrEnum):
    """Where the variant arose (LOINC 48002-0 answers)."""

    GERMLINE = "germline"
    SOMATIC = "somatic"
    MIXED = "mixed"


class Sex(StrEnum):
    """Karyotypic sex, used only to call hemizygosity on X and Y."""

    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


class SvType(StrEnum):
    """VCF SVTYPE values."""

    DEL = "DEL"
    DUP = "DUP"
    INS = "INS"
    INV = "INV"
    CNV = "CNV"
    BND = "BND"


@dataclass(frozen=True, slots=True)
class StructuralVariant:
    """Structural facts of a symbolic or SV record; positions are 1-based, inclusive."""

    sv_type: SvType
    end: int
    sv_len: int | None = None
    #: confidence interval around POS, as (low offset, high offset), e.g. (-10, 10)
    ci_pos: tuple[int, int] | None = None
    #: confidence interval around END
    ci_end: tuple[int, int] | None = None
    copy_number: float | None = None
    #: BND mate breakend as written in ALT (e.g. "N]chr2:321682]")
    mate: str | None = None


@dataclass(slots=True)
class VariantCall:
    """One ALT allele called in one sample: a multi-allelic record yields one per ALT.

    Not frozen: a frozen dataclass's constructor costs several microseconds per call, as
    much as reading the record, and a million of these are made per genome.
    """

    chrom: str  # as written in the file, e.g. "chr1" or "1"
    chromosome: str  # normalised: "1".."22", "X", "Y", "M"
    pos: int  # VCF POS, 1-based
    ref: str  # VCF REF, with anchor base when the file has one
    alt: str  # this ALT allele (a symbolic allele such as "<DEL>" for SVs)
    alt_index: int  # 1-based index of this ALT in the record
    genotype: str  # GT as written, e.g. "0/1", "1|2", "1"
    zygosity: Zygosity | None
    filters: tuple[str, ...] = ()  # empty = PASS
    record_id: str | None = None  # VCF ID column (e.g. an rsID)
    quality: float | None = None
    allele_depth: int | None = None  # reads supporting this ALT (FORMAT AD[alt_index])
    total_depth: int | None = None  # FORMAT DP, or the sum of AD
    allele_frequency: float | None = None  # VAF in the sample (FORMAT AF, or AD/DP)
    phased: bool = False
    phase_set: int | None = None
    structural: StructuralVariant | None = None
    line: int | None = None  # 1-based line number in the source, for error messages


@dataclass(frozen=True, slots=True)
class GenomicRegion:
    """A half-open 0-based interval, as in BED."""

    chrom: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class PatientRef:
    """The subject: a literal id (``Patient/123``) or a business identifier."""

    id: str | None = None
    identifier_system: str | None = None
    identifier_value: str | None = None


@dataclass(frozen=True, slots=True)
class AnalysisContext:
    """Everything about one conversion that is not a variant: who, what, how."""

    patient: PatientRef
    build: GenomeBuild
    sample: str
    source_class: GenomicSourceClass = GenomicSourceClass.GERMLINE
    sex: Sex = Sex.UNKNOWN
    issued: datetime | None = None  # None: the builders use the file's date or now
    input_name: str = "input.vcf"  # file name as given by the user (no directories)
    input_sha256: str | None = None
    input_size: int | None = None
    report_key: str = ""  # stable key from which business identifiers are derived
    identifier_system: str = "urn:fhir-genomics-adapter:id"
    specimen_id: str | None = None  # literal Specimen id
    specimen_identifier: tuple[str, str] | None = None  # (system, value)
    order_identifier: tuple[str, str] | None = None  # ServiceRequest (system, value)
    performer: str | None = None  # literal reference, e.g. Organization/lab-1
    regions_studied: Sequence[GenomicRegion] = ()
    regions_studied_name: str | None = None
    uncallable_regions: Sequence[GenomicRegion] = ()
    uncallable_regions_name: str | None = None
    include_document_reference: bool = False
    caller: str | None = None  # ##source from the VCF header
    file_date: str | None = None  # ##fileDate from the VCF header
    extra_input_paths: Sequence[Path] = field(default=())
    tumor: TumorBiomarkers | None = None  # measured by the lab beside the calls


class MicrosatelliteStatus(StrEnum):
    """Microsatellite status of a tumor (LOINC 81695-9)."""

    MSI_H = "MSI-H"
    MSI_L = "MSI-L"
    MSS = "MSS"


@dataclass(frozen=True, slots=True)
class TumorBiomarkers:
    """Whole-tumor measures a lab reports beside the variants."""

    mutational_burden: float | None = None  # mutations per megabase
    microsatellite_status: MicrosatelliteStatus | None = None


@dataclass(slots=True)
class ConversionSummary:
    """What a conversion did: counts for the user and the logs."""

    records_read: int = 0
    variants_converted: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    resources_written: dict[str, int] = field(default_factory=dict)
    validation_errors: int = 0

    def skip(self, reason: str, count: int = 1) -> None:
        """Count a record or allele not converted, by a short reason key."""
        self.skipped[reason] = self.skipped.get(reason, 0) + count
