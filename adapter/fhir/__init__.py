"""FHIR R4 resources of the Genomics Reporting IG STU3, built as plain dicts, and their writers.

:class:`VariantBuilder` makes one Variant Observation per call (the hot path), then
:class:`ReportBuilder` the data files, the study and analysis Procedures and the
DiagnosticReport; :func:`open_writer` streams them into a transaction Bundle, a collection
Bundle or a Bulk NDJSON folder.
"""

from .report import ReportBuilder
from .variant import VariantBuilder
from .writers import FORMS, ReferenceList, ResourceWriter, open_writer

__all__ = [
    "FORMS",
    "ReferenceList",
    "ReportBuilder",
    "ResourceWriter",
    "VariantBuilder",
    "open_writer",
]
