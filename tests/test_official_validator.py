"""Three validators, one verdict: the official HL7 FHIR Validator, HAPI FHIR's ``$validate``
and the adapter's own find no error in what the adapter emits, and agree on broken copies.

The official validator is org.hl7.fhir.validation 6.6.7, the engine of ``validator_cli.jar``
and of the IG publisher (https://confluence.hl7.org/display/FHIR/Using+the+FHIR+Validator).
``tests/servers/validator/`` wraps it as one warm JVM for the whole session, offline: FHIR R4
4.0.1 core, the Genomics Reporting IG 3.0.0 (https://hl7.org/fhir/uv/genomics-reporting/STU3/)
and the IG's dependencies from local packages only, and no terminology server (the CLI's
``-tx n/a``); see its README for the versions and why. The HAPI FHIR 8.6.0 JPA server of
``tests/test_hapi_server.py`` validates with the same engine, against the same IG, through
its own packages, terminology setup and REST layer (its parser sees a body first).

Policy decided here:

* every resource the adapter emits for the test VCFs, in a collection Bundle, has no issue of
  severity error or fatal from the official validator;
* the same good resources (each on its own, outside its Bundle) and copies broken on purpose
  go to all three: the good ones must pass all three, and on the broken ones the verdicts
  (error / no error) must agree. A disagreement is allowed only where
  :data:`DOCUMENTED_LIMITS` says why, and such a case must keep disagreeing as recorded, so
  that the table never outlives the limit it documents; a disagreement that is a bug of the
  adapter's validator is a strict xfail in :data:`ADAPTER_BUGS`, which fails once fixed;
* the Maven modules are built when a jar is older than its sources (offline first); failing to
  build or to start fails every test here with Maven's or the JVM's output, never skips.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir_servers import FAILING, OfficialIssue, OfficialValidator, hapi_errors, validator_setup

from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
from adapter.model import LabReport, PatientRef
from adapter.readers.hl7v2 import read_oru
from adapter.readers.phenopacket import read_phenopacket
from adapter.reports import ReportOptions, convert_report
from adapter.validation import Validator

pytestmark = pytest.mark.validator

Resource = dict[str, Any]

ROOT = Path(__file__).resolve().parent.parent
VCF = ROOT / "tests" / "data" / "vcf"
#: the test VCFs and the README's demo input, by name
VCFS = {
    "vep_sample.vcf": VCF / "vep_sample.vcf",
    "snv.vcf": VCF / "snv.vcf",
    "phased_compound_het.vcf": VCF / "phased_compound_het.vcf",
    "secondary_findings.vcf": VCF / "secondary_findings.vcf",
    "NA12878-panel.vcf.gz": ROOT / "examples" / "NA12878-panel.vcf.gz",
}

#: test_convert's options, but with a patient identifier system that is not an example URL:
#: the official validator rejects example.org URLs outside examples (the CLI's default,
#: BaseValidator.isExampleUrl); .test is reserved for testing (RFC 2606) and not one of them
OPTIONS = ConvertOptions(
    patient=PatientRef(identifier_system="https://hospital.test/mrn", identifier_value="M1"),
    issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
    validate=True,
    output_format=OutputFormat.COLLECTION,
)


# -- what the adapter emits ---------------------------------------------------------------


#: the example lab reports (HL7 v2 messages, Phenopackets), read with a non-example system
REPORTS = sorted([*(ROOT / "examples" / "hl7v2").glob("*.hl7"),
                  *(ROOT / "examples" / "phenopackets").glob("*.json")])  # fmt: skip
MRN = "https://hospital.test/mrn"


def _lab_report(path: Path) -> LabReport:
    if path.suffix == ".json":
        return read_phenopacket(path.read_bytes(), source=path.name, subject_system=MRN)
    (report, *_) = read_oru(path.read_bytes(), source=path.name, authorities={"HOSP": MRN}).reports
    return report


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Resource]:
    """The collection Bundle the adapter writes for each test VCF and example lab report,
    by file name."""
    folder = tmp_path_factory.mktemp("official")
    bundles: dict[str, Resource] = {}
    for name, vcf in VCFS.items():
        out = folder / f"{name}.json"
        convert_vcf(vcf, out, OPTIONS)
        bundles[name] = json.loads(out.read_bytes())
    for path in REPORTS:
        out = folder / f"{path.name}.out.json"
        report = _lab_report(path)
        convert_report(report, out, ReportOptions(OutputFormat.COLLECTION, validate=True))
        bundles[path.name] = json.loads(out.read_bytes())
    return bundles


def _failing(issues: list[OfficialIssue]) -> list[OfficialIssue]:
    return [i for i in issues if i.severity in FAILING]


def test_official_validator_runs_on_the_pinned_packages(official: OfficialValidator) -> None:
    setup = validator_setup()
    assert (official.ready["validator"], official.ready["fhirVersion"]) == ("6.6.7", "4.0.1")
    assert set(official.ready["packages"]) >= {setup["core"], *setup["load"]}


@pytest.mark.parametrize("name", sorted(VCFS) + [p.name for p in REPORTS])
def test_adapter_output_has_no_official_error(
    official: OfficialValidator, emitted: dict[str, Resource], name: str
) -> None:
    bundle = emitted[name]
    failing = [(i.location, i.message) for i in _failing(official.validate(bundle))]
    assert failing == [], f"{name}: {len(bundle['entry'])} entries"


# -- agreement with the adapter's validator -----------------------------------------------

IG = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
Mutation = Callable[[Resource], None]


def _set(path: str, value: Any) -> Mutation:
    """Set the element at a dotted path (list items by index) to ``value``."""

    def mutate(resource: Resource) -> None:
        *parents, last = path.split(".")
        node: Any = resource
        for step in parents:
            node = node[int(step)] if step.isdigit() else node[step]
        node[int(last) if last.isdigit() else last] = value

    return mutate


def _drop(element: str) -> Mutation:
    def mutate(resource: Resource) -> None:
        del resource[element]

    return mutate


def _component(resource: Resource, code: str) -> Resource:
    """The (first) component of ``resource`` coded ``code``."""
    found: Resource = next(
        c for c in resource["component"] if c["code"]["coding"][0]["code"] == code
    )
    return found


def _in_component(code: str, mutate: Mutation) -> Mutation:
    return lambda resource: mutate(_component(resource, code))


def _repeat_component(code: str) -> Mutation:
    """Add a second copy of the component coded ``code`` (a slice of at most one)."""
    return lambda resource: resource["component"].append(copy.deepcopy(_component(resource, code)))


TYPED_PATIENT = {"reference": "Patient/p1", "type": "Patient"}
UNKNOWN_EXTENSION = {"url": "https://hospital.test/fhir/StructureDefinition/x", "valueString": "x"}
UNKNOWN_IG_EXTENSION = {"url": IG + "no-such-extension", "valueString": "x"}
UNKNOWN = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}
    ]
}
SPECIMEN = {"resourceType": "Specimen", "id": "s1"}
PLAIN_DIV = {"status": "generated", "div": "<div>a variant</div>"}

#: broken copies: (profile of the adapter's resource to break, how to break it)
BROKEN: dict[str, tuple[str, Mutation]] = {
    "variant-without-status": ("variant", _drop("status")),
    "variant-without-code": ("variant", _drop("code")),
    "variant-without-ge-category": ("variant", lambda r: r.update(category=r["category"][:1])),
    "variant-wrong-fixed-loinc-code": ("variant", _set("code.coding.0.code", "12345-6")),
    "variant-status-outside-required-binding": ("variant", _set("status", "done")),
    "variant-malformed-datetime": ("variant", _set("effectiveDateTime", "15/01/2026")),
    "variant-malformed-instant": ("variant", _set("issued", "2026-01-15T09:30")),
    "variant-impossible-date": ("variant", _set("effectiveDateTime", "2026-02-30")),
    "variant-empty-string": ("variant", _set("code.coding.0.display", "")),
    "variant-malformed-id": ("variant", _set("id", "not an id")),
    "variant-decimal-as-string": (
        "variant",
        _in_component("81258-6", _set("valueQuantity.value", "1.0")),
    ),
    "variant-specimen-typed-patient": ("variant", _set("specimen", TYPED_PATIENT)),
    "variant-specimen-untyped-patient": ("variant", _set("specimen", {"reference": "Patient/p1"})),
    "variant-two-ref-alleles": ("variant", _repeat_component("69547-8")),
    "variant-subject-as-array": ("variant", lambda r: r.update(subject=[r["subject"]])),
    "variant-unknown-element": ("variant", _set("colour", "red")),
    "variant-unknown-extension": ("variant", _set("extension", [UNKNOWN_EXTENSION])),
    "variant-unknown-ig-extension": ("variant", _set("extension", [UNKNOWN_IG_EXTENSION])),
    "variant-value-and-data-absent-reason": ("variant", _set("dataAbsentReason", UNKNOWN)),
    "variant-unreferenced-contained": ("variant", _set("contained", [SPECIMEN])),
    "variant-narrative-outside-xhtml": ("variant", _set("text", PLAIN_DIV)),
    "genotype-without-category": ("genotype", _drop("category")),
    "implication-unknown-element": ("diagnostic-implication", _set("colour", "red")),
    "study-without-status": ("genomic-study", _drop("status")),
    "study-performed-malformed": ("genomic-study", _set("performedDateTime", "2026-1-5")),
    "report-without-code": ("genomic-report", _drop("code")),
    "report-wrong-fixed-loinc-code": ("genomic-report", _set("code.coding.0.code", "12345-6")),
    "report-result-typed-patient": ("genomic-report", _set("result.0", TYPED_PATIENT)),
    "report-malformed-issued": ("genomic-report", _set("issued", "yesterday")),
}

#: whether (the official validator, HAPI, the adapter's validator) find an error
Verdicts = tuple[bool, bool, bool]

#: where the validators are known to disagree: case -> (verdicts, why). A case listed here
#: must disagree exactly so.
DOCUMENTED_LIMITS: dict[str, tuple[Verdicts, str]] = {
    "variant-specimen-untyped-patient": (
        (False, False, True),
        "With references not resolved (the CLI's default, and $validate of a resource alone) "
        "the engine checks a target type only from Reference.type or a resolved target "
        "(InstanceValidator.checkReference); the adapter's also reads it from a relative "
        "URL such as Patient/p1, whose type FHIR says is apparent "
        "(http://hl7.org/fhir/R4/references.html#literal). The adapter always writes "
        "Reference.type, so what it emits is checked by all three (see the typed case).",
    ),
    "variant-unknown-extension": (
        (True, False, False),
        "Policy: an extension no loaded package defines is an error for the official validator "
        "unless its domain is allowed (-allow-any-extensions, off by default). HAPI's "
        "FhirInstanceValidator allows any extension by default (anyExtensionsAllowed, true in "
        "8.6.0), the setting a hospital's HAPI server runs with unless changed. The adapter's "
        "reports it as a warning, an error only under the IG's canonical or as a "
        "modifierExtension (adapter/validation/validator.py, _extension), extensions being "
        "open (http://hl7.org/fhir/R4/extensibility.html).",
    ),
    "variant-unknown-ig-extension": (
        (True, False, True),
        "An extension under the IG's canonical that the IG does not define is a mistake of the "
        "writer, an error for the official validator and the adapter's; HAPI allows any "
        "extension by default (see variant-unknown-extension).",
    ),
    "variant-narrative-outside-xhtml": (
        (True, True, False),
        "Narrative.div must be XHTML in the XHTML namespace "
        "(http://hl7.org/fhir/R4/narrative.html#xhtml); the adapter's validator checks only "
        "that it is a <div> (adapter/validation/__init__.py) and the adapter writes no narrative.",
    ),
}

#: disagreements that are bugs of the adapter's validator: case -> the bug
ADAPTER_BUGS: dict[str, str] = {}  # none known: an impossible calendar date was one, fixed


def _emitted_resources(emitted: dict[str, Resource]) -> Iterator[tuple[str, Resource]]:
    for name, bundle in emitted.items():
        for index, entry in enumerate(bundle["entry"]):
            resource = entry["resource"]
            yield f"{name}#{index}:{resource['resourceType']}", resource


def _profiled(emitted: dict[str, Resource], profile: str) -> Resource:
    """A deep copy of the first emitted resource that declares ``profile``."""
    for _, resource in _emitted_resources(emitted):
        if resource.get("meta", {}).get("profile") == [IG + profile]:
            return copy.deepcopy(resource)
    raise AssertionError(f"no test VCF makes a {profile} resource")


def _verdicts(
    official: OfficialValidator, fhir: httpx.Client, validator: Validator, resource: Resource
) -> tuple[Verdicts, list[str]]:
    """Whether each validator finds an error, and every error message."""
    theirs = [f"official: {i.location}: {i.message}" for i in _failing(official.validate(resource))]
    hapi = [f"HAPI: {message}" for message in hapi_errors(fhir, resource)]
    ours = [
        f"adapter: {i.path}: {i.message}"
        for i in validator.validate(resource)
        if i.severity == "error"
    ]
    return (bool(theirs), bool(hapi), bool(ours)), theirs + hapi + ours


def _agrees(case: str, verdicts: Verdicts) -> bool:
    """All say the same, or they disagree exactly as documented."""
    limit = DOCUMENTED_LIMITS.get(case)
    return verdicts == limit[0] if limit else len(set(verdicts)) == 1


@pytest.mark.hapi
def test_every_validator_accepts_every_emitted_resource_alone(
    official: OfficialValidator,
    fhir: httpx.Client,
    validator: Validator,
    emitted: dict[str, Resource],
) -> None:
    rejected = {}
    for case, resource in _emitted_resources(emitted):
        verdicts, messages = _verdicts(official, fhir, validator, resource)
        if any(verdicts):
            rejected[case] = messages
    assert rejected == {}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=ADAPTER_BUGS[c]))
        if c in ADAPTER_BUGS
        else c
        for c in sorted(BROKEN)
    ],
)
@pytest.mark.hapi
def test_validators_agree_on_broken_resources(
    official: OfficialValidator,
    fhir: httpx.Client,
    validator: Validator,
    emitted: dict[str, Resource],
    case: str,
) -> None:
    profile, mutate = BROKEN[case]
    resource = _profiled(emitted, profile)
    mutate(resource)
    verdicts, messages = _verdicts(official, fhir, validator, resource)
    assert any(verdicts), f"{case} breaks nothing: no validator finds an error"
    assert _agrees(case, verdicts), messages
