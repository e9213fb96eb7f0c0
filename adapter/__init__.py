"""FHIR Genomics adapter: genomic results to HL7 FHIR Genomics Reporting IG STU3 (FHIR R4).

The public API is what ``__all__`` lists; everything else may change between versions.
"""

from .convert import ConvertOptions, OutputFormat, convert_vcf
from .errors import (
    AdapterError,
    GenomeBuildError,
    InputError,
    OptionsError,
    OutputError,
    PackageError,
    ValidationFailed,
    ValidationIssue,
    VcfError,
)
from .model import (
    ConversionSummary,
    GenomeBuild,
    GenomicSourceClass,
    PatientRef,
    Sex,
    VariantCall,
    Zygosity,
)

__version__ = "0.1.0"

__all__ = [
    "AdapterError",
    "ConversionSummary",
    "ConvertOptions",
    "GenomeBuild",
    "GenomeBuildError",
    "GenomicSourceClass",
    "InputError",
    "OptionsError",
    "OutputError",
    "OutputFormat",
    "PackageError",
    "PatientRef",
    "Sex",
    "ValidationFailed",
    "ValidationIssue",
    "VariantCall",
    "VcfError",
    "Zygosity",
    "__version__",
    "convert_vcf",
]
