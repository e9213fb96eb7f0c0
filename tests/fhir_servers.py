"""The two Java servers of the suite, built from our Maven modules in ``tests/servers/``.

* :class:`Hapi`: a HAPI FHIR 8.6.0 JPA server (R4, H2 file database), on a free 127.0.0.1
  port, with the Genomics Reporting IG installed from the verified package cache; it can be
  restarted on the same port and database.
* :class:`OfficialValidator`: the HL7 FHIR Validator 6.6.7 as one warm, offline JVM that
  answers one JSON line per resource.

Each module is built with Maven when its jar is older than its sources (offline first, online
when the local repository lacks an artifact). A failed build or start fails the tests that need
it with Maven's or the JVM's output: nothing is skipped. The fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from adapter.packages import Digest, cache_dir, pins

Resource = dict[str, Any]

SERVERS = Path(__file__).resolve().parent / "servers"
BUILD_TIMEOUT_S = 1800
FAILING = frozenset({"error", "fatal"})
FHIR_JSON = "application/fhir+json"


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        pytest.fail("java (17 or later) is not on PATH; it runs the servers in tests/servers")
    return java


def build(module: Path, jar: Path, *beside: Path) -> None:
    """``mvn package`` in ``module`` unless ``jar`` is newer than every source and what the
    build puts ``beside`` it exists."""
    sources = [module / "pom.xml", *(p for p in (module / "src").rglob("*") if p.is_file())]
    newest = max(p.stat().st_mtime for p in sources)
    if jar.is_file() and jar.stat().st_mtime > newest and all(p.exists() for p in beside):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        pytest.fail(f"Maven (mvn) is not on PATH; it builds {module}", pytrace=False)
    attempts = []
    for offline in (["-o"], []):
        done = subprocess.run(
            [mvn, "-q", "-B", "-Dstyle.color=never", *offline, "package"],
            cwd=module,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
        if done.returncode == 0:
            return
        attempts.append(f"mvn {' '.join(offline)} package:\n{(done.stdout + done.stderr)[-6000:]}")
    pytest.fail(f"cannot build {module}:\n" + "\n".join(attempts), pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def npm_tarball(package: Path, folder: Path) -> Path:
    """A verified, unpacked package (``package/``) as the npm tarball the servers install."""
    manifest = json.loads((package / "package.json").read_bytes())
    path = folder / f"{manifest['name']}-{manifest['version']}.tgz"
    with tarfile.open(path, "w:gz") as tgz:
        tgz.add(package, arcname="package")
    return path


# --- HAPI FHIR JPA ----------------------------------------------------------------------------

HAPI = SERVERS / "hapi"
HAPI_JAR = HAPI / "target" / "hapi-test-server.jar"
#: 1 GiB heap; C1 only and the serial collector start HAPI fastest on a 2-core machine
HAPI_JVM = ("-Xmx1g", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
#: for throughput (the benchmarks): both JIT compilers, a larger heap, the parallel collector
HAPI_JVM_THROUGHPUT = ("-Xmx4g", "-XX:+UseParallelGC")
HAPI_START_TIMEOUT_S = 300


def hapi_app() -> Path:
    """The server's jar, built if its sources changed, unpacked to Spring Boot's plain layout
    (which starts faster than nested jars)."""
    build(HAPI, HAPI_JAR)
    extracted = HAPI / "target" / "extracted"
    app = extracted / HAPI_JAR.name
    if app.is_file() and app.stat().st_mtime >= HAPI_JAR.stat().st_mtime:
        return app
    shutil.rmtree(extracted, ignore_errors=True)
    argv = [_java(), "-Djarmode=tools", "-jar", str(HAPI_JAR), "extract"]
    done = subprocess.run(
        [*argv, "--destination", str(extracted)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot extract {HAPI_JAR}:\n{done.stdout}{done.stderr}", pytrace=False)
    return app


class Hapi:
    """A running server; its data are in ``folder/db``, so a restart keeps them."""

    def __init__(self, app: Path, ig: Path, folder: Path, jvm: tuple[str, ...] = HAPI_JVM) -> None:
        self._argv = [_java(), *jvm, "-jar", str(app), f"--hapi.packages={ig}"]
        self._argv.append(f"--hapi.db.path={folder / 'db'}")
        self.folder = folder
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        self.log = folder / "server.log"
        self._process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        """Ready once ``/metadata`` answers 200: it answers 503 while it installs the IG."""
        argv = [*self._argv, f"--server.port={self.port}"]
        ready = f"{self.base}/metadata"
        return launch(
            "HAPI", argv, self.folder, log=self.log, ready=ready, timeout=HAPI_START_TIMEOUT_S
        )

    def restart(self) -> None:
        """Stopped (SIGTERM, as a service manager does) and started again, same port and data."""
        stop_process(self._process)
        self._process = self._start()

    def stop(self) -> None:
        stop_process(self._process)


def launch(
    name: str, argv: list[str], folder: Path, *, log: Path, ready: str, timeout: float
) -> subprocess.Popen[bytes]:
    """A server started in ``folder``, its output appended to ``log``, returned once ``ready``
    answers 200; it failing to start fails the test with the end of its log."""
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}:\n{_tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(ready, timeout=5).status_code == 200:
                    return process
            time.sleep(0.2)
        pytest.fail(f"{name} did not answer {ready} in {timeout} s:\n{_tail(log)}")
    except BaseException:
        stop_process(process)
        raise


def _tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-12000:]


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def hapi_errors(fhir: httpx.Client, resource: Resource) -> list[str]:
    """The error and fatal issues of HAPI ``$validate`` against the resource's own profile
    (the base resource when it claims none). A body HAPI cannot parse is a 400 whose
    OperationOutcome says why: its issues count the same."""
    profile = (resource.get("meta", {}).get("profile") or [None])[0]
    params = {"profile": profile} if profile else {}
    response = fhir.post(f"/{resource['resourceType']}/$validate", params=params, json=resource)
    assert response.status_code in {200, 400, 412}, f"{response.status_code}: {response.text}"
    outcome = response.json()
    return [
        f"{resource['resourceType']} {profile} {i.get('expression', ['?'])[0]}: {i['diagnostics']}"
        for i in outcome["issue"]
        if i["severity"] in FAILING
    ]


def r4_topic(url: str, *resources: str, filter_parameter: str | None = None) -> dict[str, Any]:
    """An R4 SubscriptionTopic as the Backport IG writes it and HAPI reads topics: a Basic with
    R5/R4B extensions, triggered by creates and updates of each of ``resources``, filterable
    by ``filter_parameter`` when given. https://hl7.org/fhir/uv/subscriptions-backport/"""
    r5 = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic."
    r4b = "http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic."
    extensions: list[dict[str, Any]] = [{"url": f"{r5}url", "valueUri": url}]
    for resource in resources:
        trigger = [{"url": "resource", "valueUri": resource}] + [
            {"url": "supportedInteraction", "valueString": i} for i in ("create", "update")
        ]
        extensions.append({"url": f"{r4b}resourceTrigger", "extension": trigger})
    for resource in resources if filter_parameter is not None else ():
        filter_by = [
            {"url": "resource", "valueUri": resource},
            {"url": "filterParameter", "valueString": filter_parameter},
        ]
        extensions.append({"url": f"{r4b}canFilterBy", "extension": filter_by})
    return {
        "resourceType": "Basic",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/fhir-types", "code": "SubscriptionTopic"}]
        },
        "modifierExtension": [{"url": f"{r5}status", "valueString": "active"}],
        "extension": extensions,
    }


# --- the official validator -------------------------------------------------------------------

VALIDATOR = SERVERS / "validator"
VALIDATOR_JAR = VALIDATOR / "target" / "fhir-genomics-validator.jar"
VALIDATOR_HOME = VALIDATOR / "target" / "fhir-home"  # its package cache and settings
VALIDATOR_LOG = VALIDATOR / "target" / "validator.log"
VALIDATOR_START_TIMEOUT_S = 600
ANSWER_TIMEOUT_S = 300


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
        self.ready = self._answer(VALIDATOR_START_TIMEOUT_S, "start")

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
    log = VALIDATOR_LOG
    tail = log.read_text("utf-8", errors="replace")[-6000:] if log.is_file() else "(no log)"
    return f"; its output ({log}):\n{tail}"


def _fetched_tarball(name: str, spec: dict[str, str]) -> Path:
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
    return path if path.is_file() else npm_tarball(folder, VALIDATOR_HOME)


def validator_setup() -> dict[str, Any]:
    """``tests/servers/validator/packages.json``: what the validator loads beyond our pins."""
    setup: dict[str, Any] = json.loads((VALIDATOR / "packages.json").read_text("utf-8"))
    return setup


def _validator_arguments(fhir_packages: dict[str, Path]) -> list[str]:
    setup = validator_setup()
    tarballs = {
        f"{name}#{pins()[name].version}": _pinned_tarball(name, folder)
        for name, folder in fhir_packages.items()
    }
    for name, spec in setup["npm"].items():
        tarballs[f"{name}#{spec['version']}"] = _fetched_tarball(name, spec)
    args = ["--home", str(VALIDATOR_HOME), "--core", setup["core"]]
    for package, path in tarballs.items():
        args += ["--package", f"{package}={path}"]
    for package in setup["load"]:
        args += ["--load", package]
    return args


def start_official(fhir_packages: dict[str, Path]) -> OfficialValidator:
    """The official validator, built if needed, started and answered its start-up line."""
    build(VALIDATOR, VALIDATOR_JAR, VALIDATOR / "target" / "lib")
    VALIDATOR_HOME.mkdir(parents=True, exist_ok=True)
    args = _validator_arguments(fhir_packages)
    with VALIDATOR_LOG.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [_java(), "-XX:+UseSerialGC", "-jar", str(VALIDATOR_JAR), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            encoding="utf-8",
        )
    return OfficialValidator(process)
