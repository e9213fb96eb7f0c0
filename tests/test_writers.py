"""Transaction, collection and NDJSON output: round trips, determinism, atomicity."""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from test_fhir_report import full_context
from test_fhir_variant import parse, snv, sv_call

from adapter.assembly import accession
from adapter.errors import InputError, OptionsError, OutputError
from adapter.fhir import writers
from adapter.fhir.report import ReportBuilder
from adapter.fhir.variant import VariantBuilder
from adapter.fhir.writers import ReferenceList, ResourceWriter, _chunks, open_writer
from adapter.model import AnalysisContext, PatientRef, StructuralVariant, SvType, VariantCall

PATIENT_BY_IDENTIFIER = PatientRef(identifier_system="http://mrn", identifier_value="42")


class Boom(Exception):
    """Raised on purpose in the middle of a conversion."""


def calls(n: int = 25) -> list[VariantCall]:
    snvs = [snv(pos=1000 + 10 * i, record_id=None) for i in range(n)]
    cnv = sv_call(StructuralVariant(SvType.CNV, end=90000, copy_number=1.0), pos=50000)
    return [snv(pos=1000), *snvs, cnv]  # the first call is repeated right away


def convert(
    form: str, dest: Path, ctx: AnalysisContext, fail_after: int | None = None
) -> ResourceWriter:
    """Variants then the report resources, as the conversion does."""
    with open_writer(form, dest, ctx) as writer:
        builder = VariantBuilder(ctx, accession)
        for i, call in enumerate(calls()):
            if i == fail_after:
                raise Boom
            writer.add_result(builder.build(call))
        for resource in ReportBuilder(ctx).build(writer.result_references()):
            writer.add(resource)
    return writer


def walk_references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from walk_references(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_references(value)


def test_transaction_bundle(tmp_path: Path) -> None:
    ctx = full_context(patient=PATIENT_BY_IDENTIFIER)
    dest = tmp_path / "out.json"
    writer = convert("transaction", dest, ctx)
    bundle = orjson.loads(dest.read_bytes())
    Bundle.model_validate(bundle)
    assert (bundle["type"], bundle["timestamp"]) == ("transaction", "2024-03-01T12:00:00+00:00")
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls) == 6 + len(calls())
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert "id" not in resource
        assert resource["identifier"][0]["value"] == entry["fullUrl"]
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}?identifier=urn:ietf:rfc:3986|{entry['fullUrl']}",
        }
    conditional = "Patient?identifier=http://mrn|42"
    for ref in walk_references(bundle):
        assert (
            ref in full_urls or ref == conditional or ref.startswith(("Specimen/", "Organization/"))
        )
    for entry in bundle["entry"]:
        if "subject" in entry["resource"]:
            assert entry["resource"]["subject"] == {"reference": conditional}
    report = bundle["entry"][-1]["resource"]
    assert [r["reference"] for r in report["result"]] == full_urls[: len(calls())]
    assert writer.counts() == {
        "Observation": len(calls()), "DocumentReference": 3, "Procedure": 2, "DiagnosticReport": 1,
    }  # fmt: skip


def test_collection_bundle(tmp_path: Path) -> None:
    dest = tmp_path / "out.json"
    convert("collection", dest, full_context(patient=PATIENT_BY_IDENTIFIER))
    bundle = orjson.loads(dest.read_bytes())
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
        assert "request" not in entry
    refs = set(walk_references(bundle))
    assert {r for r in refs if r.startswith("urn:uuid:")} <= full_urls
    subject = bundle["entry"][0]["resource"]["subject"]
    assert subject["identifier"] == {"system": "http://mrn", "value": "42"}


def test_ndjson_folder(tmp_path: Path) -> None:
    dest = tmp_path / "bulk"
    convert("ndjson", dest, full_context())
    files = sorted(p.name for p in dest.iterdir())
    assert files == [
        "DiagnosticReport.ndjson", "DocumentReference.ndjson", "Observation.ndjson",
        "Procedure.ndjson",
    ]  # fmt: skip
    resources = []
    for path in dest.iterdir():
        lines = path.read_bytes().splitlines()
        for line in lines:
            resource = orjson.loads(line)
            assert f"{resource['resourceType']}.ndjson" == path.name
            parse(resource)
            resources.append(resource)
    known = {f"{r['resourceType']}/{r['id']}" for r in resources}
    external = {"Patient/p1", "Specimen/s1", "Organization/lab"}
    assert set(walk_references(resources)) <= known | external
    report = next(r for r in resources if r["resourceType"] == "DiagnosticReport")
    assert len(report["result"]) == len(calls())
    assert all(r["reference"].startswith("Observation/") for r in report["result"])


def output_bytes(path: Path) -> dict[str, bytes]:
    """A Bundle file's bytes, or an NDJSON folder's files' bytes, by name."""
    if path.is_dir():
        return {p.name: p.read_bytes() for p in path.iterdir()}
    return {"": path.read_bytes()}


@pytest.mark.parametrize("form", ["transaction", "collection", "ndjson"])
def test_identical_input_gives_identical_bytes(tmp_path: Path, form: str) -> None:
    ctx = full_context()
    first, second = tmp_path / "a", tmp_path / "b"
    convert(form, first, ctx)
    convert(form, second, ctx)
    assert output_bytes(first) == output_bytes(second)


@pytest.mark.parametrize("form", ["transaction", "collection", "ndjson"])
def test_writing_behind_changes_no_byte(
    tmp_path: Path, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Told to write behind every few bytes, the writer flushes, advises and writes on
    as often as it can; the output is what it was."""
    ctx = full_context()
    first, second = tmp_path / "a", tmp_path / "b"
    convert(form, first, ctx)
    advised: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def advise(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((offset, length))
        real(fd, offset, length, advice)

    monkeypatch.setattr(writers, "_WRITE_BEHIND", 16)
    monkeypatch.setattr(os, "posix_fadvise", advise)
    convert(form, second, ctx)
    assert len(advised) > 2
    assert output_bytes(first) == output_bytes(second)


@pytest.mark.parametrize("form", ["transaction", "collection", "ndjson"])
def test_failure_leaves_nothing_behind(tmp_path: Path, form: str) -> None:
    dest = tmp_path / "out"
    with pytest.raises(Boom):
        convert(form, dest, full_context(), fail_after=5)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("form", ["transaction", "ndjson"])
def test_failed_rerun_keeps_the_previous_output(tmp_path: Path, form: str) -> None:
    dest = tmp_path / "out"
    convert(form, dest, full_context())
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(Boom):
        convert(form, dest, full_context(report_key="other"), fail_after=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    convert(form, dest, full_context(report_key="other"))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_memory_per_variant_is_sixteen_bytes(tmp_path: Path) -> None:
    with open_writer("collection", tmp_path / "x.json", full_context()) as writer:
        builder = VariantBuilder(full_context(), accession)
        for call in calls():
            writer.add_result(builder.build(call))
        refs = writer.result_references()
        assert len(refs._ids) == 16 * len(calls())


def test_reference_list_is_a_lazy_sequence() -> None:
    ids = bytearray(bytes(range(16)) + bytes(range(16, 32)))
    refs = ReferenceList(ids, "Observation/")
    first = {"reference": "Observation/00010203-0405-0607-0809-0a0b0c0d0e0f"}
    assert (len(refs), refs[0], refs[-1]) == (2, first, refs[1])
    assert list(refs) == list(refs) == refs[0:2]
    with pytest.raises(IndexError):
        refs[2]


def test_long_result_lists_are_streamed_in_batches() -> None:
    ids = bytearray(b"".join(i.to_bytes(16, "big") for i in range(10_000)))
    resource = {
        "resourceType": "DiagnosticReport",
        "result": ReferenceList(ids, "urn:uuid:"),
        "status": "final",
    }
    parsed = orjson.loads(b"".join(_chunks(resource)))
    assert parsed["status"] == "final"
    assert parsed["result"] == list(resource["result"])  # each batch, laid out by numpy
    assert parsed["result"][-1] == {"reference": "urn:uuid:00000000-0000-0000-0000-00000000270f"}


def test_unknown_form_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(OptionsError):
        open_writer("csv", tmp_path / "x", full_context())
    with pytest.raises(OutputError), open_writer("ndjson", tmp_path / "no" / "x", full_context()):
        pass


def test_empty_bundle_is_valid_json(tmp_path: Path) -> None:
    dest = tmp_path / "empty.json"
    with open_writer("collection", dest, dataclasses.replace(full_context(), issued=None)):
        pass
    assert orjson.loads(dest.read_bytes()) == {"resourceType": "Bundle", "type": "collection"}


def test_a_variant_repeated_far_apart_fails_the_conversion(tmp_path: Path) -> None:
    dest = tmp_path / "out.json"
    ctx = full_context()
    with (
        pytest.raises(InputError, match="occurs twice"),
        open_writer("transaction", dest, ctx) as w,
    ):
        builder = VariantBuilder(ctx, accession)
        for call in [snv(), snv(pos=2000), snv()]:
            w.add_result(builder.build(call))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("form", ["transaction", "ndjson"])
def test_output_gets_the_mode_a_plain_write_would(tmp_path: Path, form: str) -> None:
    """Regression: the temporary output is owner-only; the renamed result must not be."""
    mask = os.umask(0o022)
    os.umask(mask)
    out = tmp_path / ("out" if form == "ndjson" else "out.json")
    with open_writer(form, out, full_context()) as writer:
        builder = VariantBuilder(full_context(), accession)
        writer.add_result(builder.build(snv()))
    expected = (0o777 if form == "ndjson" else 0o666) & ~mask
    assert stat.S_IMODE(out.stat().st_mode) == expected


def test_write_all_writes_every_piece_in_order(tmp_path: Path) -> None:
    """More pieces than one writev takes, some empty."""
    pieces = [f"{i}:".encode() * (i % 3) for i in range(2500)]
    with (tmp_path / "out").open("wb", buffering=0) as f:
        assert writers.write_all(f.fileno(), pieces) == sum(map(len, pieces))
    assert (tmp_path / "out").read_bytes() == b"".join(pieces)


def test_write_all_finishes_a_short_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.writev

    def short(fd: int, batch: list[bytes]) -> int:
        """Only the first piece and half of the second, as a nearly full disk may."""
        return real(fd, [batch[0], batch[1][: len(batch[1]) // 2]])

    monkeypatch.setattr(os, "writev", short)
    pieces = [b"alpha", b"bravo-charlie", b"delta"]
    with (tmp_path / "out").open("wb", buffering=0) as f:
        assert writers.write_all(f.fileno(), pieces) == 23
    assert (tmp_path / "out").read_bytes() == b"alphabravo-charliedelta"


def test_ids_sharing_their_first_half_are_no_repeat() -> None:
    """The repeat check sorts the first eight bytes, then compares the whole of those that
    share them: a shared first half alone is no repeat, a whole id twice is."""
    first, second, third = (bytes([n]) * 16 for n in (1, 2, 3))
    twin = first[:8] + second[8:]
    assert writers._repeated(bytearray(first + twin + third)) is None
    assert writers._repeated(bytearray(first + twin + third + twin)) == writers.uuid_text(
        twin.hex()
    )


def test_write_all_holds_no_more_than_a_megabyte_of_a_long_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a report of millions of results, streamed in pieces of a few hundred KB,
    was gathered 1024 pieces at a time (hundreds of MB) before each writev."""
    batches: list[int] = []
    real = os.writev

    def counted(fd: int, batch: list[bytes]) -> int:
        batches.append(sum(map(len, batch)))
        return real(fd, batch)

    monkeypatch.setattr(os, "writev", counted)
    piece = b"r" * (300 << 10)
    with (tmp_path / "out").open("wb", buffering=0) as f:
        writers.write_all(f.fileno(), (piece for _ in range(20)))
    assert sum(batches) == 20 * len(piece)
    assert max(batches) <= (1 << 20) + len(piece)
