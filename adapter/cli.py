"""The ``fhir-genomics`` command: a thin shell over the library.

Exit codes: 0 success, 2 bad options, 3 bad input, 4 validation failed, 5 FHIR package
problem, 6 output not written, 7 disclosure denied by the policy, 8 a FHIR server did not take
what was sent, 9 the outbox cannot be used, 10 no valid bearer token, 1 any other adapter error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson

from .cli_reports import add_convert_report, add_ingest, add_mllp, add_to_hl7v2
from .cli_sync import add_keys, add_outbox, add_subscribe, add_sync
from .convert import (
    ConvertOptions,
    OutputFormat,
    convert_vcf,
    optional_pair,
    parse_instant,
    patient_ref,
    transcript_order,
    tumor_biomarkers,
)
from .decision import decide_bundle, decision_json
from .disclosure import Disclosure, audit_log_path, disclosure_request, refusal
from .errors import AdapterError, InputError, OptionsError, UnknownSampleError
from .fhir.writers import write_atomically
from .model import (
    ConversionSummary,
    GenomeBuild,
    GenomicSourceClass,
    MicrosatelliteStatus,
    PatientRef,
    Sex,
)
from .policy import read_consent
from .regions import parse_region

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except AdapterError as exc:
        _report_error(exc, sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fhir-genomics",
        description="Genomic results to HL7 FHIR Genomics Reporting IG STU3 (FHIR R4).",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    _add_convert(sub)
    _add_decide(sub)
    _add_validate(sub)
    _add_serve(sub)
    _add_packages(sub)
    add_sync(sub)
    add_outbox(sub)
    add_keys(sub)
    add_subscribe(sub)
    add_convert_report(sub)
    add_ingest(sub)
    add_mllp(sub)
    add_to_hl7v2(sub)
    return parser


def _add_convert(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("convert", help="convert a VCF to a Bundle or Bulk NDJSON")
    p.add_argument("input", type=Path, help="VCF file, plain or bgzipped")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--patient", metavar="ID", help="literal Patient id (Patient/123 or 123)")
    who.add_argument("--patient-identifier", metavar="SYSTEM|VALUE", help="Patient business id")
    p.add_argument("--sample", help="sample name (needed for multi-sample files)")
    p.add_argument("--build", choices=[b.value for b in GenomeBuild], help="genome build")
    p.add_argument(
        "--source-class",
        choices=[c.value for c in GenomicSourceClass],
        default=GenomicSourceClass.GERMLINE.value,
    )
    p.add_argument("--sex", choices=[s.value for s in Sex], default=Sex.UNKNOWN.value)
    p.add_argument(
        "--format", choices=[f.value for f in OutputFormat], default=OutputFormat.TRANSACTION
    )
    p.add_argument("--out", type=Path, required=True, help="output file (NDJSON: a folder)")
    p.add_argument("--region", action="append", default=[], help="chr:start-end, repeatable")
    p.add_argument("--regions-bed", type=Path, help="BED of the regions studied (restricts too)")
    p.add_argument(
        "--uncallable-bed", type=Path, help="BED of the regions that could not be called"
    )
    p.add_argument("--include-filtered", action="store_true", help="keep non-PASS records")
    p.add_argument(
        "--validate", action="store_true", help="check every resource against its profile"
    )
    p.add_argument(
        "--document-reference", action="store_true", help="describe the input VCF as a resource"
    )
    p.add_argument("--report-id", help="the lab's stable report id (corrections then update)")
    p.add_argument("--specimen", metavar="ID", help="literal Specimen id")
    p.add_argument("--specimen-identifier", metavar="SYSTEM|VALUE")
    p.add_argument("--order-identifier", metavar="SYSTEM|VALUE", help="ServiceRequest identifier")
    p.add_argument("--performer", metavar="REF", help="e.g. Organization/lab-1")
    p.add_argument(
        "--issued", help="report time, ISO 8601 with zone (default: ##fileDate, else file time)"
    )
    p.add_argument("--heteroplasmy-threshold", type=float, default=0.95)
    p.add_argument(
        "--transcript-order",
        metavar="FLAGS",
        help="what makes a transcript an allele's representative one, tried in order: "
        "comma-separated mane_select, picked (VEP --pick), canonical; default "
        "mane_select,picked,canonical, then the first listed",
    )
    p.add_argument("--tmb", type=float, metavar="N", help="tumor mutational burden, mutations/Mb")
    p.add_argument(
        "--msi", choices=[s.value for s in MicrosatelliteStatus], help="microsatellite status"
    )
    p.add_argument(
        "--knowledge",
        type=Path,
        metavar="FILE",
        help="actionability knowledge file (TSV; see examples/actionability.tsv)",
    )
    p.add_argument(
        "--classifications",
        type=Path,
        metavar="FILE",
        help="the lab's own variant classifications, which win over ClinVar's (TSV or JSON; "
        "see examples/lab-classifications.tsv and .json)",
    )
    p.add_argument(
        "--pgx",
        type=Path,
        metavar="FILE",
        help="pharmacogenomic diplotype calls: a PharmCAT 3 JSON report or a TSV of gene, "
        "diplotype, phenotype, activity_score (see examples/pgx/)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="processes that read and build variants (0: one per core, up to 8, over 8 MiB)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress or summary on stderr")
    g = _add_disclosure(p)
    g.add_argument(
        "--pseudonym-key-file",
        type=Path,
        metavar="FILE",
        help="the secret key (at least 32 bytes) that de-identifies the output, as a research "
        "disclosure (HRESCH) must be; NDJSON only",
    )
    p.set_defaults(run=_run_convert)


def _add_disclosure(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The disclosure request every output answers (see the README's policy section)."""
    g = p.add_argument_group("disclosure policy")
    g.add_argument(
        "--purpose",
        metavar="CODE",
        help="purpose of use, an HL7 v3 ActReason code (TREAT, ETREAT, HRESCH, ...); required "
        "by the shipped policy",
    )
    g.add_argument(
        "--consent",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="the patient's FHIR Consent (R4 or R5 JSON), repeatable",
    )
    g.add_argument("--policy", type=Path, metavar="FILE", help="policy file (default: shipped)")
    g.add_argument(
        "--indication",
        action="append",
        default=[],
        metavar="GENES",
        help="what the order asked about: HGNC symbols and phenotype terms, comma-separated "
        "(BRCA1,BRCA2 or HP:0001250); listed ACMG genes outside it are secondary findings",
    )
    g.add_argument("--birth-date", metavar="YYYY-MM-DD", help="the patient's, for the minor rule")
    g.add_argument("--recipient", metavar="REF", help="who receives it, e.g. Practitioner/123")
    g.add_argument("--break-glass", action="store_true", help="emergency access (audited)")
    g.add_argument("--decided-at", metavar="INSTANT", help="the decision's time (default: now)")
    g.add_argument(
        "--audit-log",
        type=Path,
        metavar="FILE",
        help="NDJSON file the AuditEvents are appended to (default: OUT.audit.ndjson)",
    )
    return g


def _add_decide(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "decide",
        help="filter a Bundle of a patient's genomic results by the disclosure policy",
        description="Prints the decision, its reasons and obligations as JSON; writes the "
        "filtered, labelled Bundle to OUT unless the policy refuses (exit 7).",
    )
    p.add_argument("bundle", type=Path, help="a FHIR R4 Bundle (JSON) of one patient")
    p.add_argument("--out", type=Path, required=True, help="the filtered Bundle")
    p.add_argument("--sex", choices=[s.value for s in Sex], default=Sex.UNKNOWN.value)
    _add_disclosure(p)
    p.set_defaults(run=_run_decide)


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="validate FHIR JSON, a Bundle or NDJSON against the IG")
    p.add_argument("files", type=Path, nargs="+", help="files, or folders of NDJSON files")
    p.add_argument("--warnings", action="store_true", help="list warnings too, not only errors")
    p.set_defaults(run=_run_validate)


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="accept calls without a token (a trial on this machine only; "
        "otherwise set $FHIR_GENOMICS_API_JWKS)",
    )
    p.add_argument(
        "--sync-every",
        type=float,
        metavar="SECONDS",
        help="also send the outbox's due jobs (and work off leftover notifications) this often, "
        "to the servers of $FHIR_GENOMICS_SERVERS; off unless given",
    )
    p.set_defaults(run=_run_serve)


def _add_packages(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("packages", help="fetch and verify the pinned FHIR packages")
    p.set_defaults(run=_run_packages)


def _run_convert(args: argparse.Namespace) -> int:
    options = _convert_options(args)
    progress = None if args.quiet else _Progress(sys.stderr)
    summary = convert_vcf(args.input, args.out, options, progress=progress)
    if progress is not None:
        progress.finish()
        _print_summary(summary, args.out, sys.stderr)
    return 0


def _convert_options(args: argparse.Namespace) -> ConvertOptions:
    return ConvertOptions(
        patient=patient_ref(args.patient, args.patient_identifier),
        sample=args.sample,
        build=GenomeBuild(args.build) if args.build else None,
        source_class=GenomicSourceClass(args.source_class),
        sex=Sex(args.sex),
        output_format=OutputFormat(args.format),
        regions=tuple(parse_region(r) for r in args.region),
        regions_bed=args.regions_bed,
        uncallable_bed=args.uncallable_bed,
        include_filtered=args.include_filtered,
        validate=args.validate,
        include_document_reference=args.document_reference,
        report_id=args.report_id,
        specimen_id=args.specimen,
        specimen_identifier=optional_pair(args.specimen_identifier, "specimen identifier"),
        order_identifier=optional_pair(args.order_identifier, "order identifier"),
        performer=args.performer,
        issued=parse_instant(args.issued) if args.issued else None,
        heteroplasmy_threshold=args.heteroplasmy_threshold,
        transcript_order=transcript_order(args.transcript_order),
        jobs=args.jobs,
        tumor=tumor_biomarkers(args.tmb, args.msi),
        knowledge=args.knowledge,
        classifications=args.classifications,
        pharmacogenomics=args.pgx,
        disclosure=_disclosure(args, patient_ref(args.patient, args.patient_identifier)),
        pseudonym_key=_key(args.pseudonym_key_file),
    )


def _key(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as e:
        raise OptionsError(
            f"cannot read the pseudonym key: {e.strerror}", source=str(path), field="pseudonym_key"
        ) from e


def _disclosure(args: argparse.Namespace, patient: PatientRef | None) -> Disclosure:
    """The disclosure options; the Consents read for ``patient`` (another's is an error), or
    for the patient of the data when None."""
    return disclosure_request(
        [read_consent(path, patient=patient) for path in args.consent],
        purpose=args.purpose,
        at=parse_instant(args.decided_at, "decided_at") if args.decided_at else None,
        policy=args.policy,
        indication=args.indication,
        birth_date=args.birth_date,
        recipient=args.recipient,
        break_glass=args.break_glass,
        audit_log=args.audit_log or audit_log_path(args.out),
    )


def _run_decide(args: argparse.Namespace) -> int:
    disclosure = _disclosure(args, None)  # decide_bundle checks the Consents' patient
    if disclosure.request.purpose in disclosure.policy.research:
        raise OptionsError(
            "a research disclosure is de-identified, which decide does not do: convert with "
            "--pseudonym-key-file",
            field="purpose",
        )
    result = decide_bundle(_read_json(args.bundle), disclosure, sex=Sex(args.sex))
    print(json.dumps(decision_json(result), indent=2))
    if result.bundle is None:
        raise refusal(result.decision)
    write_atomically(args.out, orjson.dumps(result.bundle))
    return 0


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except OSError as e:
        raise InputError(f"cannot read the file: {e.strerror}", source=str(path)) from e
    except orjson.JSONDecodeError as e:
        raise InputError(f"not valid JSON: {e}", source=str(path)) from e


def _run_validate(args: argparse.Namespace) -> int:
    from .validation import validate_path

    failed = False
    for path in _files(args.files):
        report = validate_path(path)
        for issue in report.issues:
            if issue.severity == "error" or args.warnings:
                print(f"{path}: {issue.severity}: {issue.path}: {issue.message}")
        print(
            f"{path}: {report.resources_checked} resources, "
            f"{len(report.errors)} errors, {len(report.warnings)} warnings"
        )
        failed = failed or not report.ok
    return 4 if failed else 0


def _files(paths: Sequence[Path]) -> list[Path]:
    """The given files, with a folder (a Bulk NDJSON export) standing for its .ndjson files."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.ndjson"))
            if not found:
                raise InputError("folder holds no .ndjson files", source=str(path))
            out.extend(found)
        else:
            out.append(path)
    return out


def _run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .access import JWKS_ENV, Access
    from .service import create_app

    if args.no_auth:
        access = Access.open()
    elif not os.environ.get(JWKS_ENV):
        raise OptionsError(
            f"the API needs keys to check its callers' tokens: set ${JWKS_ENV} to a JWKS "
            "file, or pass --no-auth for a trial on this machine"
        )
    else:
        access = Access.from_env()
    if args.sync_every is not None and args.sync_every <= 0:
        raise OptionsError("--sync-every takes a number of seconds above 0", field="--sync-every")
    app = create_app(access, sync_every_s=args.sync_every)
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


def _run_packages(args: argparse.Namespace) -> int:
    from .packages import fetch_all

    for name, path in sorted(fetch_all().items()):
        print(f"{name}: {path}")
    return 0


class _Progress:
    """A one-line progress display on a terminal; silent when stderr is not one."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.start = time.monotonic()
        self.shown = False

    def __call__(self, records: int, variants: int) -> None:
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.start, 1e-9)
        self.stream.write(
            f"\r{records:,} records read, {variants:,} variants ({records / elapsed:,.0f} rec/s)"
        )
        self.stream.flush()
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            self.stream.write("\n")


def _print_summary(summary: ConversionSummary, out: Path, stream: TextIO) -> None:
    print(
        f"wrote {out}: {summary.variants_converted:,} variants from "
        f"{summary.records_read:,} records",
        file=stream,
    )
    for reason, count in sorted(summary.skipped.items()):
        print(f"  skipped {count:,}: {reason}", file=stream)
    for rtype, count in sorted(summary.resources_written.items()):
        print(f"  {rtype}: {count:,}", file=stream)


def _report_error(exc: AdapterError, stream: TextIO) -> None:
    print(f"error: {exc}", file=stream)
    if isinstance(exc, UnknownSampleError) and exc.samples:
        print(f"  samples in the file: {', '.join(exc.samples)}", file=stream)
    for issue in getattr(exc, "issues", ())[:20]:
        print(f"  {issue.severity}: {issue.path}: {issue.message}", file=stream)


if __name__ == "__main__":
    sys.exit(main())
