"""The ACMG SF v3.3 table in mappings/ and the evaluator of its reporting rules.

Variants are real and named as published: BRCA1 c.68_69del (185delAG, ClinVar RCV000056295);
BRCA2 c.426-12_426-8del (a VUS in ClinVar); MUTYH p.Tyr179Cys and p.Gly396Asp on
NM_001128425 (ClinVar RCV000115766; p.Gly368Asp/p.Tyr151Cys on MANE NM_001048174.2); HFE
p.Cys282Tyr c.845G>A and p.His63Asp c.187C>G; TTN c.41483del p.Pro13828GlnfsTer6
(NM_001267550.2, LP in ClinVar); the HMERF founder TTN p.Cys30071Arg (published numbering);
KCNQ1 p.Ala341Val c.1022C>T; GLA p.Asn215Ser c.644A>G; ABCD1 c.1415_1416del; CFTR
p.Phe508del; PCSK9 p.Tyr142Ter c.426C>G; APOB p.Arg3527Gln c.10580G>A; SMAD4 p.Ile500Val
c.1498A>G (Myhre syndrome); CALM1 p.Asn98Ser c.293A>G. The tiers are each test's premise.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.errors import PolicyError
from adapter.model import ClinicalSignificance, Sex, Zygosity
from adapter.phasing import Relation
from adapter.policy.secondary import (
    COLUMNS,
    CandidateAllele,
    Category,
    ReportingRule,
    SecondaryFindingDecision,
    Verified,
    acmg_sf_list,
    evaluate_secondary_findings,
)

P = ClinicalSignificance.PATHOGENIC
LP = ClinicalSignificance.LIKELY_PATHOGENIC
VUS = ClinicalSignificance.UNCERTAIN_SIGNIFICANCE
HET, HOM, HEMI = Zygosity.HETEROZYGOUS, Zygosity.HOMOZYGOUS, Zygosity.HEMIZYGOUS
SHARED = Path(__file__).resolve().parents[2] / "shared" / "acmg_sf_v3.3.csv"


def decide(sex: Sex, *alleles: CandidateAllele) -> SecondaryFindingDecision:
    """The one decision the alleles (all of one listed gene) make."""
    (decision,) = evaluate_secondary_findings(alleles, sex).values()
    return decision


def mutyh(hgvs_p: str, zygosity: Zygosity = HET, phase: Relation | None = None) -> CandidateAllele:
    hgvs_c = {"p.Tyr179Cys": "NM_001128425.2:c.536A>G", "p.Gly396Asp": "c.1187G>A"}[hgvs_p]
    return CandidateAllele("MUTYH", P, zygosity, hgvs_c, hgvs_p, ("missense_variant",), phase)


def hfe(hgvs_p: str, zygosity: Zygosity) -> CandidateAllele:
    return CandidateAllele("HFE", P, zygosity, hgvs_p=hgvs_p, consequences=("missense_variant",))


ABCD1 = CandidateAllele("ABCD1", P, HEMI, "c.1415_1416del", consequences=("frameshift_variant",))
GLA = CandidateAllele("GLA", P, HEMI, "c.644A>G", "p.Asn215Ser", ("missense_variant",))


# ---- the table ----------------------------------------------------------------------------


def test_the_table_is_acmg_sf_v3_3_with_84_genes_each_with_an_hgnc_id() -> None:
    table = acmg_sf_list()
    assert table.version == "3.3"
    assert len(table.genes) == 84
    assert all(g.hgnc_id.startswith("HGNC:") for g in table.genes.values())
    assert table.genes["BRCA1"].hgnc_id == "HGNC:1100"
    assert acmg_sf_list() is table  # read once


def test_every_rule_code_is_known_and_each_is_used() -> None:
    rules = [g.rule for g in acmg_sf_list().genes.values()]
    assert set(rules) == set(ReportingRule)
    assert rules.count(ReportingRule.PLP_ANY) == 71
    by_rule = {r: {g.gene for g in acmg_sf_list().genes.values() if g.rule is r} for r in rules}
    assert by_rule[ReportingRule.XL_HEMI_HET_HOM] == {"GLA", "OTC"}
    assert by_rule[ReportingRule.XL_HEMI_OR_BIALLELIC_FEMALE] == {"ABCD1"}
    assert by_rule[ReportingRule.HFE_C282Y_HOMOZYGOUS_ONLY] == {"HFE"}
    assert by_rule[ReportingRule.PLP_TRUNCATING_ONLY] == {"TTN"}


def test_categories_are_our_four_with_the_source_choices_noted() -> None:
    genes = acmg_sf_list().genes
    assert {g.category for g in genes.values()} == set(Category)
    assert genes["GLA"].category is Category.METABOLIC
    assert genes["PRKAG2"].category is Category.CARDIOVASCULAR
    assert genes["SMAD4"].category is Category.CANCER
    assert "Cardiovascular Metabolic" in genes["GLA"].source_note


def test_unverified_and_partly_verified_rows_stay_marked() -> None:
    genes = acmg_sf_list().genes.values()
    assert {g.gene for g in genes if g.verified is Verified.NO} == {"ABCD1", "CYP27A1", "PLN"}
    assert {g.gene for g in genes if g.verified is Verified.PARTLY} == {"CALM1", "CALM2", "CALM3"}
    for g in genes:
        if g.verified is Verified.NO:
            assert "UNVERIFIED" in g.source_note
        if g.verified is Verified.PARTLY:
            assert "PARTLY VERIFIED" in g.source_note


def test_every_adult_onset_value_is_marked_as_derived_by_us() -> None:
    genes = acmg_sf_list().genes
    derived = [g for g in genes.values() if g.adult_onset is not None]
    assert derived
    assert all("adult_onset derived (ours, not ACMG's)" in g.source_note for g in derived)
    assert genes["BRCA1"].adult_onset is True
    assert genes["BRCA2"].adult_onset is True
    assert genes["RB1"].adult_onset is False
    assert genes["LDLR"].adult_onset is False
    assert genes["MYH7"].adult_onset is None


def test_mondo_ids_are_kept_only_where_the_source_gives_them() -> None:
    genes = acmg_sf_list().genes
    assert genes["CALM1"].mondo == ("MONDO:0002442", "MONDO:0017990")
    assert genes["ABCD1"].mondo == ("MONDO:0018544",)
    assert {g.gene for g in genes.values() if g.mondo} == {
        "ABCD1",
        "CALM1",
        "CALM2",
        "CALM3",
        "CYP27A1",
        "PLN",
    }


@pytest.mark.skipif(not SHARED.exists(), reason="the compiled source is not beside the project")
def test_the_table_keeps_the_compiled_source_gene_by_gene() -> None:
    with SHARED.open(encoding="utf-8", newline="") as f:
        source = {r["gene"]: r for r in csv.DictReader(f)}
    genes = acmg_sf_list().genes
    assert set(genes) == set(source)
    for name, g in genes.items():
        row = source[name]
        assert (g.hgnc_id, g.sf_version_added) == (row["hgnc_id"], row["sf_version_added"])
        assert (g.rule, g.variant_restriction) == (
            row["rule_code"].lower(),
            row["variant_restriction"],
        )


# ---- a bad table --------------------------------------------------------------------------

GOOD_ROW = "ACTA2,HGNC:130,Familial thoracic aortic aneurysm,,cardiovascular,AD,plp_any,,,1.0,yes,n"


def table_file(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "acmg.csv"
    path.write_text("# a comment\n# version: 3.3\n" + ",".join(COLUMNS) + "\n" + "\n".join(rows))
    return path


@pytest.mark.parametrize(
    ("bad_row", "column"),
    [
        (GOOD_ROW.replace("plp_any", "plp_sometimes"), "rule"),
        (GOOD_ROW.replace("cardiovascular", "renal"), "category"),
        (GOOD_ROW.replace("HGNC:130", ""), "hgnc_id"),
        (GOOD_ROW.replace(",yes,", ",maybe,"), "verified"),
    ],
)
def test_a_bad_row_is_a_policy_error_naming_file_line_and_column(
    tmp_path: Path, bad_row: str, column: str
) -> None:
    path = table_file(tmp_path, GOOD_ROW.replace("ACTA2", "ACTC1"), bad_row)
    with pytest.raises(PolicyError) as raised:
        acmg_sf_list(path)
    assert (raised.value.source, raised.value.line, raised.value.field) == (str(path), 5, column)
    assert f"{path}:5" in str(raised.value)


def test_an_unknown_rule_code_names_the_codes_to_use(tmp_path: Path) -> None:
    path = table_file(tmp_path, GOOD_ROW.replace("plp_any", "PLP_ALWAYS"))
    with pytest.raises(PolicyError, match="unknown rule 'PLP_ALWAYS'; use one of: plp_any"):
        acmg_sf_list(path)


def test_a_gene_listed_twice_names_the_second_line(tmp_path: Path) -> None:
    path = table_file(tmp_path, GOOD_ROW, GOOD_ROW)
    with pytest.raises(
        PolicyError, match=re.escape("ACTA2 is listed again (first on line 4)")
    ) as raised:
        acmg_sf_list(path)
    assert (raised.value.line, raised.value.field) == (5, "gene")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("# version: 3.3\ngene,hgnc_id\n", 2, "the header must be"),
        ("gene," + ",".join(COLUMNS[1:]) + "\n" + GOOD_ROW + "\n", None, "no '# version:"),
        ("# version: 3.3\n" + ",".join(COLUMNS) + "\nACTA2,HGNC:130\n", 3, "2 fields"),
    ],
)
def test_a_malformed_table_is_refused(
    tmp_path: Path, text: str, line: int | None, message: str
) -> None:
    path = tmp_path / "acmg.csv"
    path.write_text(text)
    with pytest.raises(PolicyError, match=message) as raised:
        acmg_sf_list(path)
    assert raised.value.line == line


def test_a_missing_table_is_a_policy_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the ACMG") as raised:
        acmg_sf_list(tmp_path / "absent.csv")
    assert raised.value.source == str(tmp_path / "absent.csv")


# ---- plp_any ------------------------------------------------------------------------------


def test_brca1_frameshift_heterozygous_pathogenic_is_reported() -> None:
    allele = CandidateAllele(
        "BRCA1",
        P,
        HET,
        "NM_007294.4:c.68_69del",
        "NP_009225.1:p.Glu23ValfsTer17",
        ("frameshift_variant",),
    )
    decision = decide(Sex.FEMALE, allele)
    assert decision.reportable
    assert decision.rule is ReportingRule.PLP_ANY
    assert decision.reason == "BRCA1: p.Glu23ValfsTer17 heterozygous"
    assert decision.alleles == (allele,)
    assert decision.listing.adult_onset is True


def test_a_brca2_vus_is_not_reported() -> None:
    vus = CandidateAllele("BRCA2", VUS, HET, "NM_000059.4:c.426-12_426-8del")
    decision = decide(Sex.FEMALE, vus)
    assert not decision.reportable
    assert decision.reason.startswith(
        "BRCA2: no P/LP allele (c.426-12_426-8del: Uncertain significance)"
    )


def test_kcnq1_heterozygous_pathogenic_missense_is_reported() -> None:
    allele = CandidateAllele("KCNQ1", P, HET, "c.1022C>T", "p.Ala341Val", ("missense_variant",))
    decision = decide(Sex.MALE, allele)
    assert decision.reportable
    assert decision.rule is ReportingRule.PLP_ANY
    assert decision.reason == "KCNQ1: p.Ala341Val heterozygous"


@given(
    genes=st.lists(st.sampled_from(sorted(acmg_sf_list().genes)), min_size=1, max_size=4),
    tier=st.sampled_from([VUS, ClinicalSignificance.LIKELY_BENIGN, ClinicalSignificance.BENIGN]),
    zygosity=st.sampled_from([HET, HOM, HEMI]),
    sex=st.sampled_from(list(Sex)),
)
def test_vus_likely_benign_and_benign_are_never_reported(
    genes: list[str], tier: ClinicalSignificance, zygosity: Zygosity, sex: Sex
) -> None:
    candidates = [
        CandidateAllele(g, tier, zygosity, f"c.{i + 1}A>G", consequences=("stop_gained",))
        for i, g in enumerate(genes)
    ]
    decisions = evaluate_secondary_findings(candidates, sex)
    assert set(decisions) == set(genes)
    assert not any(d.reportable for d in decisions.values())


def test_a_gene_off_the_list_gets_no_decision() -> None:
    cftr = CandidateAllele("CFTR", P, HOM, "c.1521_1523del", "p.Phe508del", ("inframe_deletion",))
    assert evaluate_secondary_findings([cftr], Sex.FEMALE) == {}


def test_decisions_are_per_listed_gene_in_symbol_order() -> None:
    kcnq1 = CandidateAllele("KCNQ1", P, HET, "c.1022C>T", "p.Ala341Val")
    brca2 = CandidateAllele("BRCA2", VUS, HET, "c.426-12_426-8del")
    cftr = CandidateAllele("CFTR", P, HOM, "c.1521_1523del")
    assert list(evaluate_secondary_findings([kcnq1, cftr, brca2], Sex.MALE)) == ["BRCA2", "KCNQ1"]


# ---- plp_biallelic ------------------------------------------------------------------------


def test_mutyh_two_heterozygous_alleles_in_trans_are_reported() -> None:
    decision = decide(
        Sex.FEMALE, mutyh("p.Tyr179Cys", phase="Trans"), mutyh("p.Gly396Asp", phase="Trans")
    )
    assert decision.reportable
    assert decision.rule is ReportingRule.PLP_BIALLELIC
    assert decision.reason == "MUTYH: p.Tyr179Cys and p.Gly396Asp heterozygous, in trans"


def test_mutyh_two_heterozygous_alleles_of_unknown_phase_are_reported_saying_so() -> None:
    decision = decide(Sex.FEMALE, mutyh("p.Tyr179Cys"), mutyh("p.Gly396Asp"))
    assert decision.reportable
    assert "p.Tyr179Cys and p.Gly396Asp heterozygous, phase unknown" in decision.reason


def test_mutyh_two_alleles_in_cis_are_not_reported() -> None:
    decision = decide(
        Sex.MALE, mutyh("p.Tyr179Cys", phase="Cis"), mutyh("p.Gly396Asp", phase="Cis")
    )
    assert not decision.reportable
    assert "in cis" in decision.reason


def test_mutyh_a_single_heterozygous_allele_is_not_reported() -> None:
    decision = decide(Sex.FEMALE, mutyh("p.Tyr179Cys"))
    assert not decision.reportable
    assert decision.reason == (
        "MUTYH: one heterozygous P/LP allele (p.Tyr179Cys); the recessive rule needs two"
    )


def test_mutyh_a_homozygous_allele_is_reported() -> None:
    decision = decide(Sex.MALE, mutyh("p.Gly396Asp", HOM))
    assert decision.reportable
    assert decision.reason == "MUTYH: p.Gly396Asp homozygous"


def test_a_vus_beside_one_pathogenic_allele_does_not_make_it_biallelic() -> None:
    vus = CandidateAllele("MUTYH", VUS, HET, "c.1000C>G", "p.Pro334Ala")
    assert not decide(Sex.FEMALE, mutyh("p.Tyr179Cys"), vus).reportable


def test_alleles_stated_both_in_cis_and_in_trans_are_refused() -> None:
    with pytest.raises(PolicyError, match="both in cis and in trans") as raised:
        decide(Sex.FEMALE, mutyh("p.Tyr179Cys", phase="Cis"), mutyh("p.Gly396Asp", phase="Trans"))
    assert raised.value.field == "phase"


def test_the_same_allele_given_twice_is_refused_not_counted_as_two() -> None:
    with pytest.raises(PolicyError, match="the same allele is given twice"):
        decide(Sex.FEMALE, mutyh("p.Tyr179Cys"), mutyh("p.Tyr179Cys"))


def test_a_mitochondrial_zygosity_on_a_listed_gene_is_refused() -> None:
    allele = CandidateAllele("BRCA1", P, Zygosity.HETEROPLASMIC, "c.68_69del")
    with pytest.raises(PolicyError, match="mitochondrial zygosity") as raised:
        decide(Sex.FEMALE, allele)
    assert raised.value.field == "zygosity"


# ---- HFE ----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["p.Cys282Tyr", "p.C282Y", "NP_000401.1:p.(Cys282Tyr)"])
def test_hfe_c282y_homozygous_is_reported_in_any_hgvs_form(form: str) -> None:
    decision = decide(Sex.MALE, hfe(form, HOM))
    assert decision.reportable
    assert decision.rule is ReportingRule.HFE_C282Y_HOMOZYGOUS_ONLY
    assert decision.reason == "HFE: p.Cys282Tyr homozygous"


def test_hfe_c282y_heterozygous_is_not_reported() -> None:
    decision = decide(Sex.MALE, hfe("p.C282Y", HET))
    assert not decision.reportable
    assert decision.reason == (
        "HFE: p.Cys282Tyr heterozygous; only homozygous p.Cys282Tyr is reported"
    )


def test_hfe_h63d_homozygous_is_not_reported() -> None:
    decision = decide(Sex.FEMALE, hfe("p.His63Asp", HOM))
    assert not decision.reportable
    assert decision.reason.startswith("HFE: p.His63Asp homozygous; only homozygous p.Cys282Tyr")


def test_hfe_c282y_with_h63d_compound_heterozygote_is_not_reported() -> None:
    decision = decide(Sex.FEMALE, hfe("p.Cys282Tyr", HET), hfe("p.H63D", HET))
    assert not decision.reportable


# ---- TTN ----------------------------------------------------------------------------------


def test_ttn_truncating_frameshift_likely_pathogenic_is_reported() -> None:
    allele = CandidateAllele(
        "TTN", LP, HET, "NM_001267550.2:c.41483del", "p.Pro13828GlnfsTer6", ("frameshift_variant",)
    )
    decision = decide(Sex.MALE, allele)
    assert decision.reportable
    assert decision.rule is ReportingRule.PLP_TRUNCATING_ONLY
    assert decision.reason == "TTN: p.Pro13828GlnfsTer6 heterozygous, truncating"


def test_ttn_missense_likely_pathogenic_is_not_reported() -> None:
    allele = CandidateAllele(
        "TTN", LP, HET, hgvs_p="p.Cys30071Arg", consequences=("missense_variant",)
    )
    decision = decide(Sex.MALE, allele)
    assert not decision.reportable
    assert "not truncating; only truncating variants are reported" in decision.reason


# ---- X-linked -----------------------------------------------------------------------------


def test_gla_hemizygous_male_and_heterozygous_female_are_both_reported() -> None:
    male = decide(Sex.MALE, GLA)
    female = decide(Sex.FEMALE, CandidateAllele("GLA", P, HET, "c.644A>G", "p.Asn215Ser"))
    assert male.rule is female.rule is ReportingRule.XL_HEMI_HET_HOM
    assert (male.reportable, female.reportable) == (True, True)
    assert male.reason == "GLA: in a male, p.Asn215Ser hemizygous"
    assert female.reason == "GLA: in a female, p.Asn215Ser heterozygous"


def test_abcd1_hemizygous_male_is_reported_with_the_unverified_mark() -> None:
    decision = decide(Sex.MALE, ABCD1)
    assert decision.reportable
    assert decision.rule is ReportingRule.XL_HEMI_OR_BIALLELIC_FEMALE
    assert decision.reason == (
        "ABCD1: in a male, c.1415_1416del hemizygous "
        "[list row not verified against the ACMG publication]"
    )


def test_abcd1_single_heterozygous_female_is_not_reported() -> None:
    decision = decide(Sex.FEMALE, CandidateAllele("ABCD1", P, HET, "c.1415_1416del"))
    assert not decision.reportable
    assert "in a female, one heterozygous P/LP allele (c.1415_1416del)" in decision.reason


def test_abcd1_single_heterozygous_allele_of_unknown_sex_is_not_reported() -> None:
    decision = decide(Sex.UNKNOWN, CandidateAllele("ABCD1", P, HET, "c.1415_1416del"))
    assert not decision.reportable
    assert decision.reason.startswith("ABCD1: sex unknown, one heterozygous P/LP allele")


def test_abcd1_biallelic_female_is_reported() -> None:
    other = CandidateAllele("ABCD1", LP, HET, "c.1661G>A", phase="Trans")
    first = CandidateAllele("ABCD1", P, HET, "c.1415_1416del", phase="Trans")
    decision = decide(Sex.FEMALE, first, other)
    assert decision.reportable
    assert (
        "ABCD1: in a female, c.1415_1416del and c.1661G>A heterozygous, in trans" in decision.reason
    )


def test_a_partly_verified_row_says_so_in_its_reason() -> None:
    calm1 = CandidateAllele("CALM1", P, HET, "c.293A>G", "p.Asn98Ser", ("missense_variant",))
    assert decide(Sex.FEMALE, calm1).reason.endswith(
        "[list row only partly verified against the ACMG publication]"
    )


# ---- enforced variant restrictions --------------------------------------------------------


def test_a_truncating_pcsk9_allele_is_not_reported_as_familial_hypercholesterolemia() -> None:
    allele = CandidateAllele(
        "PCSK9", P, HET, "NM_174936.3:c.426C>G", "p.Tyr142Ter", ("stop_gained",)
    )
    decision = decide(Sex.FEMALE, allele)
    assert not decision.reportable
    assert (
        decision.reason
        == "PCSK9: p.Tyr142Ter is truncating; ACMG reports gain-of-function variants only"
    )


def test_apob_is_reported_for_a_missense_allele_only() -> None:
    missense = CandidateAllele("APOB", P, HET, "c.10580G>A", "p.Arg3527Gln", ("missense_variant",))
    unannotated = CandidateAllele("APOB", P, HET, "c.10580G>A", "p.Arg3527Gln")
    assert decide(Sex.MALE, missense).reportable
    assert not decide(Sex.MALE, unannotated).reportable


def test_a_smad4_myhre_syndrome_variant_is_not_reported() -> None:
    allele = CandidateAllele("SMAD4", P, HET, "c.1498A>G", "p.I500V", ("missense_variant",))
    decision = decide(Sex.MALE, allele)
    assert not decision.reportable
    assert decision.reason == (
        "SMAD4: p.Ile500Val is a Myhre syndrome variant, which ACMG excludes"
    )
