"""The one internal model every reader produces and every FHIR builder consumes.

Readers (VCF, HL7 v2, Phenopackets) know nothing of FHIR; builders know nothing of file
formats. Names follow the domain: allele, zygosity, genomic source class, genome build.
Coordinates are kept as the lab wrote them (VCF: 1-based, REF/ALT with their anchor base);
builders derive trimmed, 0-based SPDI and HGVS forms from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path

__all__ = [
    "AlleleAnnotation",
    "AnalysisContext",
    "AnnotationSource",
    "AnnotationTool",
    "ClinVarAssertion",
    "ClinVarCondition",
    "ClinicalSignificance",
    "ConversionSummary",
    "GenomeBuild",
    "GenomicRegion",
    "GenomicSourceClass",
    "Impact",
    "LabClassification",
    "MicrosatelliteStatus",
    "PatientRef",
    "RecordAnnotations",
    "Sex",
    "StructuralVariant",
    "SvType",
    "TranscriptConsequence",
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
    annotation: AlleleAnnotation | None = None  # transcript consequences the file gives
    clinvar: ClinVarAssertion | None = None  # the record's ClinVar INFO


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
    knowledge: str | None = None  # the actionability knowledge used: its name and version
    #: the transcript annotation read, e.g. "VEP v110", as the VCF header states it
    annotation: str | None = None
    clinvar: str | None = None  # the ClinVar release the header dates, e.g. "202301"
    #: the lab's classification file: its label (lab and version), cited where it decided
    classifications: str | None = None
    pharmacogenomics: str | None = None  # the PGx calls' source and version


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


# ---- annotations a pipeline wrote into INFO (VEP CSQ, SnpEff ANN, ClinVar) ----------------


class AnnotationTool(StrEnum):
    """The tool that wrote the transcript consequences of a file."""

    VEP = "VEP"
    SNPEFF = "SnpEff"


class Impact(StrEnum):
    """The putative impact class VEP and SnpEff both give each consequence."""

    HIGH = "HIGH"
    MODERATE = "MODERATE"
    LOW = "LOW"
    MODIFIER = "MODIFIER"


class ClinicalSignificance(StrEnum):
    """The ACMG/AMP five tiers (LOINC 53037-8, answer list LL4034-6)."""

    PATHOGENIC = "Pathogenic"
    LIKELY_PATHOGENIC = "Likely pathogenic"
    UNCERTAIN_SIGNIFICANCE = "Uncertain significance"
    LIKELY_BENIGN = "Likely benign"
    BENIGN = "Benign"


@dataclass(frozen=True, slots=True)
class AnnotationSource:
    """Which tool annotated the file, its version as the header states it, and its INFO key."""

    tool: AnnotationTool
    info_key: str  # "CSQ" or "ANN"
    version: str | None = None  # e.g. "v110" (##VEP), "5.1d" (##SnpEffVersion)


@dataclass(slots=True)
class TranscriptConsequence:
    """The predicted effect of one ALT allele on one transcript (or other feature).

    Not frozen, like VariantCall: a VEP record carries a dozen of these, and a frozen
    dataclass of this size costs about 4 µs to construct, a slotted one 0.5 µs.
    """

    consequences: tuple[str, ...]  # Sequence Ontology terms, e.g. ("missense_variant",)
    impact: Impact | None = None
    gene_symbol: str | None = None  # e.g. "BRAF"
    gene_id: str | None = None  # e.g. "ENSG00000157764" or an Entrez id
    hgnc_id: str | None = None  # e.g. "HGNC:1097"
    transcript: str | None = None  # the feature id, e.g. "NM_004333.6" or "ENST00000646891.2"
    biotype: str | None = None  # e.g. "protein_coding"
    hgvs_c: str | None = None  # as the tool wrote it: VEP prefixes the transcript, SnpEff not
    hgvs_p: str | None = None  # VEP's %3D escape undone ("p.Leu858=")
    canonical: bool = False
    mane_select: str | None = None  # the RefSeq id of the MANE Select pair, when this is one
    picked: bool = False  # VEP --pick/--flag_pick chose it


@dataclass(slots=True)
class AlleleAnnotation:
    """All transcript consequences of one ALT allele, the primary one chosen by policy.

    Not frozen, for the construction cost (one per ALT of every record).
    """

    alt_index: int  # 1-based, as VariantCall.alt_index
    primary: TranscriptConsequence | None = None  # None: no consequence names this allele
    others: tuple[TranscriptConsequence, ...] = ()  # in the order the tool listed them
    population_af: float | None = None  # gnomAD or similar, from CSQ or INFO


@dataclass(frozen=True, slots=True)
class ClinVarCondition:
    """A condition ClinVar links to the variant: its name and its ids in other databases."""

    name: str | None  # CLNDN, underscores as spaces
    #: (database, id) pairs from CLNDISDB, e.g. ("MedGen", "C2676676"), ("OMIM", "604370")
    codes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ClinVarAssertion:
    """ClinVar's aggregate classification of the variant, from CLNSIG and its companions."""

    significance: str  # as ClinVar wrote it, underscores as spaces, e.g. "drug response"
    #: the five-tier class; None for values that are not one ("drug response", conflicting)
    tier: ClinicalSignificance | None = None
    answer_code: str | None = None  # LOINC LA code of the tier
    also: tuple[str, ...] = ()  # secondary values after '|', e.g. ("risk factor",)
    review_status: str | None = None  # CLNREVSTAT, e.g. "reviewed by expert panel"
    stars: int | None = None  # ClinVar's 0-4 gold stars for the review status
    conditions: tuple[ClinVarCondition, ...] = ()
    genes: tuple[str, ...] = ()  # GENEINFO's gene symbols, e.g. ("BRCA2",)


@dataclass(frozen=True, slots=True)
class LabClassification:
    """The lab's own classification of one variant, from its classification file
    (:mod:`adapter.readers.classifications`); where it exists it decides, not ClinVar."""

    chromosome: str  # normalised: "1".."22", "X", "Y", "M"
    pos: int  # 1-based, as the VCF's POS
    ref: str  # as the VCF's REF, upper case
    alt: str  # as the VCF's ALT, upper case
    tier: ClinicalSignificance
    answer_code: str  # LOINC LA code of the tier
    conditions: tuple[ClinVarCondition, ...]  # at least one: a class is stated for a condition
    evidence: str  # e.g. the ACMG/AMP criteria met, "PVS1, PM2, PP3"
    classified: date  # when the lab classified the variant
    classifier: str | None = None  # who classified or reviewed it
    comment: str | None = None
    gene: str | None = None  # HGNC symbol, for people reading the file
    hgvs_c: str | None = None  # c.HGVS, for people reading the file


@dataclass(slots=True)
class RecordAnnotations:
    """What the annotations of one record say, one AlleleAnnotation per ALT in ALT order."""

    alleles: tuple[AlleleAnnotation, ...]
    clinvar: ClinVarAssertion | None = None
    #: consequences naming an allele the record does not have (counted, not converted)
    unmatched: int = 0


# ---- pharmacogenomics: diplotype calls from PharmCAT or a lab's TSV ------------------------

__all__ += ["Diplotype", "PharmacogenomicCall", "PharmacogenomicReport"]


@dataclass(frozen=True, slots=True)
class Diplotype:
    """A gene's two haplotypes (star alleles or named variants) as the caller named them."""

    gene: str  # HGNC symbol, e.g. "CYP2C19"
    allele1: str  # e.g. "*1"
    allele2: str  # e.g. "*2"

    @property
    def label(self) -> str:
        """The diplotype as clinicians write it, e.g. ``*1/*2``."""
        return f"{self.allele1}/{self.allele2}"


@dataclass(frozen=True, slots=True)
class PharmacogenomicCall:
    """One gene's diplotype with the phenotype and activity score its caller assigned."""

    diplotype: Diplotype
    phenotype: str | None  # as the caller wrote it, e.g. "Intermediate Metabolizer"
    activity_score: float | None = None  # CYP2C9, CYP2D6, DPYD: the summed allele activity
    line: int | None = None  # in a TSV input, for messages


@dataclass(frozen=True, slots=True)
class PharmacogenomicReport:
    """The calls of one PGx input, what made them, and what was left out and why."""

    calls: tuple[PharmacogenomicCall, ...]
    source: str  # "PharmCAT" or "TSV"
    version: str | None = None  # the tool's version as the input states it
    data_version: str | None = None  # the guideline data the tool used, when stated
    #: genes not converted, by reason (e.g. "no_call", "ambiguous_diplotype")
    skipped: dict[str, int] = field(default_factory=dict)


# ---- the report's conclusion: findings, each tied to the resources it speaks of ------------

__all__ += ["Finding", "FindingKind"]


class FindingKind(StrEnum):
    """What a finding states; the conclusion lists the kinds in this order."""

    DIAGNOSTIC = "diagnostic"  # a pathogenic or likely pathogenic classification
    COMPOUND_HETEROZYGOTE = "compound-heterozygote"  # two such alleles of one gene in trans
    THERAPEUTIC = "therapeutic"  # a drug and the predicted effect
    BIOMARKER = "biomarker"  # tumor mutational burden, microsatellite status
    PHARMACOGENOMIC = "pharmacogenomic"  # a PGx phenotype and its recommended drugs


@dataclass(frozen=True, slots=True)
class Finding:
    """One sentence of the report's conclusion and the ids of the resources it speaks of
    (the one that states it first, then those it rests on): a policy that withholds any of
    them drops the sentence, so the conclusion keeps no trace of what was withheld. Small,
    so worker processes can send it on."""

    kind: FindingKind
    sentence: str
    about: tuple[str, ...]


# ---- lab reports: HL7 v2 ORU^R01 messages and GA4GH Phenopackets ---------------------------

__all__ += [
    "CodedTerm",
    "LabReport",
    "ReportStatus",
    "ReportedClassification",
    "ReportedVariant",
    "VariantAssessment",
    "VariantInheritance",
]


@dataclass(frozen=True, slots=True)
class CodedTerm:
    """A code as a report gives it, its system already a FHIR system URI (HPO, MONDO, OMIM,
    HGNC, LOINC, ClinVar, ...; see ``mappings/terminologies.csv``)."""

    system: str | None  # None: text only (the report names no code system the adapter knows)
    code: str | None
    display: str | None = None


class ReportStatus(StrEnum):
    """A report's status, as DiagnosticReport.status states it (HL7 v2 OBR-25 mapped)."""

    REGISTERED = "registered"
    PARTIAL = "partial"
    PRELIMINARY = "preliminary"
    FINAL = "final"
    CORRECTED = "corrected"
    CANCELLED = "cancelled"

    @property
    def observation(self) -> str:
        """The Observation.status of a result in this status: R4 Observations have no
        "partial", so a partial report's results are preliminary."""
        return "preliminary" if self is ReportStatus.PARTIAL else self.value


class VariantAssessment(StrEnum):
    """Whether the variant was found: the value of the Variant Observation (LOINC 69548-6,
    answer list LL1971-2)."""

    PRESENT = "present"
    ABSENT = "absent"
    NO_CALL = "no-call"
    INDETERMINATE = "indeterminate"


class VariantInheritance(StrEnum):
    """Where a germline variant came from, as trio or parental testing showed."""

    DE_NOVO = "de novo"
    MATERNAL = "maternal"
    PATERNAL = "paternal"


@dataclass(frozen=True, slots=True)
class ReportedClassification:
    """A variant's clinical significance as the report states it, for its conditions."""

    text: str  # as the report wrote it
    tier: ClinicalSignificance | None = None  # None: none of the five ACMG/AMP tiers
    answer_code: str | None = None  # LOINC LA code of the tier
    conditions: tuple[CodedTerm, ...] = ()  # associated phenotypes / diseases
    evidence: str | None = None  # e.g. the ACMG/AMP criteria met


@dataclass(frozen=True, slots=True)
class ReportedVariant:
    """One variant as a lab report states it: by its HGVS names, with VCF-style coordinates
    only when the report gives them (a VCF record, or a position and alleles)."""

    key: str  # unique and stable within the report: OBX-4 sub-ID, variation descriptor id
    assessment: VariantAssessment = VariantAssessment.PRESENT
    consequence: TranscriptConsequence | None = None  # gene, transcript, c. and p. HGVS
    genomic_hgvs: str | None = None  # g.HGVS on a genomic reference sequence, as written
    display_name: str | None = None  # the lab's name for it (LOINC 47998-0)
    change_type: CodedTerm | None = None  # DNA change type, a Sequence Ontology term
    cytogenetic_location: str | None = None  # e.g. "17q21.31" (LOINC 48001-2)
    call: VariantCall | None = None  # coordinates and sample facts, when given
    zygosity: Zygosity | None = None
    source_class: GenomicSourceClass | None = None  # None: the report's
    allele_frequency: float | None = None  # in the sample
    allele_depth: int | None = None  # reads supporting the allele
    variation_codes: tuple[CodedTerm, ...] = ()  # ClinVar, dbSNP, COSMIC ids
    classification: ReportedClassification | None = None
    inheritance: VariantInheritance | None = None
    actionable: bool = False  # the report calls it therapeutically actionable
    therapies: tuple[CodedTerm, ...] = ()  # the treatments it is actionable for
    status: ReportStatus | None = None  # None: the report's
    notes: tuple[str, ...] = ()
    where: str | None = None  # its place in the input, for messages (e.g. "OBX-4 1.a")


@dataclass(frozen=True, slots=True)
class LabReport:
    """One lab report, read from an HL7 v2 ORU^R01 message or a GA4GH Phenopacket: who it
    is about, the order it answers, and what was found. Business identifiers of every
    resource made from it derive from ``report_key``, so a corrected report updates the
    resources of the original instead of adding to them."""

    source_format: str  # e.g. "HL7 v2.5.1 ORU^R01", "GA4GH Phenopacket 2.0"
    report_key: str  # stable across corrections: the filler order number, the packet's id
    patient: PatientRef
    status: ReportStatus = ReportStatus.FINAL
    code: CodedTerm | None = None  # the test, e.g. LOINC 81247-9 (OBR-4)
    build: GenomeBuild | None = None
    source_class: GenomicSourceClass = GenomicSourceClass.GERMLINE
    sex: Sex = Sex.UNKNOWN
    birth_date: date | None = None
    placer_order: tuple[str, str] | None = None  # (system, value), OBR-2 / ORC-2
    filler_order: tuple[str, str] | None = None  # (system, value), OBR-3 / ORC-3
    specimen: tuple[str, str] | None = None  # (system, value), SPM-2
    specimen_type: CodedTerm | None = None  # SPM-4
    collected: datetime | None = None  # OBR-7 / SPM-17
    issued: datetime | None = None  # OBR-22
    performer: str | None = None  # the lab's name
    conclusion: str | None = None  # the interpretation text
    notes: tuple[str, ...] = ()  # NTE segments, the packet's description
    diagnoses: tuple[CodedTerm, ...] = ()  # diseases diagnosed or assessed
    phenotypes: tuple[CodedTerm, ...] = ()  # phenotypic features observed
    excluded_phenotypes: tuple[CodedTerm, ...] = ()  # looked for and not observed
    variants: tuple[ReportedVariant, ...] = ()
    message_id: str | None = None  # MSH-10: what an ACK answers
