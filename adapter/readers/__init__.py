"""Readers turn input files into the internal model (:mod:`adapter.model`); none knows FHIR."""

from .vcf import FieldSpec, VcfHeader, VcfReader

__all__ = ["FieldSpec", "VcfHeader", "VcfReader"]
