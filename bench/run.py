"""Speed and memory of the VCF conversion, measured side by side in one run.

Generates a synthetic single-sample GRCh38 VCF (SNVs, indels, some multi-allelic records,
GT/AD/DP), then times, each in a fresh process so peak RSS is its own:

* raw cyvcf2 iteration reading GT, AD and DP (the floor nothing can beat),
* the adapter's typed reader alone,
* the full conversion to Bulk NDJSON with validation off, and on, in one process and in
  one worker process per core (the default for large inputs),
* the conversion of a file a quarter the size, to show memory stays flat,
* the conversion of the same kind of file annotated by VEP (three transcripts per ALT), in
  pairs with the unannotated one back to back, the median of their ratios reported,
* the disclosure policy's cost: each file converted with and without a policy and a Consent
  (treatment use, secondary findings permitted) in pairs back to back, the median of the
  ratios reported; about 0.4% of the annotated calls fall in ACMG-listed genes and are held,

and raw cyvcf2 again between each two, since each ratio is taken against the raw runs beside it.

Usage: python bench/run.py [--records N] [--only policy]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
CHROMS = [str(c) for c in range(1, 23)] + ["X"]
BASES = "ACGT"


def generate(path: Path, records: int, seed: int = 20261122, *, annotated: bool = False) -> None:
    """A deterministic synthetic VCF; positions ascend per chromosome. ``annotated``: each
    record carries a VEP CSQ of three transcripts per ALT (MANE Select, canonical, other)."""
    rng = random.Random(seed)
    per_chrom = records // len(CHROMS) + 1
    with path.open("w") as f:
        f.write("##fileformat=VCFv4.2\n##fileDate=20260115\n##source=bench-synthetic\n")
        f.write("##reference=GRCh38\n")
        for c in CHROMS:
            f.write(f"##contig=<ID=chr{c}>\n")
        f.write('##FILTER=<ID=PASS,Description="All filters passed">\n')
        f.write('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        f.write('##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">\n')
        f.write('##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">\n')
        if annotated:
            f.write(f'##VEP="v110"\n##INFO=<ID=CSQ,Number=.,Type=String,Description="{CSQ}">\n')
        f.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tSAMPLE1\n")
        written = 0
        for c in CHROMS:
            pos = 10_000
            for _ in range(per_chrom):
                if written == records:
                    return
                pos += rng.randint(20, 120)
                f.write(_record(rng, f"chr{c}", pos, annotated))
                written += 1


CSQ = (
    "Consequence annotations from Ensembl VEP. Format: Allele|Consequence|IMPACT|SYMBOL|Gene|"
    "Feature_type|Feature|BIOTYPE|HGVSc|HGVSp|CANONICAL|MANE_SELECT|PICK|HGNC_ID"
)


#: a gene of every 19,000 is one of the ACMG secondary-findings list's, as in a genome
ACMG_GENES = sorted(
    line.split(",")[0]
    for line in (HERE.parent / "mappings" / "acmg_secondary_findings.csv").read_text().splitlines()
    if line and not line.startswith(("#", "gene,"))
)


def _csq(rng: random.Random, ref: str, alts: list[str]) -> str:
    """Three transcripts per ALT, in VEP's allele form (an indel's shared first base
    dropped, ``-`` for nothing)."""
    indel = any(len(a) != len(ref) for a in alts) and all(a[0] == ref[0] for a in alts)
    gene = rng.randint(1, 19_000)
    symbol = ACMG_GENES[gene - 1] if gene <= len(ACMG_GENES) else f"GENE{gene}"
    entries = []
    for alt in alts:
        allele = (alt[1:] or "-") if indel else alt
        for k, flags in enumerate((f"YES|NM_{gene:06d}.1|1", "YES||", "||")):
            tx = f"ENST{gene:011d}.{k + 1}"
            entries.append(
                f"{allele}|missense_variant|MODERATE|{symbol}|ENSG{gene:011d}|Transcript|{tx}"
                f"|protein_coding|{tx}:c.{100 + k}A>G|ENSP{gene:011d}.{k + 1}:p.Lys{40 + k}Glu"
                f"|{flags}|HGNC:{gene}"
            )
    return "CSQ=" + ",".join(entries)


def _record(rng: random.Random, chrom: str, pos: int, annotated: bool = False) -> str:
    ref = rng.choice(BASES)
    kind = rng.random()
    if kind < 0.85:
        alts = [rng.choice([b for b in BASES if b != ref])]
    elif kind < 0.95:
        extra = "".join(rng.choice(BASES) for _ in range(rng.randint(1, 6)))
        alts = [ref + extra] if rng.random() < 0.5 else [ref]
        if alts == [ref]:
            ref, alts = ref + extra, [ref]
    else:
        alts = [b for b in BASES if b != ref][:2]
    if len(alts) == 2:
        gt, ad = "1/2", [rng.randint(0, 3), rng.randint(5, 30), rng.randint(5, 30)]
    elif rng.random() < 0.6:
        gt, ad = "0/1", [rng.randint(5, 40), rng.randint(5, 40)]
    else:
        gt, ad = "1/1", [rng.randint(0, 2), rng.randint(10, 50)]
    qual = rng.randint(30, 900)
    fields = f"{gt}:{','.join(map(str, ad))}:{sum(ad)}"
    info = _csq(rng, ref, alts) if annotated else "."
    return f"{chrom}\t{pos}\t.\t{ref}\t{','.join(alts)}\t{qual}\tPASS\t{info}\tGT:AD:DP\t{fields}\n"


# ---- one measurement per process -------------------------------------------------------


Measured = tuple[int, int, float]  # records read, variants out, seconds


def task_raw(vcf: Path) -> Measured:
    from cyvcf2 import VCF

    start = time.perf_counter()
    records = 0
    for v in VCF(str(vcf)):
        v.genotypes  # noqa: B018 - reading is the point
        v.format("AD")
        v.format("DP")
        records += 1
    return records, records, time.perf_counter() - start


def task_reader(vcf: Path) -> Measured:
    from adapter.model import ConversionSummary
    from adapter.readers.vcf import VcfReader

    start = time.perf_counter()
    summary = ConversionSummary()
    calls = 0
    with VcfReader(vcf, summary=summary) as reader:
        for _ in reader:
            calls += 1
    return summary.records_read, calls, time.perf_counter() - start


def task_convert(vcf: Path, validate: bool, jobs: int, policy: bool = False) -> Measured:
    from datetime import UTC, datetime

    from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
    from adapter.disclosure import disclosure_request
    from adapter.model import PatientRef
    from adapter.policy import read_consent

    patient = PatientRef(id="pat-1001")
    consent = HERE.parent / "tests" / "data" / "consent" / "r4_secondary_findings_opt_in.json"
    options = ConvertOptions(
        patient=patient,
        output_format=OutputFormat.NDJSON,
        validate=validate,
        issued=datetime(2026, 1, 15, tzinfo=UTC),
        jobs=jobs,
    )
    if validate:  # load the compiled profiles before the clock starts
        from adapter.validation import load_validator

        load_validator()
    with tempfile.TemporaryDirectory(dir=DATA) as out:
        start = time.perf_counter()
        if policy:  # reading the policy file and the Consent is part of the cost
            disclosure = disclosure_request(
                [read_consent(consent, patient=patient)],
                purpose="TREAT",
                at=datetime(2026, 11, 22, 12, tzinfo=UTC),
                birth_date="1980-05-17",
                audit_log=Path(out) / "audit.ndjson",
            )
            options = replace(options, disclosure=disclosure)
        summary = convert_vcf(vcf, Path(out) / "ndjson", options)
        elapsed = time.perf_counter() - start
    return summary.records_read, summary.variants_converted, elapsed


def run_task(name: str, vcf: Path) -> None:
    if name == "raw":
        records, variants, elapsed = task_raw(vcf)
    elif name == "reader":
        records, variants, elapsed = task_reader(vcf)
    else:
        jobs = 1 if name.endswith("1 process") else 0
        policy = "policy" in name
        records, variants, elapsed = task_convert(vcf, "validate" in name, jobs, policy)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {"records": records, "variants": variants, "s": elapsed, "rss_mb": rss_mb}
            | {"worker_mb": worker_mb}
        )
    )


def measure(name: str, vcf: Path) -> dict[str, float]:
    out = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, __file__, "--task", name, "--vcf", str(vcf)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--task")
    parser.add_argument("--vcf", type=Path)
    parser.add_argument("--only", choices=["policy"], help="run only this part")
    args = parser.parse_args()
    if args.task:
        run_task(args.task, args.vcf)
        return
    DATA.mkdir(exist_ok=True)
    big = DATA / f"synthetic-{args.records}.vcf"
    small = DATA / f"synthetic-{args.records // 4}.vcf"
    vep = DATA / f"synthetic-vep-acmg-{args.records}.vcf"
    for path, n in ((big, args.records), (small, args.records // 4)):
        if not path.exists():
            generate(path, n)
    if not vep.exists():
        generate(vep, args.records, annotated=True)
    if args.only != "policy":
        speeds(args.records, big, small, vep)
    print("\nThe disclosure policy's cost, conversions with and without it back to back:")
    for label, vcf in (("unannotated", big), ("VEP-annotated", vep)):
        rounds = policy_rounds(vcf)
        for plain, applied, share in rounds:
            speed = f"{_speed(plain):>9,.0f} and {_speed(applied):>9,.0f} variants/s"
            print(f"  {label}: {speed}: {share:.0%}")
        cost = 1 - rounds[len(rounds) // 2][2]
        print(f"{label}: the policy costs {cost:.1%} of conversion time (median; target <= 10%)")


def speeds(records: int, big: Path, small: Path, vep: Path) -> None:
    """The reader and the conversions against raw cyvcf2, and annotated against plain."""
    names = (
        "reader",
        "convert, 1 process",
        "convert",
        "convert+validate, 1 process",
        "convert+validate",
    )
    tasks = [(name, big) for name in names] + [("convert", small)]
    results: dict[str, dict[str, float]] = {}
    raw_before = _rate(measure("raw", big))
    for name, vcf in tasks:
        label = {big: name, small: f"{name} (1/4 size)", vep: f"{name}, VEP-annotated"}[vcf]
        results[label] = measure(name, vcf)
        raw_after = _rate(measure("raw", vcf))
        results[label]["raw"] = (raw_before + raw_after) / 2
        raw_before = raw_after
    rounds = annotated_rounds(big, vep)
    median = results["convert, VEP-annotated"] = rounds[len(rounds) // 2][1]
    median["raw"] = _rate(measure("raw", vep))
    report(results, records)
    print("\nVEP-annotated against unannotated conversion, measured in pairs back to back:")
    for plain, annotated, share in rounds:
        print(f"  {_speed(plain):>9,.0f} and {_speed(annotated):>9,.0f} variants/s: {share:.0%}")
    share = rounds[len(rounds) // 2][2]
    print(f"VEP-annotated conversion: {share:.0%} of the unannotated speed (median; target >= 50%)")


#: pairs of unannotated and annotated conversions measured, for the median of their ratios
PAIRS = 3
Round = tuple[dict[str, float], dict[str, float], float]


def annotated_rounds(plain: Path, vep: Path) -> list[Round]:
    """The two conversions side by side, ``PAIRS`` times, ordered by their ratio: a machine
    whose speed drifts within minutes is only fair to runs back to back."""
    rounds = []
    for _ in range(PAIRS):
        unannotated, annotated = measure("convert", plain), measure("convert", vep)
        rounds.append((unannotated, annotated, _speed(annotated) / _speed(unannotated)))
    return sorted(rounds, key=lambda r: r[2])


def policy_rounds(vcf: Path) -> list[Round]:
    """Conversion without and with the policy, ``PAIRS`` times back to back, by ratio."""
    rounds = []
    for _ in range(PAIRS):
        plain, applied = measure("convert", vcf), measure("convert+policy", vcf)
        rounds.append((plain, applied, _speed(applied) / _speed(plain)))
    return sorted(rounds, key=lambda r: r[2], reverse=True)


def _speed(result: dict[str, float]) -> float:
    return result["variants"] / result["s"]


def _rate(result: dict[str, float]) -> float:
    return result["records"] / result["s"]


def report(results: dict[str, dict[str, float]], records: int) -> None:
    """Each measurement against raw cyvcf2 measured just before and just after it: this
    machine's speed drifts by as much as twice within minutes, so a ratio is only fair
    between runs side by side."""
    print(f"synthetic VCF: {records:,} records\n")
    head = f"{'measurement':<29}{'records/s':>11}{'variants/s':>11}{'raw beside':>12}{'vs raw':>8}"
    print(f"{head}{'peak RSS':>10}{'per worker':>12}")
    for name, r in results.items():
        rec_rate = _rate(r)
        worker = f"{r['worker_mb']:>10.0f}MB" if r["worker_mb"] > r["rss_mb"] / 4 else ""
        print(
            f"{name:<29}{rec_rate:>11,.0f}{r['variants'] / r['s']:>11,.0f}{r['raw']:>12,.0f}"
            f"{rec_rate / r['raw']:>8.0%}{r['rss_mb']:>8.0f}MB{worker:>12}"
        )
    print(
        "\nraw beside: raw cyvcf2 (GT, AD, DP) records/s, the mean of a run just before and one"
        " just after.\nconvert without '1 process': one worker process per core (see"
        " ConvertOptions.jobs).\ntargets: convert >= 30% of raw, convert+validate >= 10% of raw,"
        " peak RSS <= 300 MB"
    )


if __name__ == "__main__":
    main()
