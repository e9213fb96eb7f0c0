"""Security labels: every genomic resource restricted and GDIS, a secondary finding marked
too; recomputed on each call, never accumulated.

The R4 core package helpers at the top are shared with the de-identification tests.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation
from test_fhir_variant import build, snv

from adapter.packages import cache_dir, pins
from adapter.policy.consent import Coding
from adapter.policy.engine import DISCLOSURE, Item
from adapter.policy.labels import (
    GENOMIC_LABELS,
    LABEL_GENETIC_DISEASE,
    LABEL_RESTRICTED,
    LABEL_SECONDARY_FINDING,
    coding_json,
    labelled,
)
from adapter.policy.secondary import Category
from adapter.resources import data_dir

PRIMARY = Item()
SECONDARY = Item(secondary=Category.CANCER, adult_onset=True)
RESTRICTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
    "code": "R",
    "display": "restricted",
}
GDIS = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "code": "GDIS",
    "display": "genetic disease information sensitivity",
}
FINDING = {"system": DISCLOSURE, "code": "secondary-finding", "display": "Secondary finding"}
#: a label some other party set, which labelling must leave alone
FOREIGN = {"system": "https://lab.example/fhir/CodeSystem/labels", "code": "site-a"}


# ---- the R4 core package in the cache (shared) -----------------------------------------


def r4_core() -> Path:
    """The cached R4 core package folder; the test is skipped when it is not there."""
    folder = cache_dir() / pins()["hl7.fhir.r4.core"].folder / "package"
    if not folder.is_dir():
        pytest.skip(f"the R4 core package is not in the cache ({folder}); fetch_all() gets it")
    return folder


def core_json(name: str) -> dict[str, Any]:
    """A resource file of the R4 core package, e.g. ``CodeSystem-v3-ActCode.json``."""
    found: dict[str, Any] = json.loads((r4_core() / name).read_text(encoding="utf-8"))
    return found


def concepts(system: dict[str, Any]) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    """Each concept of a CodeSystem with the codes of its ancestors, top first."""

    def walk(nodes: list[dict[str, Any]], above: tuple[str, ...]) -> Iterator[Any]:
        for node in nodes:
            yield node, above
            yield from walk(node.get("concept", []), (*above, node["code"]))

    return walk(system["concept"], ())


def concept_of(file: str, code: str) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    """(system URL, concept, ancestors) of ``code`` in the core package's CodeSystem ``file``."""
    system = core_json(file)
    found = [(c, above) for c, above in concepts(system) if c["code"] == code]
    assert len(found) == 1, f"{code} in {file}"
    return system["url"], *found[0]


# ---- helpers ---------------------------------------------------------------------------


def observation(**changes: Any) -> dict[str, Any]:
    """A real variant Observation of the builders; keyword arguments replace elements."""
    return {**build(snv()), **changes}


def security(resource: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = resource["meta"]["security"]
    return found


# ---- tests -----------------------------------------------------------------------------


def test_a_primary_result_is_restricted_and_genetic_in_that_order() -> None:
    obs = observation()
    found = labelled(obs, PRIMARY)
    assert security(found) == [RESTRICTED, GDIS]
    assert found["meta"]["profile"] == obs["meta"]["profile"]
    assert {k: v for k, v in found.items() if k != "meta"} == {
        k: v for k, v in obs.items() if k != "meta"
    }


def test_a_secondary_finding_also_carries_the_adapters_label_last() -> None:
    assert security(labelled(observation(), SECONDARY)) == [RESTRICTED, GDIS, FINDING]


@pytest.mark.parametrize("item", [PRIMARY, SECONDARY], ids=["primary", "secondary"])
def test_labelling_twice_changes_nothing(item: Item) -> None:
    once = labelled(observation(), item)
    assert labelled(once, item) == once
    assert labelled(labelled(once, item), item) == once


def test_a_finding_turned_primary_loses_its_label_and_keeps_the_foreign_one() -> None:
    secondary = labelled(observation(meta={"security": [FOREIGN]}), SECONDARY)
    assert security(secondary) == [FOREIGN, RESTRICTED, GDIS, FINDING]
    primary = labelled(secondary, PRIMARY)
    assert security(primary) == [FOREIGN, RESTRICTED, GDIS]
    assert security(labelled(primary, SECONDARY)) == security(secondary)


def test_our_label_with_another_display_is_replaced_not_duplicated() -> None:
    old = {**RESTRICTED, "display": "Restricted"}
    found = labelled(observation(meta={"security": [old, FOREIGN, GDIS]}), PRIMARY)
    assert security(found) == [FOREIGN, RESTRICTED, GDIS]


def test_the_input_is_not_changed() -> None:
    obs = observation(meta={"profile": ["urn:example:profile"], "security": [FOREIGN]})
    before = copy.deepcopy(obs)
    found = labelled(obs, SECONDARY)
    assert obs == before
    assert found["meta"] is not obs["meta"]
    assert found["meta"]["security"] is not obs["meta"]["security"]


def test_meta_is_added_after_the_id_when_missing() -> None:
    obs = {k: v for k, v in observation().items() if k != "meta"}
    found = labelled(obs, PRIMARY)
    assert list(found)[:3] == ["resourceType", "id", "meta"]
    assert found["meta"] == {"security": [RESTRICTED, GDIS]}


def test_the_labelled_resource_is_a_valid_r4_observation() -> None:
    parsed = Observation.model_validate(labelled(observation(), SECONDARY))
    assert parsed.meta is not None and parsed.meta.security is not None
    assert [(c.system, c.code) for c in parsed.meta.security] == [
        (RESTRICTED["system"], "R"),
        (GDIS["system"], "GDIS"),
        (DISCLOSURE, "secondary-finding"),
    ]


def test_the_constants_give_fresh_codings() -> None:
    first = coding_json(LABEL_RESTRICTED)
    first["display"] = "changed"
    assert coding_json(LABEL_RESTRICTED) == RESTRICTED
    assert GENOMIC_LABELS == (LABEL_RESTRICTED, LABEL_GENETIC_DISEASE)


def test_restricted_is_a_v3_confidentiality_code_of_the_security_label_binding() -> None:
    system, concept, _ = concept_of("CodeSystem-v3-Confidentiality.json", "R")
    assert (system, concept["display"]) == (LABEL_RESTRICTED.system, LABEL_RESTRICTED.display)
    bound = core_json("ValueSet-v3-ConfidentialityClassification.json")["compose"]["include"]
    assert {"code": "R"} in bound[0]["concept"] and bound[0]["system"] == system


def test_gdis_is_a_v3_information_sensitivity_policy_code() -> None:
    system, concept, above = concept_of("CodeSystem-v3-ActCode.json", "GDIS")
    label = LABEL_GENETIC_DISEASE
    assert (system, concept["display"]) == (label.system, label.display)
    # the security-labels value set takes v3-InformationSensitivityPolicy: is-a this one
    assert "_InformationSensitivityPolicy" in above
    labels = core_json("ValueSet-security-labels.json")["compose"]["include"]
    sensitivity = "http://terminology.hl7.org/ValueSet/v3-InformationSensitivityPolicy"
    assert any(sensitivity in i.get("valueSet", []) for i in labels)


def test_the_secondary_finding_label_is_the_code_systems() -> None:
    path = data_dir("profiles") / "CodeSystem-genomic-disclosure.json"
    system = json.loads(path.read_text(encoding="utf-8"))
    found = {c["code"]: c["display"] for c, _ in concepts(system)}
    label = LABEL_SECONDARY_FINDING
    assert system["url"] == label.system
    assert found[label.code] == label.display
    assert Coding(DISCLOSURE, "secondary-finding") == label
