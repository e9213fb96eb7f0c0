"""The disclosure decision, scenario by scenario, at a fixed instant."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.errors import PolicyError
from adapter.model import ClinicalSignificance, Sex, Zygosity
from adapter.policy import Combining, Consent, ProvisionType, consent_from_dict, default_policy
from adapter.policy.consent import Reference
from adapter.policy.engine import (
    ADULT_ONSET_IN_MINOR,
    CATEGORY_CODES,
    DISCLOSURE,
    SECONDARY_FINDINGS,
    Effect,
    Item,
    Request,
    decide,
    item_of,
)
from adapter.policy.rules import ACT_REASON, MinorOnset
from adapter.policy.secondary import (
    CandidateAllele,
    Category,
    SecondaryFindingDecision,
    evaluate_secondary_findings,
)
from adapter.resources import data_dir

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ADULT = date(1980, 3, 1)
CHILD = date(2014, 6, 1)
PRIMARY = Item()
BRCA1 = Item(secondary=Category.CANCER, adult_onset=True)  # cancer predisposition, adult onset
KCNQ1 = Item(secondary=Category.CARDIOVASCULAR, adult_onset=None)  # not derived in the table
RB1 = Item(secondary=Category.CANCER, adult_onset=False)  # retinoblastoma: childhood onset
POLICY = default_policy()
PATHOGENIC = ClinicalSignificance.PATHOGENIC


def treat(**changes: Any) -> Request:
    return replace(Request("TREAT", NOW, ADULT), **changes)


def code(coding: Any) -> dict[str, str]:
    return {"system": coding.system, "code": coding.code}


def purpose(value: str) -> dict[str, str]:
    return {"system": ACT_REASON, "code": value}


def consent(
    rid: str | None,
    *nested: dict[str, Any],
    base: str = "permit",
    status: str = "active",
    period: dict[str, str] | None = None,
    when: str = "2025-01-10T09:00:00Z",
    scope: str = "treatment",
) -> Consent:
    """An R4 Consent of patient p1: a base decision and nested provisions."""
    root: dict[str, Any] = {"type": base, "provision": list(nested)}
    if period is not None:
        root["period"] = period
    scope_system = "http://terminology.hl7.org/CodeSystem/consentscope"
    resource = {
        "resourceType": "Consent",
        "id": rid,
        "status": status,
        "scope": {"coding": [{"system": scope_system, "code": scope}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p1"},
        "dateTime": when,
        "provision": root,
    }
    if not nested:
        del root["provision"]
    if rid is None:
        del resource["id"]
    return consent_from_dict(resource)


def provision(
    kind: str, *codes: Any, purposes: tuple[str, ...] = (), **more: Any
) -> dict[str, Any]:
    found: dict[str, Any] = {"type": kind}
    if codes:
        found["code"] = [{"coding": [code(c)]} for c in codes]
    if purposes:
        found["purpose"] = [purpose(p) for p in purposes]
    return found | more


OPT_IN = consent("opt-in", provision("permit", SECONDARY_FINDINGS))
OPT_OUT = consent("opt-out", provision("deny", SECONDARY_FINDINGS))
CANCER_ONLY = consent("cancer-only", provision("permit", CATEGORY_CODES[Category.CANCER]))
GUARDIAN = consent("guardian", provision("permit", SECONDARY_FINDINGS, ADULT_ONSET_IN_MINOR))


# ---- no consent on file ------------------------------------------------------------------


def test_no_consent_permits_treatment_use_of_a_primary_finding() -> None:
    decision = decide(PRIMARY, treat(), [], POLICY)
    assert decision.permitted
    assert decision.reasons[0].rule == "policy.no_consent"


@pytest.mark.parametrize(
    ("item", "request_", "rule", "words"),
    [
        (BRCA1, treat(), "policy.no_consent", "secondary findings need a consent"),
        (PRIMARY, treat(purpose="HRESCH"), "policy.no_consent", "research needs"),
        (PRIMARY, treat(purpose="HOPERAT"), "policy.no_consent", "only ETREAT, TREAT"),
        (PRIMARY, treat(purpose="HMARKT"), "policy.never", "HMARKT"),
        (PRIMARY, treat(purpose=None), "policy.purpose_required", "no purpose of use"),
    ],
)
def test_no_consent_denies_the_rest(item: Item, request_: Request, rule: str, words: str) -> None:
    decision = decide(item, request_, [], POLICY)
    assert decision.effect is Effect.DENY
    assert decision.reasons[-1].rule == rule
    assert words in decision.reasons[-1].text


def test_marketing_is_denied_even_under_a_consent_that_permits_it() -> None:
    everything = consent("all", provision("permit", purposes=("HMARKT",)))
    assert not decide(PRIMARY, treat(purpose="HMARKT"), [everything], POLICY).permitted


# ---- opt-in, opt-out, categories -----------------------------------------------------------


def test_opt_in_discloses_a_secondary_finding_and_names_the_provision() -> None:
    decision = decide(BRCA1, treat(), [OPT_IN], POLICY)
    assert decision.permitted
    assert (decision.reasons[0].consent, decision.reasons[0].provision) == (
        "Consent/opt-in",
        "provision.provision[0]",
    )


def test_a_general_permit_is_no_consent_to_secondary_findings() -> None:
    general = consent("general")
    assert decide(PRIMARY, treat(), [general], POLICY).permitted
    decision = decide(BRCA1, treat(), [general], POLICY)
    assert not decision.permitted
    assert "does not name secondary findings" in decision.reasons[0].text


def test_opt_out_withholds_secondary_findings_only() -> None:
    assert decide(PRIMARY, treat(), [OPT_OUT], POLICY).permitted
    decision = decide(BRCA1, treat(), [OPT_OUT], POLICY)
    assert not decision.permitted
    assert decision.reasons[0].provision == "provision.provision[0]"


def test_a_category_limited_opt_in_discloses_that_category_alone() -> None:
    assert decide(BRCA1, treat(), [CANCER_ONLY], POLICY).permitted
    assert not decide(KCNQ1, treat(), [CANCER_ONLY], POLICY).permitted


# ---- time and status -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"period": {"start": "2024-01-01", "end": "2025-12-31"}},  # expired
        {"period": {"start": "2027-01-01"}},  # not yet valid
        {"status": "inactive"},  # revoked
        {"status": "rejected"},
    ],
    ids=["expired", "not-yet-valid", "revoked", "rejected"],
)
def test_a_consent_not_in_force_leaves_the_default(changes: dict[str, Any]) -> None:
    dormant = consent("dormant", provision("permit", SECONDARY_FINDINGS), **changes)
    decision = decide(BRCA1, treat(), [dormant], POLICY)
    assert not decision.permitted
    assert decision.reasons[0].rule == "policy.no_consent"


# ---- several consents ----------------------------------------------------------------------


def test_conflicting_consents_deny_by_default() -> None:
    later_opt_out = consent("later", provision("deny", SECONDARY_FINDINGS), when="2026-02-01")
    decision = decide(BRCA1, treat(), [OPT_IN, later_opt_out], POLICY)
    assert not decision.permitted
    assert decision.reasons[0].consent == "Consent/later"


def test_most_recent_lets_the_latest_consent_decide() -> None:
    policy = replace(POLICY, combining=Combining.MOST_RECENT)
    earlier_opt_out = consent("earlier", provision("deny", SECONDARY_FINDINGS), when="2024-02-01")
    later_opt_out = consent("later", provision("deny", SECONDARY_FINDINGS), when="2026-02-01")
    assert decide(BRCA1, treat(), [earlier_opt_out, OPT_IN], policy).permitted
    assert not decide(BRCA1, treat(), [OPT_IN, later_opt_out], policy).permitted


# ---- minors ----------------------------------------------------------------------------


def test_a_minor_gets_no_adult_onset_finding_without_a_guardian_permit() -> None:
    decision = decide(BRCA1, treat(birth_date=CHILD), [OPT_IN], POLICY)
    assert not decision.permitted
    assert decision.reasons[-1].rule == "minor"
    not_derived = decide(KCNQ1, treat(birth_date=CHILD), [OPT_IN], POLICY)
    assert not not_derived.permitted and "not derived" in not_derived.reasons[-1].text


def test_a_minor_gets_a_childhood_onset_finding() -> None:
    assert decide(RB1, treat(birth_date=CHILD), [OPT_IN], POLICY).permitted


def test_a_guardian_may_permit_adult_onset_findings_unless_the_policy_withholds_them() -> None:
    assert decide(BRCA1, treat(birth_date=CHILD), [GUARDIAN], POLICY).permitted
    strict = replace(POLICY, minors=replace(POLICY.minors, adult_onset=MinorOnset.WITHHOLD))
    assert not decide(BRCA1, treat(birth_date=CHILD), [GUARDIAN], strict).permitted


def test_eighteen_on_the_day_is_an_adult() -> None:
    birthday = date(NOW.year - 18, NOW.month, NOW.day)
    assert decide(BRCA1, treat(birth_date=birthday), [OPT_IN], POLICY).permitted
    day_after = date(NOW.year - 18, NOW.month, NOW.day + 1)
    assert not decide(BRCA1, treat(birth_date=day_after), [OPT_IN], POLICY).permitted


def test_a_secondary_finding_without_a_birth_date_is_an_error_not_a_permit() -> None:
    with pytest.raises(PolicyError, match="birth date") as caught:
        decide(BRCA1, treat(birth_date=None), [OPT_IN], POLICY)
    assert caught.value.field == "Patient.birthDate"


# ---- research, break-glass, actors ---------------------------------------------------------


def test_research_needs_a_consent_that_names_research() -> None:
    research = consent("research", provision("permit", purposes=("HRESCH",)), scope="research")
    assert decide(PRIMARY, treat(purpose="HRESCH"), [research], POLICY).permitted
    treatment_only = consent("treatment", provision("permit", purposes=("TREAT",)))
    decision = decide(PRIMARY, treat(purpose="HRESCH"), [treatment_only], POLICY)
    assert not decision.permitted


def test_break_glass_never_unlocks_a_secondary_finding() -> None:
    emergency = treat(purpose="ETREAT", break_glass=True)
    decision = decide(BRCA1, emergency, [OPT_IN], POLICY)
    assert not decision.permitted
    assert decision.reasons[-1].rule == "break-glass"
    assert decide(PRIMARY, emergency, [OPT_IN], POLICY).permitted


def test_an_unknown_recipient_meets_a_deny_for_an_actor_but_no_permit_for_one() -> None:
    lab = Reference("Organization/research-lab")
    actor = {
        "actor": [
            {
                "role": {"coding": [{"system": "x", "code": "IRCP"}]},
                "reference": {"reference": "Organization/research-lab"},
            }
        ]
    }
    only_lab = consent("only-lab", provision("permit", SECONDARY_FINDINGS, **actor))
    assert decide(BRCA1, treat(actor=lab), [only_lab], POLICY).permitted
    assert not decide(BRCA1, treat(actor=None), [only_lab], POLICY).permitted
    not_lab = consent("not-lab", provision("deny", **actor))
    assert not decide(PRIMARY, treat(actor=None), [not_lab], POLICY).permitted
    other = Reference("Organization/hospital")
    assert decide(PRIMARY, treat(actor=other), [not_lab], POLICY).permitted


# ---- primary or secondary ----------------------------------------------------------------


def _decisions(*alleles: CandidateAllele) -> dict[str, SecondaryFindingDecision]:
    return evaluate_secondary_findings(alleles, Sex.FEMALE)


def test_a_listed_gene_outside_the_indication_is_a_secondary_finding() -> None:
    brca1 = CandidateAllele("BRCA1", PATHOGENIC, Zygosity.HETEROZYGOUS, hgvs_p="p.Glu23ValfsTer17")
    found = item_of("BRCA1", frozenset({"MYH7", "TNNT2"}), _decisions(brca1))
    assert found is not None and found.secondary is Category.CANCER
    assert found.adult_onset is True


def test_a_listed_gene_in_the_indication_is_primary() -> None:
    brca1 = CandidateAllele("BRCA1", PATHOGENIC, Zygosity.HETEROZYGOUS)
    assert item_of("BRCA1", frozenset({"BRCA1", "BRCA2"}), _decisions(brca1)) == Item()


def test_genes_off_the_list_and_results_without_a_gene_are_primary() -> None:
    assert item_of("CFTR", frozenset({"MYH7"}), {}) == Item()
    assert item_of(None, frozenset(), {}) == Item()


def test_a_listed_allele_the_acmg_rule_does_not_report_is_never_disclosed() -> None:
    one_mutyh = CandidateAllele("MUTYH", PATHOGENIC, Zygosity.HETEROZYGOUS, hgvs_p="p.Tyr179Cys")
    assert item_of("MUTYH", frozenset({"MYH7"}), _decisions(one_mutyh)) is None


def test_the_convention_codes_are_those_of_the_shipped_code_system() -> None:
    """profiles/CodeSystem-genomic-disclosure.json is the convention's publication: the
    engine's codes, and nothing else, and a valid R4 CodeSystem."""
    from fhir.resources.R4B.codesystem import CodeSystem

    path = data_dir("profiles") / "CodeSystem-genomic-disclosure.json"
    system = CodeSystem.model_validate_json(path.read_text())
    assert system.url == DISCLOSURE

    def codes(concepts: Any) -> set[str]:
        return {c.code for c in concepts or ()} | {
            code for c in concepts or () for code in codes(c.concept)
        }

    engine = {SECONDARY_FINDINGS.code, ADULT_ONSET_IN_MINOR.code}
    engine |= {c.code for c in CATEGORY_CODES.values()}
    assert codes(system.concept) == engine | {"secondary-finding"}
    assert system.count == len(engine) + 1


def test_the_readme_r5_convention_permits_treatment_and_cancer_findings() -> None:
    """R5 negates each level: a base deny, then permits for treatment use and for cancer
    secondary findings (README, 'Consent and secondary-finding policy')."""
    r5 = consent_from_dict(
        {
            "resourceType": "Consent",
            "id": "r5-cancer",
            "status": "active",
            "subject": {"reference": "Patient/p1"},
            "date": "2025-03-01",
            "decision": "deny",
            "provision": [
                {"purpose": [purpose("TREAT")]},
                {"code": [{"coding": [code(CATEGORY_CODES[Category.CANCER])]}]},
            ],
        }
    )
    assert decide(PRIMARY, treat(), [r5], POLICY).permitted
    assert decide(BRCA1, treat(), [r5], POLICY).permitted
    assert not decide(KCNQ1, treat(), [r5], POLICY).permitted
    assert not decide(PRIMARY, treat(purpose="HOPERAT"), [r5], POLICY).permitted


def test_of_two_applying_siblings_the_deny_decides() -> None:
    both = consent(
        "both",
        provision("permit", SECONDARY_FINDINGS),
        provision("deny", CATEGORY_CODES[Category.CANCER]),
    )
    decision = decide(BRCA1, treat(), [both], POLICY)
    assert not decision.permitted
    assert decision.reasons[0].provision == "provision.provision[1]"
    assert decide(KCNQ1, treat(), [both], POLICY).permitted


def test_the_consent_profile_and_its_value_set_are_valid_r4_and_name_the_code_system() -> None:
    from fhir.resources.R4B.structuredefinition import StructureDefinition
    from fhir.resources.R4B.valueset import ValueSet

    profiles = data_dir("profiles")
    value_set = ValueSet.model_validate_json(
        (profiles / "ValueSet-genomic-disclosure.json").read_text()
    )
    assert value_set.compose is not None
    assert [i.system for i in value_set.compose.include] == [DISCLOSURE]
    profile = StructureDefinition.model_validate_json(
        (profiles / "StructureDefinition-genomic-consent.json").read_text()
    )
    assert profile.type == "Consent" and profile.fhirVersion == "4.0.1"
    assert profile.differential is not None
    bound = [e.binding.valueSet for e in profile.differential.element if e.binding is not None]
    assert bound == [value_set.url]


def test_a_deny_reads_denies_and_a_consent_without_id_is_not_named() -> None:
    """Regression: reasons read 'the consent's provision denys', and named 'Consent/None'."""
    decision = decide(BRCA1, treat(), [OPT_OUT], POLICY)
    assert decision.reasons[0].text == "the consent's provision denies"
    nameless = consent(None, base="deny")
    assert decide(PRIMARY, treat(), [nameless], POLICY).reasons[0].consent is None


# ---- properties over random consents ------------------------------------------------------

#: weighted towards what a secondary finding needs, so that permits of them are common
_CODES = [SECONDARY_FINDINGS] * 3 + [CATEGORY_CODES[Category.CANCER], ADULT_ONSET_IN_MINOR, None]
_PURPOSES = ["TREAT", "ETREAT", "HRESCH", "HOPERAT", "HMARKT"]


@st.composite
def _provision(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    codes = draw(st.lists(st.sampled_from(_CODES), max_size=2))
    purposes = draw(st.lists(st.sampled_from(_PURPOSES), max_size=1))
    children = [] if depth >= 2 else draw(st.lists(_provision(depth + 1), max_size=2))
    found = provision(draw(st.sampled_from(["permit", "deny"])), *filter(None, codes))
    if purposes:
        found["purpose"] = [purpose(p) for p in purposes]
    if children:
        found["provision"] = children
    return found


@st.composite
def _consent(draw: st.DrawFn, number: int) -> Consent:
    status = draw(st.sampled_from(["active", "active", "inactive"]))
    start = draw(st.sampled_from(["2020-01-01", "2027-01-01"]))
    nested = draw(st.lists(_provision(), max_size=3))
    base = draw(st.sampled_from(["permit", "deny"]))
    return consent(f"c{number}", *nested, base=base, status=status, period={"start": start})


@settings(max_examples=400, deadline=None)
@given(
    consents=st.tuples(
        st.integers(0, 3).flatmap(lambda n: st.tuples(*(_consent(i) for i in range(n)))),
        st.lists(st.sampled_from([OPT_IN, OPT_OUT, CANCER_ONLY, GUARDIAN]), max_size=2),
    ).map(lambda found: (*found[0], *found[1])),
    item=st.sampled_from([PRIMARY, BRCA1, KCNQ1, RB1]),
    purpose_=st.sampled_from([*_PURPOSES, None]),
    born=st.sampled_from([ADULT, CHILD]),
    break_glass=st.booleans(),
)
def test_no_rule_is_ever_bypassed(
    consents: tuple[Consent, ...],
    item: Item,
    purpose_: str | None,
    born: date,
    break_glass: bool,
) -> None:
    """Random consents, with some of the scenarios' own among them: whatever they say, a
    permit never comes without the explicit provision each rule needs."""
    request = Request(purpose_, NOW, born, break_glass=break_glass)
    decision = decide(item, request, consents, POLICY)
    assert decision.reasons
    named = {r.consent for r in decision.reasons if r.consent is not None}
    assert named <= {f"Consent/{c.id}" for c in consents}
    if not decision.permitted:
        return
    assert purpose_ is not None and purpose_ not in POLICY.never
    in_force = [c for c in consents if c.in_force(NOW)]
    if purpose_ in POLICY.research:
        assert any(_purposes_below(c, purpose_) for c in in_force)
    if item.secondary is not None:
        assert not break_glass
        deciding = _deciding(decision, consents)
        assert {SECONDARY_FINDINGS, CATEGORY_CODES[item.secondary]} & set(deciding.codes)
        if born == CHILD and item.adult_onset is not False:
            assert ADULT_ONSET_IN_MINOR in deciding.codes


def _deciding(decision: Any, consents: tuple[Consent, ...]) -> Any:
    """The provision a permit names in its first reason, found by its path."""
    reason = decision.reasons[0]
    found = next(c for c in consents if f"Consent/{c.id}" == reason.consent)
    node = found.provision
    for index in re.findall(r"\[(\d+)\]", reason.provision or ""):
        node = node.provisions[int(index)]
    return node


def _purposes_below(consent: Consent, purpose_: str) -> bool:
    def walk(node: Any) -> bool:
        mine = any(p.code == purpose_ for p in node.purposes) and node.type is ProvisionType.PERMIT
        return mine or any(walk(child) for child in node.provisions)

    return walk(consent.provision)


def test_regression_a_provision_scoped_by_the_gdis_label_applies_to_genomic_results() -> None:
    """Every genomic result carries R and GDIS, a secondary finding its own label too; a
    provision naming one of them applies. The engine once matched a provision's security
    labels against the secondary-finding codes alone, so a research permit scoped to GDIS
    never applied."""
    gdis = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "GDIS"}
    research = provision("permit", purposes=("HRESCH",), securityLabel=[gdis])
    assert decide(PRIMARY, treat(purpose="HRESCH"), [consent("r", research)], POLICY).permitted
    sf_label = {"system": DISCLOSURE, "code": "secondary-finding"}
    opt_out = consent("o", provision("deny", securityLabel=[sf_label]))
    assert decide(PRIMARY, treat(), [opt_out], POLICY).permitted
    assert not decide(BRCA1, treat(), [opt_out, OPT_IN], POLICY).permitted


def test_research_may_be_permitted_by_a_ga4gh_duo_code() -> None:
    """General research use (DUO:0000042) as a provision's purpose is consent to research;
    disease-specific research (DUO:0000007) is not, since the study's disease is not known."""

    def permit(system: str, code: str) -> Consent:
        return consent(code, provision("permit", purpose=[{"system": system, "code": code}]))

    research, duo = treat(purpose="HRESCH"), POLICY.duo_system
    assert decide(PRIMARY, research, [permit(duo, "DUO:0000042")], POLICY).permitted
    assert not decide(PRIMARY, research, [permit(duo, "DUO:0000007")], POLICY).permitted
    elsewhere = permit("http://example.org/duo", "DUO:0000042")
    assert not decide(PRIMARY, research, [elsewhere], POLICY).permitted
