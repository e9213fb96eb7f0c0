"""Consent and secondary-finding policy: what may be disclosed, to whom, for what purpose.

Readers of the policy inputs (FHIR Consent R4/R5, the policy file, the ACMG secondary-findings
table) feed one decision engine that every path emitting data calls before writing or sending.
"""

from __future__ import annotations

from .audit import audit_event, provenance
from .consent import (
    Consent,
    ConsentProvision,
    ConsentStatus,
    FhirVersion,
    ProvisionType,
    consent_from_dict,
    consent_from_json,
    read_consent,
)
from .deidentify import Deidentifier
from .engine import (
    Decision,
    Effect,
    Item,
    Reason,
    Request,
    decide,
    item_of,
)
from .labels import labelled, labels_of
from .rules import (
    Combining,
    MinorOnset,
    Policy,
    Retraction,
    RetractionRule,
    default_policy,
    load_policy,
)
from .secondary import (
    AcmgSfList,
    CandidateAllele,
    ListedGene,
    ReportingRule,
    SecondaryFindingDecision,
    acmg_sf_list,
    evaluate_secondary_findings,
)

__all__ = [
    "AcmgSfList",
    "CandidateAllele",
    "Combining",
    "Consent",
    "ConsentProvision",
    "ConsentStatus",
    "Decision",
    "Deidentifier",
    "Effect",
    "FhirVersion",
    "Item",
    "ListedGene",
    "MinorOnset",
    "Policy",
    "ProvisionType",
    "Reason",
    "ReportingRule",
    "Request",
    "Retraction",
    "RetractionRule",
    "SecondaryFindingDecision",
    "acmg_sf_list",
    "audit_event",
    "consent_from_dict",
    "consent_from_json",
    "decide",
    "default_policy",
    "evaluate_secondary_findings",
    "item_of",
    "labelled",
    "labels_of",
    "load_policy",
    "provenance",
    "read_consent",
]
