"""Tumor biomarkers as molecular-biomarker Observations: mutational burden and microsatellite
status, as the lab measured them beside the variant calls.

They are results of the report like the variants. Codes come from ``mappings/answer_codes.csv``,
shaped as the IG's examples TMBExample and MSIExample: the biomarker category both as a
category and as a component (molecular sequence adjacent).
"""

from __future__ import annotations

from typing import Any

from ..model import AnalysisContext, TumorBiomarkers
from .codes import concept, profile
from .identifiers import (
    IdFactory,
    identifier,
    observed,
    specimen_reference,
)

__all__ = ["biomarker_observations"]

#: Quantity.unit of the mutational burden (LOINC 94076-7 is "Mutations/Megabase")
TMB_UNIT = "mutations/Mb"


def biomarker_observations(ctx: AnalysisContext) -> dict[str, dict[str, Any]]:
    """The molecular-biomarker Observations of what ``ctx.tumor`` holds, by biomarker
    (``tmb``, ``msi``); none if it holds nothing."""
    tumor = ctx.tumor or TumorBiomarkers()
    found = {}
    if tumor.mutational_burden is not None:
        value = {"value": tumor.mutational_burden, "unit": TMB_UNIT}
        found["tmb"] = _observation(ctx, "tmb", {"valueQuantity": value})
    if tumor.microsatellite_status is not None:
        status = concept("msi-status", tumor.microsatellite_status)
        found["msi"] = _observation(ctx, "msi", {"valueCodeableConcept": status})
    return found


def _observation(ctx: AnalysisContext, kind: str, value: dict[str, Any]) -> dict[str, Any]:
    rid = IdFactory(ctx).resource(f"biomarker-{kind}")
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "meta": {"profile": [profile("molecular-biomarker")]},
        "identifier": [identifier(rid)],
        "status": "final",
        "category": [
            concept("category", "laboratory"),
            concept("category", "biomarker"),
            concept("category", "genetics"),
        ],
        "code": concept("resource-code", kind),
        **observed(ctx),
        **value,
    }
    if (specimen := specimen_reference(ctx)) is not None:
        obs["specimen"] = specimen
    category = {
        "code": concept("category", "biomarker"),
        "valueCodeableConcept": concept("biomarker-category", "molgen"),
    }
    obs["component"] = [category]
    return obs
