"""The conformance layer against the IG's own examples, intact and broken on purpose."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapter.errors import InputError, ValidationIssue
from adapter.packages import package_dir
from adapter.validation import ValidationReport, Validator, validate_path

IG = "hl7.fhir.uv.genomics-reporting"
BASE = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
VARIANT = BASE + "variant"

Resource = dict[str, Any]


def examples() -> list[str]:
    """File names of the IG's examples (fetching the package at collection if needed)."""
    return sorted(p.name for p in (package_dir(IG) / "example").glob("*.json"))


def example(name: str) -> Resource:
    data: Resource = json.loads((package_dir(IG) / "example" / name).read_text("utf-8"))
    return data


def errors(issues: list[ValidationIssue]) -> list[ValidationIssue]:
    return [i for i in issues if i.severity == "error"]


def error_at(issues: list[ValidationIssue], path: str) -> list[str]:
    """Messages of the errors at exactly ``path``."""
    return [i.message for i in errors(issues) if i.path == path]


# -- every example of the IG is accepted --------------------------------------------------


@pytest.mark.parametrize("name", examples())
def test_ig_example_is_valid(validator: Validator, name: str) -> None:
    issues = validator.validate(example(name))
    assert errors(issues) == []


def test_examples_are_checked_against_their_profiles(validator: Validator) -> None:
    issues = validator.validate(example("Observation-SNVexample.json"))
    assert {i.profile for i in issues} == {VARIANT}


# -- and rejected when broken --------------------------------------------------------------


@pytest.fixture
def variant() -> Resource:
    return example("Observation-SNVexample.json")


def test_missing_ge_category(validator: Validator, variant: Resource) -> None:
    variant["category"] = [c for c in variant["category"] if c["coding"][0]["code"] != "GE"]
    messages = error_at(validator.validate(variant), "Observation.category")
    assert any("geCategory" in m for m in messages)


def test_wrong_observation_code(validator: Validator, variant: Resource) -> None:
    variant["code"]["coding"][0]["code"] = "12345-6"
    messages = error_at(validator.validate(variant), "Observation.code")
    assert any("69548-6" in m for m in messages)


def test_status_outside_its_required_binding(validator: Validator, variant: Resource) -> None:
    variant["status"] = "done"
    messages = error_at(validator.validate(variant), "Observation.status")
    assert any("observation-status" in m for m in messages)


def test_bad_date_time(validator: Validator, variant: Resource) -> None:
    variant["effectiveDateTime"] = "yesterday"
    assert error_at(validator.validate(variant), "Observation.effectiveDateTime") == [
        "'yesterday' is not a valid dateTime"
    ]


@pytest.mark.parametrize(
    ("value", "valid"),
    [("2026-02-30", False), ("2026-04-31T10:00:00Z", False), ("2023-02-29", False),
     ("2024-02-29", True), ("2000-02-29", True), ("1900-02-29", False), ("2026-02", True)],
)  # fmt: skip
def test_regression_a_date_must_be_a_day_of_the_calendar(
    validator: Validator, variant: Resource, value: str, valid: bool
) -> None:
    """The dateTime regex lets 2026-02-30 through; R4: "Dates SHALL be valid dates"."""
    variant["effectiveDateTime"] = value
    found = error_at(validator.validate(variant), "Observation.effectiveDateTime")
    assert found == ([] if valid else [f"'{value}' is not a valid dateTime"])


def test_unknown_element(validator: Validator, variant: Resource) -> None:
    variant["colour"] = "blue"
    assert error_at(validator.validate(variant), "Observation.colour")


def test_component_value_of_the_wrong_type(validator: Validator, variant: Resource) -> None:
    """gene-studied demands a CodeableConcept; a valueString is refused."""
    index = next(
        i for i, c in enumerate(variant["component"]) if c["code"]["coding"][0]["code"] == "48018-6"
    )
    component = variant["component"][index]
    del component["valueCodeableConcept"]
    component["valueString"] = "BRCA1"
    issues = validator.validate(variant)
    assert error_at(issues, f"Observation.component[{index}].valueString")
    assert error_at(issues, f"Observation.component[{index}].value[x]")


def test_two_values_of_one_choice(validator: Validator, variant: Resource) -> None:
    variant["valueBoolean"] = True
    assert errors(validator.validate(variant))


def test_too_many_of_a_slice(validator: Validator, variant: Resource) -> None:
    hgvs = next(c for c in variant["component"] if c["code"]["coding"][0]["code"] == "48004-6")
    variant["component"].append(copy.deepcopy(hgvs))
    messages = error_at(validator.validate(variant), "Observation.component")
    assert any("representative-coding-hgvs" in m for m in messages)


def test_bad_primitive_deep_inside(validator: Validator, variant: Resource) -> None:
    variant["component"][0]["code"]["coding"][0]["system"] = 42
    path = "Observation.component[0].code.coding[0].system"
    assert error_at(validator.validate(variant), path) == ["42 is not a uri (a JSON string)"]


def test_empty_object(validator: Validator, variant: Resource) -> None:
    variant["component"][1] = {}
    messages = error_at(validator.validate(variant), "Observation.component[1]")
    assert any(m.startswith("ele-1") for m in messages)


def test_reference_to_a_resource_type_not_allowed(validator: Validator, variant: Resource) -> None:
    variant["subject"] = {"reference": "Medication/m1"}
    messages = error_at(validator.validate(variant), "Observation.subject.reference")
    assert any("Medication" in m for m in messages)


def test_obs_6_data_absent_reason_with_a_value(validator: Validator, variant: Resource) -> None:
    variant["dataAbsentReason"] = {"text": "not asked"}
    messages = error_at(validator.validate(variant), "Observation")
    assert any(m.startswith("obs-6") for m in messages)


@pytest.mark.parametrize("element", ["code", "status"])
def test_diagnostic_report_without_a_required_element(validator: Validator, element: str) -> None:
    report = example("DiagnosticReport-GenomicReportExample01.json")
    del report[element]
    assert error_at(validator.validate(report), f"DiagnosticReport.{element}")


def test_extension_value_of_the_wrong_type(validator: Validator) -> None:
    obs = example("Observation-RepeatExpansion.json")
    ext = obs["component"][6]["extension"][0]
    del ext["valuePositiveInt"]
    ext["valueString"] = "first"
    path = "Observation.component[6].extension[0].valueString"
    assert error_at(validator.validate(obs), path)


def test_unknown_extension_of_the_ig(validator: Validator, variant: Resource) -> None:
    variant["extension"] = [{"url": BASE + "no-such-extension", "valueString": "x"}]
    assert error_at(validator.validate(variant), "Observation.extension[0].url")


def test_unknown_extension_elsewhere_is_a_warning(validator: Validator, variant: Resource) -> None:
    variant["extension"] = [{"url": "http://example.org/ext", "valueString": "x"}]
    issues = validator.validate(variant)
    assert errors(issues) == []
    assert any(i.path == "Observation.extension[0].url" for i in issues)


def test_unknown_declared_profile_is_a_warning(validator: Validator) -> None:
    patient = {
        "resourceType": "Patient",
        "meta": {"profile": ["http://example.org/StructureDefinition/nope"]},
        "gender": "other",
    }
    issues = validator.validate(patient)
    assert [i.severity for i in issues] == ["warning"]
    patient["gender"] = "sometimes"
    assert error_at(validator.validate(patient), "Patient.gender")


def test_explicit_profile(validator: Validator) -> None:
    """A plain Observation is fine as an Observation, not as a Variant."""
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "something"},
    }
    assert validator.is_valid(obs)
    assert not validator.is_valid(obs, VARIANT)


def test_unknown_resource_type(validator: Validator) -> None:
    issues = validator.validate({"resourceType": "Nonsense"})
    assert [i.path for i in errors(issues)] == ["Resource.resourceType"]


def test_required_binding_not_checkable_offline_is_a_warning(
    validator: Validator, variant: Resource
) -> None:
    """LOINC answer lists ship in no package: their required bindings cannot be checked."""
    issues = validator.validate(variant)
    value = [i for i in issues if i.path == "Observation.valueCodeableConcept"]
    assert [(i.severity, "binding not checkable" in i.message) for i in value] == [
        ("warning", True)
    ]


def test_hgvs_is_checked_by_syntax(validator: Validator, variant: Resource) -> None:
    index = next(
        i for i, c in enumerate(variant["component"]) if c["code"]["coding"][0]["code"] == "48004-6"
    )
    variant["component"][index]["valueCodeableConcept"]["coding"][0]["code"] = "not hgvs"
    path = f"Observation.component[{index}].valueCodeableConcept"
    assert error_at(validator.validate(variant), path)


def test_obs_7_component_with_the_observations_own_code(
    validator: Validator, variant: Resource
) -> None:
    """Found behind a malformed component too (which the structural checks report)."""
    own = copy.deepcopy(variant["code"])
    variant["component"][1]["code"] = "not a concept"
    variant["component"].append({"code": own, "valueString": "x"})
    issues = validator.validate(variant)
    at = f"Observation.component[{len(variant['component']) - 1}]"
    assert any(m.startswith("obs-7") for m in error_at(issues, at))
    assert error_at(issues, "Observation.component[1].code")


def test_qty_3_unit_code_without_a_system(validator: Validator, variant: Resource) -> None:
    variant["component"].append(
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "81258-6"}]},
            "valueQuantity": {"value": 0.5, "code": "1"},
        }
    )
    at = f"Observation.component[{len(variant['component']) - 1}].valueQuantity"
    assert any(m.startswith("qty-3") for m in error_at(validator.validate(variant), at))


# -- Bundles ---------------------------------------------------------------------------------


@pytest.fixture
def bundle() -> Resource:
    return example("Bundle-bundle-oncologyexamples-r4.json")


def test_bundle_entries_are_checked_against_their_own_profiles(
    validator: Validator, bundle: Resource
) -> None:
    entry = bundle["entry"][5]["resource"]
    assert entry["meta"]["profile"] == [VARIANT]
    component = entry["component"][0]
    del component["valueCodeableConcept"]
    component["valueQuantity"] = {"value": 1}
    issues = validator.validate(bundle)
    path = "Bundle.entry[5].resource.component[0].valueQuantity"
    assert error_at(issues, path)
    assert {i.profile for i in errors(issues)} == {VARIANT}


def test_transaction_entries_need_a_request(validator: Validator, bundle: Resource) -> None:
    assert bundle["type"] == "transaction"
    del bundle["entry"][2]["request"]
    messages = error_at(validator.validate(bundle), "Bundle.entry[2]")
    assert any(m.startswith("bdl-3") for m in messages)


def test_collection_entries_must_not_have_a_request(validator: Validator, bundle: Resource) -> None:
    bundle["type"] = "collection"
    messages = error_at(validator.validate(bundle), "Bundle.entry[0]")
    assert any(m.startswith("bdl-3") for m in messages)


def test_full_url_rules(validator: Validator, bundle: Resource) -> None:
    bundle["entry"][0]["fullUrl"] = "Patient/123"
    bundle["entry"][1]["fullUrl"] = "urn:uuid:NOT-A-UUID"
    bundle["entry"][2]["fullUrl"] = bundle["entry"][3]["fullUrl"]
    issues = validator.validate(bundle)
    assert error_at(issues, "Bundle.entry[0].fullUrl")
    assert error_at(issues, "Bundle.entry[1].fullUrl")
    assert any(m.startswith("bdl-7") for m in error_at(issues, "Bundle.entry[3].fullUrl"))


def test_urn_uuid_references_resolve_within_the_bundle(
    validator: Validator, bundle: Resource
) -> None:
    """The Variant's subject must be a Patient; here it points at the Practitioner entry."""
    variant = bundle["entry"][5]["resource"]
    variant["subject"] = {"reference": bundle["entry"][1]["fullUrl"]}
    path = "Bundle.entry[5].resource.subject.reference"
    assert any("Practitioner" in m for m in error_at(validator.validate(bundle), path))


# -- files ----------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_path_of_a_resource(validator: Validator, tmp_path: Path) -> None:
    path = write(tmp_path, "v.json", json.dumps(example("Observation-SNVexample.json")))
    report = validate_path(path, validator=validator)
    assert isinstance(report, ValidationReport)
    assert (report.ok, report.errors, report.resources_checked) == (True, [], 1)
    assert report.warnings


def test_validate_path_of_a_bundle_counts_its_entries(
    validator: Validator, tmp_path: Path, bundle: Resource
) -> None:
    path = write(tmp_path, "b.json", json.dumps(bundle))
    report = validate_path(path, validator=validator)
    assert report.ok
    assert report.resources_checked == 1 + len(bundle["entry"])


def test_validate_path_of_ndjson_names_the_line(validator: Validator, tmp_path: Path) -> None:
    good = example("Observation-SNVexample.json")
    bad = copy.deepcopy(good)
    bad["status"] = "done"
    lines = [json.dumps(good), "", json.dumps(bad), "{not json"]
    path = write(tmp_path, "out.ndjson", "\n".join(lines) + "\n")
    report = validate_path(path, validator=validator)
    assert not report.ok
    assert report.resources_checked == 2
    assert [(i.path, i.severity) for i in report.errors] == [
        ("line 3: Observation.status", "error"),
        ("line 4", "error"),
    ]


def test_validate_path_of_a_file_that_is_not_json(validator: Validator, tmp_path: Path) -> None:
    report = validate_path(write(tmp_path, "x.json", "nope"), validator=validator)
    assert (report.ok, report.resources_checked) == (False, 0)


def test_validate_path_of_a_missing_file(validator: Validator, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        validate_path(tmp_path / "absent.json", validator=validator)


# -- the generated fast paths agree with the walker ---------------------------------------


def mutations(resource: Resource) -> Iterator[Resource]:
    """Single-point breakages of every object in a resource (bad types, strays, removals)."""
    broken: list[Callable[[dict[str, Any], str], None]] = [
        lambda obj, key: obj.__setitem__(key, 12345),
        lambda obj, key: obj.__setitem__(key, [{}]),
        lambda obj, key: obj.__setitem__(key, {"code": "x"}),
        lambda obj, key: obj.__setitem__(key, None),
        lambda obj, key: obj.__setitem__(key, "x y"),
        lambda obj, key: obj.pop(key),
        lambda obj, key: obj.__setitem__(key + "Stray", "x"),
    ]
    for path in _paths(resource):
        for breakage in broken:
            copied = copy.deepcopy(resource)
            obj = copied
            for step in path[:-1]:
                obj = obj[step]
            breakage(obj, path[-1])
            yield copied


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key not in ("resourceType", "div"):
                yield (*prefix, key)
                yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, (*prefix, i))


def _by_walker(validator: Validator, resource: Resource) -> set[tuple[str, str, str]]:
    """The issues the walker alone finds: every object checked by ``_fields``, no fast path."""
    walker = validator._fields  # private on purpose: the fast paths are what is tested
    validator._object = walker  # type: ignore[method-assign]
    try:
        return {(i.severity, i.path, i.message) for i in validator.validate(resource)}
    finally:
        del validator._object


@pytest.mark.parametrize(
    "name", ["Observation-SNVexample.json", "Bundle-bundle-oncologyexamples-r4.json"]
)
def test_fast_paths_report_what_the_walker_reports(validator: Validator, name: str) -> None:
    original = example(name)
    for resource in itertools.chain([original], itertools.islice(mutations(original), 0, None, 13)):
        fast = {(i.severity, i.path, i.message) for i in validator.validate(resource)}
        assert fast == _by_walker(validator, resource)


# -- shared parts: checked once, then recalled --------------------------------------------


@pytest.mark.parametrize(
    "name", ["Observation-SNVexample.json", "Bundle-bundle-oncologyexamples-r4.json"]
)
def test_shared_parts_report_what_unshared_ones_do(validator: Validator, name: str) -> None:
    """Every part declared shared: the same issues, in the same order, when first checked
    and when recalled, as when nothing is shared."""
    original = example(name)
    for resource in itertools.chain([original], itertools.islice(mutations(original), 0, None, 7)):
        alone = validator.validate(resource)
        with validator.sharing() as share:
            for value in resource.values():
                share(value)
            assert validator.validate(resource) == alone
            assert validator.validate(resource) == alone


def test_a_shared_resource_is_recalled_whole(validator: Validator, variant: Resource) -> None:
    alone = validator.validate(variant)
    with validator.sharing() as share:
        share(variant)
        assert validator.validate(variant) == validator.validate(variant) == alone
        assert validator._memo.entries[id(variant)]  # private: the outcome is kept


def test_a_shared_invalid_part_is_reported_where_each_resource_has_it(
    validator: Validator, variant: Resource
) -> None:
    """One bad component in two resources, at different places: the error is found once and
    reported under each resource's own index."""
    bad = variant["component"][0]
    bad["code"]["coding"][0]["system"] = 42
    other = copy.deepcopy(variant)
    other["component"] = [*variant["component"][1:], bad]
    last = len(other["component"]) - 1
    with validator.sharing() as share:
        share(bad)
        for resource, index in ((variant, 0), (other, last), (variant, 0), (other, last)):
            path = f"Observation.component[{index}].code.coding[0].system"
            assert error_at(validator.validate(resource), path) == [
                "42 is not a uri (a JSON string)"
            ]
        assert validator._memo.entries[id(bad)]  # private: the outcome is kept


@pytest.mark.parametrize("element", ["code", "valueCodeableConcept", "subject", "category"])
def test_a_shared_top_level_part_keeps_its_findings(
    validator: Validator, variant: Resource, element: str
) -> None:
    """Parts checked inline (code, value), with a reference target (subject), sliced
    (category): the warnings of a valid part, the errors of a broken one, every time."""
    broken = copy.deepcopy(variant)
    (broken[element][0] if element == "category" else broken[element])["colour"] = "blue"
    expected = [validator.validate(variant), validator.validate(broken)]
    with validator.sharing() as share:
        share(variant[element])
        share(broken[element])
        for _ in range(2):
            assert [validator.validate(variant), validator.validate(broken)] == expected
    assert errors(expected[1])


def test_sharing_ends_with_its_block(validator: Validator, variant: Resource) -> None:
    with validator.sharing() as share:
        share(variant)
        validator.validate(variant)
    assert id(variant) not in validator._memo.entries  # private: nothing is held after


@pytest.mark.parametrize(
    ("name", "step"),
    [("Observation-SNVexample.json", 3), ("Bundle-bundle-oncologyexamples-r4.json", 11)],
)
def test_frequent_shapes_are_checked_as_fully(validator: Validator, name: str, step: int) -> None:
    """Once objects of one shape have passed often enough to get their own branch in a
    check (and Variant components, in the Observation's), broken ones of that shape, and of
    others, still report what the walker does; shared or not."""
    original = example(name)
    for _ in range(40):
        assert errors(validator.validate(copy.deepcopy(original))) == []
    assert any(s.kept for s in validator._fast._shapes.values())  # private: branches made
    for resource in itertools.islice(mutations(original), 0, None, step):
        alone = validator.validate(resource)
        assert {(i.severity, i.path, i.message) for i in alone} == _by_walker(validator, resource)
        with validator.sharing() as share:
            share(resource.get("component"))
            share(resource.get("entry"))
            assert validator.validate(resource) == validator.validate(resource) == alone
