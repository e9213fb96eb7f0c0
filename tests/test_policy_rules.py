"""The policy file: the shipped default, and every way a deployment's copy can be wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from adapter.errors import PolicyError, PolicyFileError
from adapter.policy.rules import Combining, MinorOnset, Retraction, default_policy, load_policy
from adapter.resources import data_dir

SHIPPED = data_dir("mappings") / "policy.yaml"


def _written(tmp_path: Path, change: dict[str, Any] | None = None, drop: str = "") -> Path:
    """The shipped policy with ``change`` merged in (a dotted key per value) and ``drop``
    (a dotted key) removed, written to a file."""
    data = yaml.safe_load(SHIPPED.read_text())
    for dotted, value in (change or {}).items():
        *parents, key = dotted.split(".")
        node = data
        for parent in parents:
            node = node[parent]
        node[key] = value
    if drop:
        *parents, key = drop.split(".")
        node = data
        for parent in parents:
            node = node[parent]
        del node[key]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_shipped_default_is_treatment_only_without_consent() -> None:
    policy = default_policy()
    assert policy.no_consent.purposes == {"TREAT", "ETREAT"}
    assert not policy.no_consent.secondary_findings
    assert not policy.no_consent.research
    assert policy.combining is Combining.DENY_OVERRIDES
    assert policy.minors.age_of_majority == 18
    assert policy.minors.adult_onset is MinorOnset.WITHHOLD_UNLESS_GUARDIAN_PERMITS
    assert policy.never == {"HMARKT"}
    assert policy.research == {"HRESCH", "CLINTRCH"}
    assert policy.purpose_required


def test_every_rule_names_its_source() -> None:
    policy = default_policy()
    sources = [
        policy.no_consent.source,
        policy.combining_source,
        policy.minors.source,
        policy.never_source,
        policy.research_source,
    ]
    assert all(len(s) > 40 for s in sources)
    assert "xacml" in policy.combining_source.lower()


def test_a_deployment_may_choose_the_most_recent_consent(tmp_path: Path) -> None:
    policy = load_policy(_written(tmp_path, {"combine.strategy": "most-recent"}))
    assert policy.combining is Combining.MOST_RECENT
    assert policy.path == str(tmp_path / "policy.yaml")


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"no_consent.purposes": ["TREAT", "SHOP"]}, "no_consent.purposes", "'SHOP' is not"),
        ({"no_consent.purposes": "TREAT"}, "no_consent.purposes", "list of v3 ActReason"),
        ({"no_consent.secondary_findings": "no"}, "no_consent.secondary_findings", "true or"),
        ({"combine.strategy": "permit-overrides"}, "combine.strategy", "deny-overrides"),
        ({"minors.age_of_majority": 180}, "minors.age_of_majority", "not an age"),
        ({"minors.age_of_majority": True}, "minors.age_of_majority", "not an age"),
        ({"minors.adult_onset_secondary_findings": "disclose"}, "minors.adult_onset", "one of"),
        ({"never.purposes": ["HMARKT", "TREAT"]}, "no_consent.purposes", "both permitted"),
        ({"never.source": " "}, "never.source", "source"),
        ({"version": 2}, "version", "not 1"),
        ({"combine.strategy_typo": "x"}, "combine.strategy_typo", "unknown key"),
        ({"extra": 1}, "extra", "unknown key 'extra'"),
    ],
)
def test_a_bad_value_names_its_key(
    tmp_path: Path, change: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(PolicyFileError) as caught:
        load_policy(_written(tmp_path, change))
    assert caught.value.field is not None and caught.value.field.startswith(field)
    assert words in caught.value.message
    assert caught.value.source == str(tmp_path / "policy.yaml")


@pytest.mark.parametrize("key", ["no_consent.research", "minors", "purpose_required"])
def test_a_missing_key_is_an_error_not_a_default(tmp_path: Path, key: str) -> None:
    with pytest.raises(PolicyFileError, match="lacks the key"):
        load_policy(_written(tmp_path, drop=key))


def test_unreadable_and_non_yaml_files_are_policy_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("no_consent: [unclosed\n")
    with pytest.raises(PolicyFileError, match="not YAML"):
        load_policy(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- TREAT\n")
    with pytest.raises(PolicyFileError, match="mapping"):
        load_policy(listed)


def test_an_edited_policy_file_is_read_again(tmp_path: Path) -> None:
    path = _written(tmp_path)
    assert load_policy(path).combining is Combining.DENY_OVERRIDES
    edited = _written(tmp_path, {"combine.strategy": "most-recent", "minors.age_of_majority": 21})
    assert edited == path
    policy = load_policy(path)
    assert (policy.combining, policy.minors.age_of_majority) == (Combining.MOST_RECENT, 21)


def test_the_readmes_policy_example_is_a_valid_policy(tmp_path: Path) -> None:
    """The README's YAML sections, put in place of the shipped ones, load as it says."""
    import re

    from adapter.policy import Combining, MinorOnset, load_policy

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Consent and secondary-finding policy") :]
    example = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert example is not None
    shipped = Path(__file__).resolve().parent.parent / "mappings" / "policy.yaml"
    policy = yaml.safe_load(shipped.read_text()) | yaml.safe_load(example[1])
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    found = load_policy(path)
    assert found.combining is Combining.MOST_RECENT
    assert found.minors.adult_onset is MinorOnset.WITHHOLD


def test_sent_secondary_findings_are_kept_unless_the_policy_retracts_them(
    tmp_path: Path,
) -> None:
    shipped = default_policy().retraction
    assert shipped.action is Retraction.KEEP and "entered-in-error" in shipped.source
    changed = {"retract_secondary_findings.action": "entered-in-error"}
    assert load_policy(_written(tmp_path, changed)).retraction.action is Retraction.ENTERED_IN_ERROR
    with pytest.raises(PolicyFileError, match="not one of") as caught:
        load_policy(_written(tmp_path, {"retract_secondary_findings.action": "delete"}))
    assert caught.value.field == "retract_secondary_findings.action"
    with pytest.raises(PolicyFileError, match="lacks the key"):
        load_policy(_written(tmp_path, drop="retract_secondary_findings.source"))


def test_a_policy_file_older_than_the_retraction_key_still_loads(tmp_path: Path) -> None:
    """Regression: the key came after version 1 was published; a deployment's own file
    without it keeps loading, and keeps what was sent."""
    older = load_policy(_written(tmp_path, drop="retract_secondary_findings"))
    assert older.retraction.action is Retraction.KEEP
