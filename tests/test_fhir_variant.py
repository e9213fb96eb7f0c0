"""Variant Observations built from hand-made calls: components, codes, structure.

The helpers at the top are shared with the report and writer tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import given
from hypothesis import strategies as st

from adapter._native import sha1
from adapter.assembly import accession
from adapter.fhir.codes import slices
from adapter.fhir.identifiers import IdFactory
from adapter.fhir.variant import VariantBuilder
from adapter.model import (
    AnalysisContext,
    GenomeBuild,
    GenomicSourceClass,
    PatientRef,
    Sex,
    StructuralVariant,
    SvType,
    VariantCall,
    Zygosity,
)

LOINC = "http://loinc.org"
ISSUED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def context(**changes: Any) -> AnalysisContext:
    """A GRCh38 germline context for Patient/p1; keyword arguments replace fields."""
    ctx = AnalysisContext(
        patient=PatientRef(id="p1"),
        build=GenomeBuild.GRCH38,
        sample="NA12878",
        issued=ISSUED,
        input_name="sample.vcf.gz",
        report_key="test-report",
    )
    return dataclasses.replace(ctx, **changes)


def snv(**changes: Any) -> VariantCall:
    """A heterozygous SNV on chr1 with rsID, depth and allele frequency."""
    call = VariantCall(
        chrom="chr1", chromosome="1", pos=12345, ref="A", alt="G", alt_index=1,
        genotype="0/1", zygosity=Zygosity.HETEROZYGOUS, record_id="rs123",
        allele_depth=12, total_depth=30, allele_frequency=0.4,
    )  # fmt: skip
    return dataclasses.replace(call, **changes)


def sv_call(sv: StructuralVariant, **changes: Any) -> VariantCall:
    """A symbolic structural variant call at chr1:1000."""
    call = VariantCall(
        chrom="chr1", chromosome="1", pos=1000, ref="N", alt=f"<{sv.sv_type.value}>",
        alt_index=1, genotype="0/1", zygosity=Zygosity.HETEROZYGOUS, structural=sv,
    )  # fmt: skip
    return dataclasses.replace(call, **changes)


def parse(resource: dict[str, Any]) -> Any:
    """The resource parsed by the fhir.resources R4B models: a structural check."""
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def components(obs: dict[str, Any]) -> dict[str, list[Any]]:
    """Component values by code, in order."""
    found: dict[str, list[Any]] = {}
    for comp in obs["component"]:
        value = next(v for k, v in comp.items() if k.startswith("value"))
        found.setdefault(comp["code"]["coding"][0]["code"], []).append(value)
    return found


def coded(value: dict[str, Any]) -> tuple[str, str]:
    """(system, code) of a CodeableConcept's first coding."""
    return value["coding"][0]["system"], value["coding"][0]["code"]


def build(call: VariantCall, ctx: AnalysisContext | None = None) -> dict[str, Any]:
    obs = VariantBuilder(ctx or context(), accession).build(call)
    parse(obs)
    return obs


def test_snv_has_every_component_the_data_supports() -> None:
    obs = build(snv())
    c = components(obs)
    assert coded(c["62374-4"][0]) == (LOINC, "LA26806-2")
    assert coded(c["48000-4"][0]) == (LOINC, "LA21254-0")
    assert coded(c["48013-7"][0]) == ("http://www.ncbi.nlm.nih.gov/refseq", "NC_000001.11")
    assert coded(c["92822-6"][0]) == (LOINC, "LA30102-0")
    assert c["81254-5"] == [{"low": {"value": 12345}, "high": {"value": 12345}}]
    assert (c["69547-8"], c["69551-0"]) == (["A"], ["G"])
    assert coded(c["81290-9"][0]) == ("http://varnomen.hgvs.org", "NC_000001.11:g.12345A>G")
    assert [coded(v) for v in c["81252-9"]] == [
        ("https://api.ncbi.nlm.nih.gov/variation/v0/", "NC_000001.11:12344:A:G"),
        ("http://www.ncbi.nlm.nih.gov/projects/SNP", "rs123"),
    ]
    assert coded(c["48019-4"][0]) == ("http://www.sequenceontology.org", "SO:0001483")
    assert coded(c["48002-0"][0]) == (LOINC, "LA6683-2")
    assert coded(c["53034-5"][0]) == (LOINC, "LA6706-1")
    unit = {"system": "http://unitsofmeasure.org", "code": "1"}
    assert c["81258-6"] == [{"value": 0.4, **unit}]
    assert c["82121-5"] == [{"value": 12, **unit}]
    assert "note" not in obs


def test_snv_resource_elements() -> None:
    ctx = context(specimen_id="s1", performer="Organization/lab", file_date="20240215")
    obs = build(snv(), ctx)
    rid = obs["id"]
    assert obs["meta"] == {
        "profile": ["http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant"]
    }
    assert obs["identifier"] == [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{rid}"}]
    assert uuid.UUID(rid).version == 5
    assert obs["status"] == "final"
    assert [coded(c) for c in obs["category"]] == [
        ("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory"),
        ("http://terminology.hl7.org/CodeSystem/v2-0074", "GE"),
    ]
    assert coded(obs["code"]) == (LOINC, "69548-6")
    assert coded(obs["valueCodeableConcept"]) == (LOINC, "LA9633-4")
    assert coded(obs["method"]) == (LOINC, "LA26398-0")
    assert obs["subject"] == {"reference": "Patient/p1"}
    assert obs["specimen"] == {"reference": "Specimen/s1"}
    assert obs["performer"] == [{"reference": "Organization/lab"}]
    assert (obs["effectiveDateTime"], obs["issued"]) == ("2024-02-15", "2024-03-01T12:00:00+00:00")


def test_patient_and_specimen_by_identifier_are_logical_references() -> None:
    ctx = context(
        patient=PatientRef(identifier_system="http://mrn", identifier_value="42"),
        specimen_identifier=("http://lab/specimens", "S-9"),
    )
    obs = build(snv(), ctx)
    assert obs["subject"] == {
        "type": "Patient",
        "identifier": {"system": "http://mrn", "value": "42"},
    }
    assert obs["specimen"]["identifier"] == {"system": "http://lab/specimens", "value": "S-9"}


def test_deletion_keeps_vcf_alleles_and_span() -> None:
    c = components(build(snv(pos=117559590, ref="ATCT", alt="A", record_id=None)))
    assert c["81254-5"] == [{"low": {"value": 117559590}, "high": {"value": 117559593}}]
    assert (c["69547-8"], c["69551-0"]) == (["ATCT"], ["A"])
    assert coded(c["81290-9"][0])[1] == "NC_000001.11:g.117559591_117559593del"
    assert [coded(v)[1] for v in c["81252-9"]] == ["NC_000001.11:117559590:TCT:"]
    assert coded(c["48019-4"][0])[1] == "SO:0000159"


def test_insertion_is_an_insertion() -> None:
    c = components(build(snv(ref="A", alt="ATG")))
    assert c["81254-5"] == [{"low": {"value": 12345}, "high": {"value": 12345}}]
    assert coded(c["81290-9"][0])[1] == "NC_000001.11:g.12345_12346insTG"
    assert coded(c["48019-4"][0])[1] == "SO:0000667"


def test_each_allele_of_a_multiallelic_record_is_its_own_variant() -> None:
    builder = VariantBuilder(context(), accession)
    first = builder.build(snv(ref="ACGT", alt="A", alt_index=1, genotype="1/2"))
    second = builder.build(snv(ref="ACGT", alt="ACT", alt_index=2, genotype="1/2"))
    assert first["id"] != second["id"]
    c = components(second)
    assert (c["69547-8"], c["69551-0"]) == (["ACGT"], ["ACT"])
    assert coded(c["81290-9"][0])[1] == "NC_000001.11:g.12347del"
    assert c["81254-5"] == [{"low": {"value": 12345}, "high": {"value": 12348}}]


def test_repeated_identical_call_gets_a_distinct_id() -> None:
    builder = VariantBuilder(context(), accession)
    ids = [builder.build(snv())["id"] for _ in range(3)]
    assert len(set(ids)) == 3
    assert VariantBuilder(context(), accession).build(snv())["id"] == ids[0]


@given(st.binary(max_size=300))
def test_sha1_of_the_ids_is_hashlibs(data: bytes) -> None:
    """Both SHA-1 block functions in C: the SHA extensions' where the processor has them, and
    the portable one every other machine runs."""
    expected = hashlib.sha1(data, usedforsecurity=False).digest()
    assert sha1(data, False) == expected
    assert sha1(data, True) == expected


def test_ids_are_uuid5_of_the_documented_name() -> None:
    ctx = context()
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, ctx.identifier_system)
    expected = uuid.uuid5(namespace, "test-report|variant|chr1|12345|A|G")
    assert IdFactory(ctx).variant(snv()) == (str(expected), expected.bytes)
    assert IdFactory(ctx).resource("report") == str(uuid.uuid5(namespace, "test-report|report"))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["chr1", "chrX", "1", "chrÜn"]),
            st.integers(1, 5),
            st.text("ACGTN", min_size=1, max_size=70),
            st.text("ACGT<>DEL", min_size=1, max_size=70),
            st.none() | st.integers(0, 2**40),
        ),
        max_size=12,
    )
)
def test_variant_ids_are_uuid5_of_their_names_repeats_numbered(
    calls: list[tuple[str, int, str, str, int | None]],
) -> None:
    """The C ids against uuid5 of the documented names, over long names (several SHA-1
    blocks), non-ASCII contigs, structural ends and repeats at one locus."""
    ctx = context()
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, ctx.identifier_system)
    ids = IdFactory(ctx)
    locus, seen = None, Counter[str]()
    for chrom, pos, ref, alt, end in calls:
        name = f"{chrom}|{pos}|{ref}|{alt}" + ("" if end is None else f"|{end}")
        if (chrom, pos) != locus:
            locus, seen = (chrom, pos), Counter()
        seen[name] += 1
        numbered = name if seen[name] == 1 else f"{name}|{seen[name]}"
        expected = uuid.uuid5(namespace, f"test-report|variant|{numbered}")
        assert ids.variants.variant(chrom, pos, ref, alt, end) == (str(expected), expected.bytes)


def test_cnv_with_copy_number() -> None:
    sv = StructuralVariant(SvType.CNV, end=5000, copy_number=3.0)
    obs = build(sv_call(sv, zygosity=None, genotype="./."))
    c = components(obs)
    assert c["81254-5"] == [{"low": {"value": 1001}, "high": {"value": 5000}}]
    assert c["82155-3"] == [{"value": 3.0, "system": "http://unitsofmeasure.org", "code": "1"}]
    assert coded(c["48019-4"][0])[1] == "SO:0001742"  # copy_number_gain on an autosome
    assert not {"69547-8", "69551-0", "81290-9", "81252-9", "53034-5"} & c.keys()


def test_imprecise_deletion_has_inner_and_outer_but_no_exact_range() -> None:
    sv = StructuralVariant(SvType.DEL, end=2000, ci_pos=(-10, 10), ci_end=(-20, 20))
    c = components(build(sv_call(sv)))
    assert "81254-5" not in c
    assert c["81301-4"] == [{"low": {"value": 991}, "high": {"value": 2020}}]
    assert c["81302-2"] == [{"low": {"value": 1011}, "high": {"value": 1980}}]
    assert coded(c["81290-9"][0])[1] == "NC_000001.11:g.(991_1011)_(1980_2020)del"
    assert coded(c["48019-4"][0])[1] == "SO:0000159"


def test_breakend_is_a_translocation_with_its_alt_in_a_note() -> None:
    sv = StructuralVariant(SvType.BND, end=1000, mate="N]chr2:321682]")
    obs = build(sv_call(sv, alt="N]chr2:321682]"))
    c = components(obs)
    assert coded(c["48019-4"][0])[1] == "SO:0000199"
    assert c["81254-5"] == [{"low": {"value": 1000}, "high": {"value": 1000}}]
    assert obs["note"] == [{"text": "VCF breakend ALT: N]chr2:321682]"}]


def test_mitochondrial_heteroplasmy_has_no_chromosome_code() -> None:
    call = snv(
        chrom="chrM", chromosome="M", pos=3243, ref="A", alt="G", genotype="1",
        zygosity=Zygosity.HETEROPLASMIC, allele_frequency=0.35, record_id=None,
    )  # fmt: skip
    c = components(build(call))
    assert "48000-4" not in c
    assert coded(c["48013-7"][0])[1] == "NC_012920.1"
    assert coded(c["53034-5"][0]) == (LOINC, "LA6703-8")


def test_chrx_hemizygous_in_a_male() -> None:
    call = snv(chrom="chrX", chromosome="X", genotype="1", zygosity=Zygosity.HEMIZYGOUS)
    c = components(build(call, context(sex=Sex.MALE)))
    assert coded(c["48000-4"][0]) == (LOINC, "LA21276-3")
    assert coded(c["48013-7"][0])[1] == "NC_000023.11"
    assert coded(c["53034-5"][0]) == (LOINC, "LA6707-9")


def test_filtered_variant_is_low_confidence_with_its_filters_noted() -> None:
    obs = build(snv(filters=("LowQual", "LowDP")))
    c = components(obs)
    variant_confidence = c["variant-confidence-status"][0]
    assert coded(variant_confidence) == (
        "http://terminology.hl7.org/CodeSystem/variant-confidence-status-cs",
        "low",
    )
    assert obs["note"] == [{"text": "VCF FILTER: LowQual;LowDP"}]
    assert "note" not in build(snv(filters=("PASS",)))


def test_somatic_and_mixed_source_class() -> None:
    somatic = components(build(snv(), context(source_class=GenomicSourceClass.SOMATIC)))
    assert coded(somatic["48002-0"][0]) == (LOINC, "LA6684-0")
    mixed = components(build(snv(), context(source_class=GenomicSourceClass.MIXED)))
    assert "48002-0" not in mixed


def test_grch37_codes() -> None:
    c = components(build(snv(), context(build=GenomeBuild.GRCH37)))
    assert coded(c["62374-4"][0]) == (LOINC, "LA14029-5")
    assert coded(c["48013-7"][0])[1] == "NC_000001.10"


def test_star_allele_states_only_its_reference() -> None:
    c = components(build(snv(ref="AT", alt="*", record_id=None)))
    assert c["81254-5"] == [{"low": {"value": 12345}, "high": {"value": 12346}}]
    assert c["69547-8"] == ["AT"]
    assert not {"69551-0", "81290-9", "81252-9", "48019-4"} & c.keys()


def test_gene_hook_adds_gene_studied() -> None:
    obs = VariantBuilder(context(), accession).build(snv(), genes=[("HGNC:1100", "BRCA1")])
    parse(obs)
    assert obs["component"][0] == {
        "code": {"coding": [{"system": LOINC, "code": "48018-6", "display": "Gene studied [ID]"}]},
        "valueCodeableConcept": {
            "coding": [
                {"system": "http://www.genenames.org", "code": "HGNC:1100", "display": "BRCA1"}
            ]
        },
    }


@pytest.mark.parametrize(
    "call",
    [
        snv(),
        snv(ref="ACGT", alt="A"),
        sv_call(StructuralVariant(SvType.CNV, end=5000, copy_number=1.0)),
        sv_call(StructuralVariant(SvType.DEL, end=2000, ci_pos=(-5, 5), ci_end=(-5, 5))),
    ],
)
def test_component_codes_and_value_types_follow_the_mapping_table(call: VariantCall) -> None:
    by_code = {(s.system, s.code): s for s in slices().values()}
    for comp in build(call)["component"]:
        coding = comp["code"]["coding"][0]
        expected = by_code[(coding["system"], coding["code"])]
        assert [k for k in comp if k.startswith("value")] == [expected.value_key]
        assert comp["code"] == expected.concept()


def test_shared_parts_are_not_copied_per_variant() -> None:
    builder = VariantBuilder(context(), accession)
    a, b = builder.build(snv()), builder.build(snv(pos=20000))
    assert a["category"] is b["category"]
    assert a["component"][0] is b["component"][0]
    assert orjson.loads(orjson.dumps(a)) == a
