"""The official HL7 FHIR Validator beside the adapter's own: no errors, and the same verdicts.

The official validator is org.hl7.fhir.validation 6.6.7, the engine of ``validator_cli.jar``
and of the IG publisher (https://confluence.hl7.org/display/FHIR/Using+the+FHIR+Validator).
``tests/servers/validator/`` wraps it as one warm JVM for the whole session, offline: FHIR R4
4.0.1 core, the Genomics Reporting IG 3.0.0 (https://hl7.org/fhir/uv/genomics-reporting/STU3/)
and the IG's dependencies from local packages only, and no terminology server (the CLI's
``-tx n/a``); see its README for the versions and why.

Policy decided here:

* every resource the adapter emits for the test VCFs, in a collection Bundle, has no issue of
  severity error or fatal from the official validator;
* the same good resources (each on its own, outside its Bundle) and copies broken on purpose
  go to both validators: the good ones must pass both, and on the broken ones the verdicts
  (error / no error) must agree. A disagreement is allowed only where
  :data:`DOCUMENTED_LIMITS` says why, and such a case must keep disagreeing as recorded, so
  that the table never outlives the limit it documents; a disagreement that is a bug of the
  adapter's validator is a strict xfail in :data:`ADAPTER_BUGS`, which fails once fixed;
* the Maven module is built when its jar is older than its sources (offline first); failing to
  build or to start fails every test here with Maven's or the JVM's output, never skips.
"""

from __future__ import annotations

import copy
import json
import queue
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest

from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
from adapter.model import PatientRef
from adapter.packages import Digest, cache_dir, pins
from adapter.validation import Validator

pytestmark = pytest.mark.validator

Resource = dict[str, Any]

SERVER = Path(__file__).resolve().parent / "servers" / "validator"
JAR = SERVER / "target" / "fhir-genomics-validator.jar"
HOME = SERVER / "target" / "fhir-home"  # the validator's private package cache and settings
LOG = SERVER / "target" / "validator.log"
VCF = Path(__file__).resolve().parent / "data" / "vcf"
VCFS = ("vep_sample.vcf", "snv.vcf", "phased_compound_het.vcf", "secondary_findings.vcf")

BUILD_TIMEOUT_S = 1800
START_TIMEOUT_S = 600
ANSWER_TIMEOUT_S = 300
FAILING = frozenset({"error", "fatal"})

#: test_convert's options, but with a patient identifier system that is not an example URL:
#: the official validator rejects example.org URLs outside examples (the CLI's default,
#: BaseValidator.isExampleUrl); .test is reserved for testing (RFC 2606) and not one of them
OPTIONS = ConvertOptions(
    patient=PatientRef(identifier_system="https://hospital.test/mrn", identifier_value="M1"),
    issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
    validate=True,
    output_format=OutputFormat.COLLECTION,
)


# -- the warm process ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfficialIssue:
    """One message of the official validator."""

    severity: str  # fatal | error | warning | information
    location: str
    message: str
    message_id: str


class OfficialValidator:
    """A client of the warm validator process: one JSON line out, one JSON line back."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._pump_thread = threading.Thread(target=self._pump, args=(process.stdout,), daemon=True)
        self._pump_thread.start()
        self.ready = self._answer(START_TIMEOUT_S, "start")

    def _pump(self, stdout: IO[str] | None) -> None:
        assert stdout is not None
        for line in stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _answer(self, timeout: float, what: str) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"the official validator gave no answer to {what} in {timeout} s{_log()}")
        if line is None:
            code = self._process.wait(timeout=30)
            pytest.fail(f"the official validator exited ({code}) during {what}{_log()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def validate(self, resource: Resource) -> list[OfficialIssue]:
        """The official validator's issues for ``resource``, against its declared profiles."""
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(json.dumps(resource) + "\n")  # a resource is a request of its own
        stdin.flush()
        answer = self._answer(
            ANSWER_TIMEOUT_S, f"{resource.get('resourceType')} {resource.get('id')}"
        )
        if "error" in answer:
            pytest.fail(f"the official validator could not validate: {answer['error']}")
        return [
            OfficialIssue(i["severity"], i["location"], i["message"], i["messageId"])
            for i in answer["issues"]
        ]

    def close(self) -> None:
        """End of input ends the process; it is killed only if it does not stop."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._pump_thread.join(timeout=60)
        if self._process.stdout is not None:
            self._process.stdout.close()


def _log() -> str:
    tail = LOG.read_text("utf-8", errors="replace")[-6000:] if LOG.is_file() else "(no log)"
    return f"; its output ({LOG}):\n{tail}"


def _build() -> None:
    """``mvn package`` unless the jar is newer than every source (offline first)."""
    sources = [SERVER / "pom.xml", *(p for p in (SERVER / "src").rglob("*") if p.is_file())]
    newest = max(p.stat().st_mtime for p in sources)
    if JAR.is_file() and (SERVER / "target" / "lib").is_dir() and JAR.stat().st_mtime > newest:
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        pytest.fail("mvn is not installed: the official validator cannot be built")
    output = ""
    for offline in (["-o"], []):
        done = subprocess.run(
            [mvn, "-B", "-q", *offline, "package"],
            cwd=SERVER,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
        if done.returncode == 0:
            return
        output = (done.stdout + done.stderr)[-8000:]
    pytest.fail(f"mvn package failed in {SERVER}:\n{output}")


def _npm_tarball(name: str, spec: dict[str, str]) -> Path:
    """A package only the official validator needs, fetched once into the package cache."""
    path, digest = cache_dir() / spec["tarball"], Digest.parse(spec)
    if not path.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"npm is not installed: place {spec['tarball']} in {cache_dir()} by hand")
        with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".fetch-") as tmp:
            argv = [npm, "pack", f"{name}@{spec['version']}", "--ignore-scripts"]
            done = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                pytest.fail(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
            digest.verify(Path(tmp) / spec["tarball"], f"package {name}@{spec['version']}")
            (Path(tmp) / spec["tarball"]).replace(path)
    digest.verify(path, f"package {name}@{spec['version']}")
    return path


def _pinned_tarball(name: str, folder: Path) -> Path:
    """The adapter's pinned tarball, or (when only its unpacked folder is cached) one made anew."""
    path = cache_dir() / pins()[name].tarball
    if path.is_file():
        return path
    made = HOME / pins()[name].tarball
    with tarfile.open(made, "w:gz") as tgz:
        tgz.add(folder, arcname="package")
    return made


def _arguments(fhir_packages: dict[str, Path]) -> list[str]:
    setup = json.loads((SERVER / "packages.json").read_text("utf-8"))
    tarballs = {
        f"{name}#{pins()[name].version}": _pinned_tarball(name, folder)
        for name, folder in fhir_packages.items()
    }
    for name, spec in setup["npm"].items():
        tarballs[f"{name}#{spec['version']}"] = _npm_tarball(name, spec)
    args = ["--home", str(HOME), "--core", setup["core"]]
    for package, path in tarballs.items():
        args += ["--package", f"{package}={path}"]
    for package in setup["load"]:
        args += ["--load", package]
    return args


@pytest.fixture(scope="session")
def official(fhir_packages: dict[str, Path]) -> Iterator[OfficialValidator]:
    """The official validator, built if needed and started once for the session."""
    _build()
    java = shutil.which("java")
    if java is None:
        pytest.fail("java is not installed: the official validator cannot run")
    HOME.mkdir(parents=True, exist_ok=True)
    args = _arguments(fhir_packages)
    with LOG.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [java, "-XX:+UseSerialGC", "-jar", str(JAR), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            encoding="utf-8",
        )
    client = OfficialValidator(process)
    try:
        yield client
    finally:
        client.close()


# -- what the adapter emits ---------------------------------------------------------------


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Resource]:
    """The collection Bundle the adapter writes for each test VCF, by file name."""
    folder = tmp_path_factory.mktemp("official")
    bundles: dict[str, Resource] = {}
    for name in VCFS:
        out = folder / f"{name}.json"
        convert_vcf(VCF / name, out, OPTIONS)
        bundles[name] = json.loads(out.read_bytes())
    return bundles


def _failing(issues: list[OfficialIssue]) -> list[OfficialIssue]:
    return [i for i in issues if i.severity in FAILING]


def test_official_validator_runs_on_the_pinned_packages(official: OfficialValidator) -> None:
    setup = json.loads((SERVER / "packages.json").read_text("utf-8"))
    assert (official.ready["validator"], official.ready["fhirVersion"]) == ("6.6.7", "4.0.1")
    assert set(official.ready["packages"]) >= {setup["core"], *setup["load"]}


@pytest.mark.parametrize("name", VCFS)
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

#: where the two validators are known to disagree: case -> (official has an error, the
#: adapter's has one, why). A case listed here must disagree exactly so.
DOCUMENTED_LIMITS: dict[str, tuple[bool, bool, str]] = {
    "variant-specimen-untyped-patient": (
        False,
        True,
        "With the CLI's default reference policy (no -check-references: nothing is resolved) "
        "the official validator checks a target type only from Reference.type or a resolved "
        "target (InstanceValidator.checkReference); the adapter's also reads it from a relative "
        "URL such as Patient/p1, whose type FHIR says is apparent "
        "(http://hl7.org/fhir/R4/references.html#literal). The adapter always writes "
        "Reference.type, so what it emits is checked by both (see the typed case).",
    ),
    "variant-unknown-extension": (
        True,
        False,
        "Policy: an extension no loaded package defines is an error for the official validator "
        "unless its domain is allowed (-allow-any-extensions, off by default); the adapter's "
        "reports it as a warning, an error only under the IG's canonical or as a "
        "modifierExtension (adapter/validation/validator.py, _extension), extensions being "
        "open (http://hl7.org/fhir/R4/extensibility.html).",
    ),
    "variant-narrative-outside-xhtml": (
        True,
        False,
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
    official: OfficialValidator, validator: Validator, resource: Resource
) -> tuple[tuple[bool, bool], list[str]]:
    """(official has an error, the adapter's has one), and both validators' error messages."""
    theirs = [f"official: {i.location}: {i.message}" for i in _failing(official.validate(resource))]
    ours = [
        f"adapter: {i.path}: {i.message}"
        for i in validator.validate(resource)
        if i.severity == "error"
    ]
    return (bool(theirs), bool(ours)), theirs + ours


def _agrees(case: str, verdicts: tuple[bool, bool]) -> bool:
    """Both say the same, or they disagree exactly as documented."""
    limit = DOCUMENTED_LIMITS.get(case)
    return verdicts == limit[:2] if limit else verdicts[0] == verdicts[1]


def test_both_validators_accept_every_emitted_resource_alone(
    official: OfficialValidator, validator: Validator, emitted: dict[str, Resource]
) -> None:
    rejected = {}
    for case, resource in _emitted_resources(emitted):
        verdicts, messages = _verdicts(official, validator, resource)
        if verdicts != (False, False):
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
def test_validators_agree_on_broken_resources(
    official: OfficialValidator, validator: Validator, emitted: dict[str, Resource], case: str
) -> None:
    profile, mutate = BROKEN[case]
    resource = _profiled(emitted, profile)
    mutate(resource)
    verdicts, messages = _verdicts(official, validator, resource)
    assert any(verdicts), f"{case} breaks nothing: neither validator finds an error"
    assert _agrees(case, verdicts), messages
