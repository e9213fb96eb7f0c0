"""The typed VCF reader: one :class:`VariantCall` per ALT allele called in one sample.

htslib (through cyvcf2) parses the records; :mod:`.vcf_text` parses the header and checks every
data line first, because htslib lets some errors through and crashes on others. After the
last record the reader checks htslib returned exactly as many records as there are data lines,
so nothing is dropped silently.

Skip reasons counted in :attr:`ConversionSummary.skipped` (per record unless marked; the first
that applies wins):

* ``unsupported_contig``: a contig with no accession (unplaced, unlocalised, alt, decoy, EBV,
  HLA). A name shaped like a chromosome the build lacks (``chr23``) is an error instead.
* ``outside_regions``: regions given for a file without index, record outside them.
* ``reference_call``: no ALT (``.``), or the sample's GT holds only REF (``0/0``, ``0/.``).
* ``gvcf_reference_block``: every ALT is ``<NON_REF>`` or ``<*>``.
* ``filtered``: FILTER neither PASS nor ``.``, without ``include_filtered``.
* ``no_genotype``: the record has no GT for the sample.
* ``no_call``: GT all missing (``./.``, ``.``).
* ``allele_not_in_genotype`` (per allele): an ALT the sample does not carry (ALT2 of ``0/1``).
* ``spanning_deletion`` (per allele): ``*``, the allele missing under an upstream deletion.
* ``unsupported_allele`` (per allele): a symbolic allele or SVTYPE other than
  DEL/DUP/INS/INV/CNV/BND (e.g. ``<INV:FOO>`` is INV, ``<FOO>`` is unsupported).

Zygosity is that of each ALT: ``1/2`` is heterozygous for both, ``1/1`` homozygous, a haploid
``1`` hemizygous; on X and Y a homozygous call of a male (``sex=MALE``) is hemizygous, the
pseudoautosomal regions included (they are not told apart); on M the VAF decides against the
heteroplasmy threshold, or without VAF the GT does (all ALT: homoplasmic). A partly missing GT
(``1/.``) gives no zygosity.
"""

from __future__ import annotations

import dataclasses
import math
import re
from bisect import bisect_left
from collections.abc import Generator, Iterator, Sequence
from contextlib import ExitStack, closing
from itertools import islice, repeat
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from weakref import WeakSet

import cyvcf2

from ..assembly import (
    check_build,
    chromosome_length,
    detect_build,
    looks_like_chromosome,
    mito_is_rcrs,
    normalize_chromosome,
)
from ..errors import (
    AdapterError,
    GenomeBuildError,
    HeaderMismatchError,
    InputError,
    MalformedRecordError,
    TruncatedInputError,
    UnknownContigError,
    UnknownSampleError,
)
from ..model import (
    ConversionSummary,
    GenomeBuild,
    GenomicRegion,
    RecordAnnotations,
    Sex,
    StructuralVariant,
    SvType,
    VariantCall,
    Zygosity,
)
from ..regions import merge_regions
from .annotations import DEFAULT_PRIMARY_ORDER, AnnotationParser, PrimaryRule, count_skips
from .vcf_text import (
    BodyScan,
    Depths,
    FieldSpec,
    TextDepths,
    VcfHeader,
    check_bgzf_eof,
    compression_of,
    diagnose,
    index_contigs,
    open_stream,
    read_header,
    skip_lines,
)

__all__ = ["FieldSpec", "VcfHeader", "VcfReader"]

_GVCF_ALTS: Final = frozenset({"<NON_REF>", "<*>"})
_VECTOR_END: Final = -2147483647  # htslib: missing is -2**31, end-of-vector this
_HTSLIB_FORMAT_LINES: Final = 2  # htslib's BCF_HL_FMT: look a key up among ##FORMAT lines
_MAX_LISTED_SAMPLES: Final = 20
_AUTOSOME, _SEX_CHROMOSOME, _MITOCHONDRION = 0, 1, 2
_VARIANT: Final = "variant"
_SV_TYPES: Final = {t.value: t for t in SvType}
_EXTENT_TYPES: Final = frozenset({SvType.DEL, SvType.DUP, SvType.INV, SvType.CNV})
_COPY_NUMBER_ALLELE = re.compile(r"CN\d+")

#: (chromosome, its length on the build, _AUTOSOME | _SEX_CHROMOSOME | _MITOCHONDRION)
_Place = tuple[str, int, int]


# ---- genotypes -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Genotype:
    """One distinct GT, analysed once per reader and cached: a file holds a handful."""

    text: str  # as written, rebuilt: "0/1", "1|2", "1"
    phased: bool
    state: str  # "no_call" | "reference_call" | "variant"
    top: int  # highest allele index
    present: tuple[tuple[int, int], ...]  # (ALT index, copies) of each ALT in the GT
    #: zygosity of each present ALT, by _AUTOSOME, _SEX_CHROMOSOME, _MITOCHONDRION
    zygosities: tuple[tuple[Zygosity | None, ...], ...]


def _genotype(raw: tuple[Any, ...], male: bool) -> _Genotype:
    alleles = tuple(int(a) for a in raw[:-1])
    called = [a for a in alleles if a >= 0]
    phased = bool(raw[-1]) and len(alleles) > 1  # cyvcf2 flags some haploid calls phased
    text = ("|" if phased else "/").join(str(a) if a >= 0 else "." for a in alleles)
    state = "no_call" if not called else "reference_call" if max(called) == 0 else _VARIANT
    present = tuple((i, alleles.count(i)) for i in sorted(set(called) - {0}))
    zygosities = tuple(
        tuple(_zygosity(alleles, copies, where, male) for _, copies in present)
        for where in (_AUTOSOME, _SEX_CHROMOSOME, _MITOCHONDRION)
    )
    return _Genotype(text, phased, state, max(called, default=-1), present, zygosities)


def _zygosity(alleles: tuple[int, ...], copies: int, where: int, male: bool) -> Zygosity | None:
    """Zygosity of an ALT present ``copies`` times in a GT, from the GT alone."""
    if -1 in alleles:
        return None  # 1/. : heterozygous or homozygous cannot be told
    ploidy = len(alleles)
    if where == _MITOCHONDRION:
        return Zygosity.HOMOPLASMIC if copies == ploidy else Zygosity.HETEROPLASMIC
    if ploidy == 1 or (copies == ploidy and where == _SEX_CHROMOSOME and male):
        return Zygosity.HEMIZYGOUS
    return Zygosity.HOMOZYGOUS if copies == ploidy else Zygosity.HETEROZYGOUS


# ---- the reader ------------------------------------------------------------------------


class VcfReader:
    """Iterates the ALT alleles called in one sample of a VCF as :class:`VariantCall`.

    Plain, bgzipped or gzipped VCF. With regions and a ``.tbi``/``.csi`` index beside a bgzipped
    file only those regions are read (each record once; ``line`` is None). Without an index the
    whole file is read and records outside the regions are skipped (``outside_regions``).
    """

    def __init__(
        self,
        path: Path,
        *,
        sample: str | None = None,
        build: GenomeBuild | None = None,
        sex: Sex = Sex.UNKNOWN,
        regions: Sequence[GenomicRegion] = (),
        include_filtered: bool = False,
        heteroplasmy_threshold: float = 0.95,
        summary: ConversionSummary | None = None,
        transcript_order: Sequence[PrimaryRule] = DEFAULT_PRIMARY_ORDER,
    ) -> None:
        self.path = Path(path)
        self.source = str(path)
        self.sex = sex
        self.include_filtered = include_filtered
        self.heteroplasmy_threshold = heteroplasmy_threshold
        self.summary = summary if summary is not None else ConversionSummary()
        try:
            self.compression = compression_of(self.path)
        except OSError as exc:
            raise InputError(f"cannot read the file: {exc.strerror}", source=self.source) from exc
        if self.compression == "bgzf":
            check_bgzf_eof(self.path)
        with open_stream(self.path, self.compression) as stream:
            self.header: VcfHeader = read_header(stream, self.source)
        self.sample: str = self._resolve_sample(sample)
        self.build: GenomeBuild = self._resolve_build(build)
        self._regions = merge_regions(
            GenomicRegion(_contig_key(r.chrom), r.start, r.end) for r in regions
        )
        self.index = self._find_index() if self._regions else None
        self._subset = len(self.header.samples) > 1 and "," not in self.sample
        self._column = 0 if self._subset else self.header.samples.index(self.sample)
        vcf = self._open_vcf()  # htslib must accept the header too
        #: AD, DP declared (cyvcf2 raises KeyError for FORMAT keys the header lacks) and the
        #: Type htslib gives each; told it, cyvcf2's format() skips a header lookup
        self._depth_keys = tuple(k in self.header.formats for k in ("AD", "DP"))
        self._depth_types = (_format_type(vcf, "AD"), _format_type(vcf, "DP"))
        vcf.close()
        self._af_declared = "AF" in self.header.formats
        self._sv_declared = "SVTYPE" in self.header.infos
        annotations = AnnotationParser(
            self.header, origin=self.source, primary_order=transcript_order
        )
        #: transcript consequences (VEP, SnpEff) and ClinVar, when the file has them
        self._annotations = annotations if annotations.info_keys else None
        #: the fast lane reads neither FORMAT AF nor INFO SVTYPE
        self._lane_open = not (self._af_declared or self._sv_declared)
        self._places: dict[str, _Place | None] = {}
        #: the places the fast lane takes: placed, not the mitochondrion
        self._lane_places: dict[str, _Place] = {}
        self._genotypes: dict[tuple[Any, ...], _Genotype] = {}
        #: the GTs the fast lane takes: a variant call of ALT 1 alone, unphased
        self._lane: dict[tuple[Any, ...], _Genotype] = {}
        self._iterations: WeakSet[Generator[VariantCall, None, None]] = WeakSet()

    def __enter__(self) -> VcfReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the htslib handles of iterations left unfinished."""
        for iteration in list(self._iterations):
            iteration.close()

    # -- opening -------------------------------------------------------------------------

    def _resolve_sample(self, sample: str | None) -> str:
        samples = self.header.samples
        if not samples:
            raise UnknownSampleError(
                "the VCF has no sample columns (sites-only); a sample's genotypes are needed",
                samples=(),
                source=self.source,
            )
        if sample is None and len(samples) == 1:
            return samples[0]
        if sample is not None and sample in samples:
            return sample
        listed = ", ".join(samples[:_MAX_LISTED_SAMPLES])
        if len(samples) > _MAX_LISTED_SAMPLES:
            listed += f" and {len(samples) - _MAX_LISTED_SAMPLES} more"
        if sample is None:
            message = f"the VCF holds {len(samples)} samples; choose one with --sample: {listed}"
            if "tumor_sample" in self.header.meta:
                message += (
                    f" (its header names the tumor sample {self.header.meta['tumor_sample']})"
                )
        else:
            message = f"sample {sample!r} is not in the VCF; its samples are: {listed}"
        raise UnknownSampleError(message, samples=samples, source=self.source)

    def _resolve_build(self, build: GenomeBuild | None) -> GenomeBuild:
        """The user's build if the header's contig lengths agree, else the header's."""
        contigs = self.header.contigs
        try:
            resolved = build or detect_build(self.header.reference, contigs)
            if resolved is None:
                raise GenomeBuildError(
                    "cannot tell the genome build from the header (no ##reference naming it, no "
                    "GRCh37 or GRCh38 contig lengths); pass --build GRCh37 or --build GRCh38"
                )
            check_build(resolved, contigs)
        except GenomeBuildError as exc:
            raise GenomeBuildError(exc.message, source=self.source, field="build") from None
        return resolved

    def _find_index(self) -> Path | None:
        if self.compression != "bgzf":
            return None
        for suffix in (".csi", ".tbi"):
            candidate = self.path.with_name(self.path.name + suffix)
            if candidate.is_file():
                return candidate
        return None

    def _open_vcf(self) -> Any:
        try:
            return cyvcf2.VCF(str(self.path), samples=[self.sample] if self._subset else None)
        except Exception as exc:  # cyvcf2 raises bare Exception or OSError
            if self.compression != "plain":
                self._scan()  # a damaged gzip stream fails htslib's header read too
            raise MalformedRecordError(
                f"htslib cannot read the header ({exc})", source=self.source, field="header"
            ) from exc

    # -- records from htslib -------------------------------------------------------------

    def __iter__(self) -> Iterator[VariantCall]:
        iteration = self._calls()
        self._iterations.add(iteration)
        return iteration

    def _open_records(
        self, files: ExitStack
    ) -> tuple[Iterator[Any], int | None, Iterator[Depths | None]]:
        """htslib's records, how many the scan counted (None: not scanned), and the depths
        read from the text alongside (None where htslib must be asked)."""
        if self.index is not None:
            vcf = files.enter_context(closing(self._open_vcf()))
            return self._indexed(vcf, self.index), None, repeat(None)
        expected = self._scan()
        vcf = files.enter_context(closing(self._open_vcf()))
        records = islice(vcf, expected)  # islice: trailing blank lines crash htslib
        if len(self.header.samples) != 1 or not self._lane_open:
            return records, expected, repeat(None)
        text = open_stream(self.path, self.compression)
        files.callback(text.close)
        skip_lines(text, self.header.lines)
        return records, expected, TextDepths(self.header, self._depth_types).read(text)

    def _scan(self) -> int:
        """Check every data line before htslib reads one; the number of records."""
        with open_stream(self.path, self.compression) as stream:
            skip_lines(stream, self.header.lines)
            return BodyScan(self.header, self.source).run(stream)

    def _indexed(self, vcf: Any, index: Path) -> Iterator[Any]:
        """Records overlapping the regions, each once, in the index's contig order."""
        for name in index_contigs(index, self.source):
            key = _contig_key(name)
            previous_end = 0
            for region in (r for r in self._regions if r.chrom == key):
                yield from self._query(vcf, name, region, previous_end)
                previous_end = region.end

    def _query(self, vcf: Any, contig: str, region: GenomicRegion, after: int) -> Iterator[Any]:
        """One region's records, minus those starting before ``after`` (an earlier region's).

        Regions are merged, so a record reaching back before ``after`` overlapped the
        previous region on the contig and was returned there. The whole-file scan does not
        run here, so undeclared FORMAT keys are checked per record; extra sample columns,
        which htslib drops with a warning, go unnoticed in this mode.
        """
        name = f"{{{contig}}}" if ":" in contig else contig
        records = iter(vcf(f"{name}:{region.start + 1}-{region.end}"))
        while True:
            try:
                variant = next(records)
            except StopIteration:
                return
            except Exception as exc:  # htslib parse failures arrive as bare Exception
                raise MalformedRecordError(
                    f"htslib cannot parse a record in {contig}:{region.start + 1}-{region.end}",
                    source=self.source,
                ) from exc
            if variant.start >= after:
                self._check_format(variant)
                yield variant

    def _check_format(self, variant: Any) -> None:
        undeclared = [k for k in variant.FORMAT if k not in self.header.formats]
        if undeclared:
            raise HeaderMismatchError(
                f"FORMAT key {undeclared[0]} at {variant.CHROM}:{variant.POS} is not declared in "
                "the header",
                source=self.source,
                field="FORMAT",
            )

    # -- records to calls: the hot path, kept flat on purpose --------------------------

    def _calls(self) -> Generator[VariantCall, None, None]:
        """Calls of every record, numbered by line and counted against the scan's count.

        Most records take the fast lane, inlined here (a call costs as much as the work): one
        ALT of bases, PASS (or filters kept), a placed contig other than the mitochondrion, a
        GT seen before that holds the ALT unphased, and no regions, AF or SVTYPE to consult
        (annotations are read on the lane too).
        The rest take :meth:`_record`.
        """
        keep = _RegionFilter(self._regions) if self._regions and self.index is None else None
        lane_places = self._lane_places if keep is None and self._lane_open else {}
        summary, lane, column, keep_filtered, annotations = (
            self.summary,
            self._lane,
            self._column,
            self.include_filtered,
            self._annotations,
        )
        first, count = self.header.lines, 0
        with ExitStack() as files:
            records, expected, text_depths = self._open_records(files)
            next_record, next_depths = records.__next__, text_depths.__next__
            while True:
                try:
                    variant = next_record()
                except StopIteration:
                    break
                except AdapterError:  # from _indexed, which names the region
                    raise
                except Exception as exc:  # htslib parse failures arrive as bare Exception
                    raise self._unparsable(first + count + 1) from exc
                summary.records_read += 1
                count += 1
                line = first + count if expected is not None else None
                depths = next_depths()  # every record's, to keep the text in step
                chrom, alts, filters = variant.CHROM, variant.ALT, variant.FILTER
                place = lane_places.get(chrom)
                if (
                    place is not None
                    and len(alts) == 1
                    and alts[0].isalpha()
                    and (filters is None or keep_filtered)
                ):
                    try:
                        gt = lane[tuple(variant.genotypes[column])]
                    except Exception:  # a GT not seen yet or off the lane; no GT at all
                        gt = None
                    pos = variant.POS
                    if gt is not None and pos <= place[1] + 1:
                        ad, total = self._lane_depths(variant) if depths is None else depths
                        quality = variant.QUAL  # _quality's work, done here for whole numbers
                        if quality is not None and not (
                            -1e7 < quality < 1e7 and quality.is_integer()
                        ):
                            quality = _quality(quality)
                        ref, allele, clinvar = variant.REF, None, None
                        if annotations is not None:
                            found = self._annotated(annotations, variant, ref, alts, line)
                            allele, clinvar = found.alleles[0], found.clinvar
                        yield VariantCall(  # positional, in field order: keywords cost more
                            chrom,
                            place[0],
                            pos,
                            ref,
                            alts[0],
                            1,
                            gt.text,
                            gt.zygosities[place[2]][0],
                            () if filters is None else tuple(filters.split(";")),
                            variant.ID,
                            quality,
                            ad,
                            total,
                            ad / total if ad is not None and total and ad <= total else None,
                            False,
                            None,
                            None,
                            line,
                            allele,
                            clinvar,
                        )
                        continue
                yield from self._record(variant, chrom, alts, keep, line)
        self._check_count(count, expected)

    def _check_count(self, count: int, expected: int | None) -> None:
        """htslib must have returned a record for every data line the scan counted."""
        if expected is not None and count < expected:
            raise TruncatedInputError(
                f"htslib stopped after {count} of {expected} records",
                source=self.source,
                line=self.header.lines + count + 1,
            )

    def _record(
        self,
        variant: Any,
        chrom: str,
        alts: list[str],
        keep: _RegionFilter | None,
        line: int | None,
    ) -> list[VariantCall]:
        """The calls of any record, its skips counted: the general path."""
        try:
            place = self._places[chrom]
        except KeyError:
            place = self._place(chrom, line)
        reason = self._skip_reason(variant, place, alts, keep)
        if reason is None and not self.include_filtered and variant.FILTER is not None:
            reason = "filtered"
        if reason is not None or place is None:
            self.summary.skip(reason or "unsupported_contig")
            return []
        try:
            key = tuple(variant.genotypes[self._column])
        except Exception:  # cyvcf2: "error parsing genotypes" when there is no GT
            self.summary.skip("no_genotype")
            return []
        gt = self._genotypes.get(key) or self._genotype(key)
        if gt.state != _VARIANT:
            self.summary.skip(gt.state)
            return []
        if gt.top > len(alts) or "." in alts or place[1] + 1 < variant.POS:
            self._refuse(variant, gt, alts, place, line)
        return self._emit(variant, gt, alts, place, line)

    def _skip_reason(
        self, variant: Any, place: _Place | None, alts: list[str], keep: _RegionFilter | None
    ) -> str | None:
        """Why a record yields nothing, as far as its contig and ALTs tell."""
        if place is None:
            return "unsupported_contig"
        if keep is not None and not keep(place[0], variant.start, variant.end):
            return "outside_regions"
        if not alts:
            return "reference_call"
        if _GVCF_ALTS.isdisjoint(alts) or not _GVCF_ALTS.issuperset(alts):
            return None
        return "gvcf_reference_block"

    def _genotype(self, key: tuple[Any, ...]) -> _Genotype:
        """Analyse and cache a GT seen for the first time."""
        gt = self._genotypes[key] = _genotype(key, self.sex is Sex.MALE)
        if gt.state == _VARIANT and gt.top == 1 and not gt.phased:
            self._lane[key] = gt
        return gt

    def _unparsable(self, line: int) -> MalformedRecordError:
        """Why htslib failed on a line, read back from the file (htslib only tells stderr)."""
        with open_stream(self.path, self.compression) as stream:
            skip_lines(stream, line - 1)
            text = stream.readline().decode("utf-8", "replace")
        message, key = diagnose(text, self.header)
        return self._malformed(message, line, key)

    def _refuse(
        self, variant: Any, gt: _Genotype, alts: list[str], place: _Place, line: int | None
    ) -> None:
        """Raise for what htslib lets through: GT 0/3 with one ALT, ALT A,,G, POS off the end."""
        if gt.top > len(alts):
            raise self._malformed(
                f"GT {gt.text} names allele {gt.top} but the record has {len(alts)} ALT(s)",
                line,
                "GT",
            )
        if "." in alts:
            raise self._malformed("an ALT allele is empty (',,' or '.' among ALTs)", line, "ALT")
        pos = variant.POS
        if pos > place[1] + 1:  # POS N+1 marks a telomere
            raise GenomeBuildError(
                f"POS {pos:,} lies beyond the end of chromosome {place[0]} on "
                f"{self.build} ({place[1]:,} bp); is the genome build right?",
                source=self.source,
                line=line,
                field="POS",
            )

    def _malformed(self, message: str, line: int | None, key: str | None) -> MalformedRecordError:
        return MalformedRecordError(message, source=self.source, line=line, field=key)

    def _place(self, chrom: str, line: int | None) -> _Place | None:
        """Chromosome, length and kind of a contig; None for contigs without an accession."""
        chromosome = normalize_chromosome(chrom)
        length = self.header.contigs.get(chrom)
        if chromosome is None and looks_like_chromosome(chrom):
            message = f"contig {chrom!r} looks like a chromosome, but {self.build} has no such one"
        elif chromosome == "M" and not mito_is_rcrs(length):
            message = (
                f"the header gives {chrom} {length} bp: not the rCRS mitochondrion (16569 bp, "
                "NC_012920.1) of GRCh37/GRCh38 (hg19's chrM is NC_001807.4), so its variants "
                "cannot be placed"
            )
        else:
            place = None if chromosome is None else (chromosome, *self._extent(chromosome))
            self._places[chrom] = place
            if place is not None and place[2] != _MITOCHONDRION:
                self._lane_places[chrom] = place
            return place
        raise UnknownContigError(message, source=self.source, line=line, field="CHROM")

    def _extent(self, chromosome: str) -> tuple[int, int]:
        kind = {"M": _MITOCHONDRION, "X": _SEX_CHROMOSOME, "Y": _SEX_CHROMOSOME}
        return chromosome_length(self.build, chromosome), kind.get(chromosome, _AUTOSOME)

    def _emit(
        self, variant: Any, gt: _Genotype, alts: list[str], place: _Place, line: int | None
    ) -> list[VariantCall]:
        """One VariantCall per real ALT the sample's GT holds."""
        chrom, pos, ref, record_id = variant.CHROM, variant.POS, variant.REF, variant.ID
        quality = _quality(variant.QUAL)
        filters = variant.FILTER
        filter_names = tuple(filters.split(";")) if filters else ()
        ad_row, total = self._depths(variant)
        af = self._af_row(variant)
        phase_set = self._phase_set(variant) if gt.phased else None
        if len(alts) > len(gt.present):
            self._count_absent(gt, alts)
        annotated = self._annotate(variant, ref, alts, line)
        sv_declared = self._sv_declared
        calls = []
        for (alt_index, _), by_gt in zip(gt.present, gt.zygosities[place[2]], strict=True):
            alt = alts[alt_index - 1]
            plain = alt.isalpha() and not sv_declared  # bases, not <DEL>, N[1:5[ or *
            sv = None if plain else self._structural(variant, alt, alt_index, line)
            if isinstance(sv, str):
                self.summary.skip(sv)
                continue
            ad = ad_row[alt_index] if ad_row is not None and alt_index < len(ad_row) else None
            if ad is not None and ad < 0:
                ad = None
            vaf = self._af(af, alt_index, len(alts)) if af else None
            if vaf is None and ad is not None and total and ad <= total:
                vaf = ad / total
            mito = place[2] == _MITOCHONDRION and vaf is not None
            calls.append(
                VariantCall(  # positional, in field order: 18 keywords cost 1.5 µs more a call
                    chrom,
                    place[0],
                    pos,
                    ref,
                    alt,
                    alt_index,
                    gt.text,
                    self._plasmy(vaf) if mito else by_gt,
                    filter_names,
                    record_id,
                    quality,
                    ad,
                    total,
                    vaf,
                    gt.phased,
                    phase_set,
                    sv,
                    line,
                    annotated.alleles[alt_index - 1] if annotated else None,
                    annotated.clinvar if annotated else None,
                )
            )
        return calls

    def _annotate(
        self, variant: Any, ref: str, alts: list[str], line: int | None
    ) -> RecordAnnotations | None:
        """The record's annotations, its unmatched ones counted as skipped."""
        if self._annotations is None:
            return None
        return self._annotated(self._annotations, variant, ref, alts, line)

    def _annotated(
        self,
        parser: AnnotationParser,
        variant: Any,
        ref: str,
        alts: list[str],
        line: int | None,
    ) -> RecordAnnotations:
        found = parser.parse(ref, alts, variant.INFO, line)
        count_skips(found, self.summary)
        return found

    def _count_absent(self, gt: _Genotype, alts: list[str]) -> None:
        """Count the real ALTs the GT does not hold (ALT2 of a 0/1 record)."""
        held = {i for i, _ in gt.present}
        absent = sum(1 for i, a in enumerate(alts, 1) if i not in held and a not in _GVCF_ALTS)
        if absent:
            self.summary.skip("allele_not_in_genotype", absent)

    def _plasmy(self, vaf: float | None) -> Zygosity:
        if vaf is not None and vaf >= self.heteroplasmy_threshold:
            return Zygosity.HOMOPLASMIC
        return Zygosity.HETEROPLASMIC

    # -- depths --------------------------------------------------------------------------

    def _depths(self, variant: Any) -> tuple[list[int] | None, int | None]:
        """The sample's AD row (negative = missing) and DP (else the sum of AD)."""
        column, declared, types = self._column, self._depth_keys, self._depth_types
        ad = variant.format("AD", types[0]) if declared[0] else None
        ad_row: list[int] | None = None if ad is None else ad.tolist()[column]  # no view: faster
        dp = variant.format("DP", types[1]) if declared[1] else None
        total: int | None = None if dp is None else dp.item(column)
        return ad_row, total if total is not None and total > _VECTOR_END else _ad_total(ad_row)

    def _lane_depths(self, variant: Any) -> Depths:
        """AD of the one ALT and the total depth, from htslib."""
        ad_row, total = self._depths(variant)
        return (ad_row[1] if ad_row and len(ad_row) > 1 and ad_row[1] >= 0 else None), total

    def _af_row(self, variant: Any) -> list[Any] | None:
        """The sample's FORMAT AF values, if the header declares AF and the record has them."""
        af = variant.format("AF") if self._af_declared else None
        return None if af is None else list(af[self._column])

    def _af(self, values: list[Any], alt_index: int, alt_count: int) -> float | None:
        """FORMAT AF of this ALT: Number=A (per ALT), R (REF first), or one value."""
        number = self.header.formats["AF"].number
        if number == "R" or (number == "." and len(values) == alt_count + 1):
            position = alt_index
        elif number == "A" or (number == "." and len(values) == alt_count):
            position = alt_index - 1
        else:
            position = 0 if alt_count == 1 else len(values)
        return _number(values[position]) if position < len(values) else None

    def _phase_set(self, variant: Any) -> int | None:
        if "PS" not in self.header.formats:
            return None
        ps = variant.format("PS")
        if ps is None or ps.dtype.kind not in "iu" or ps[self._column, 0] <= _VECTOR_END:
            return None
        return int(ps[self._column, 0])

    # -- structural variants -------------------------------------------------------------

    def _structural(
        self, variant: Any, alt: str, alt_index: int, line: int | None
    ) -> StructuralVariant | str | None:
        """The SV facts of this allele; None for a plain allele; a skip reason for one we drop."""
        if alt == "*":
            return "spanning_deletion"
        info = variant.INFO
        svtype = info.get("SVTYPE")
        sv_type = _sv_type(alt, svtype)
        if sv_type is None:
            return "unsupported_allele" if alt.startswith("<") or svtype is not None else None
        sv_len = _int(_per_allele(info.get("SVLEN"), alt_index, len(variant.ALT)))
        return StructuralVariant(
            sv_type=sv_type,
            end=self._end(variant, alt, sv_type, sv_len, line),
            sv_len=sv_len,
            ci_pos=_pair(info.get("CIPOS")),
            ci_end=_pair(info.get("CIEND")),
            copy_number=self._copy_number(variant),
            mate=alt if sv_type is SvType.BND and not alt.startswith("<") else None,
        )

    def _end(
        self, variant: Any, alt: str, sv_type: SvType, sv_len: int | None, line: int | None
    ) -> int:
        """INFO END; else POS + |SVLEN| for a symbolic extent (VCF 4.4); else POS+len(REF)-1."""
        pos = variant.POS
        end = _int(variant.INFO.get("END"))
        if end is None and alt.startswith("<") and sv_type in _EXTENT_TYPES and sv_len:
            end = pos + abs(sv_len)
        if end is None:
            end = pos + len(variant.REF) - 1
        if end < pos:
            raise MalformedRecordError(
                f"END {end} lies before POS {pos}", source=self.source, line=line, field="END"
            )
        return end

    def _copy_number(self, variant: Any) -> float | None:
        """FORMAT CN of the sample, else INFO CN."""
        if "CN" in self.header.formats:
            cn = variant.format("CN")
            value = None if cn is None else _number(cn[self._column, 0])
            if value is not None:
                return value
        value = variant.INFO.get("CN")
        return float(value) if isinstance(value, int | float) and value is not True else None


def _format_type(vcf: Any, key: str) -> str | None:
    """The Type htslib holds for a FORMAT key, as cyvcf2's format() would look it up.

    None if htslib lacks the key: format() then looks it up itself (and raises KeyError).
    """
    try:
        return str(vcf.get_header_type(key, order=[_HTSLIB_FORMAT_LINES])["Type"])
    except KeyError:
        return None


def _ad_total(ad_row: list[int] | None) -> int | None:
    """The total depth without DP: the sum of AD, unless a value is missing."""
    return sum(ad_row) if ad_row and min(ad_row) > _VECTOR_END else None


def _quality(qual: float | None) -> float | None:
    """QUAL as written: htslib holds it as float32 (1500.77 → 1500.77001953125).

    Seven significant digits undo that; a whole number under 10**7 is already exact.
    """
    if qual is None or (-1e7 < qual < 1e7 and qual.is_integer()):
        return qual
    return float(f"{qual:.7g}")


def _number(value: Any) -> float | None:
    """A FORMAT number as float; float32 values via their shortest text (0.3, not 0.300000012)."""
    if hasattr(value, "dtype") and value.dtype.kind in "iu":
        return None if value <= _VECTOR_END else float(value)
    return None if math.isnan(value) else float(str(value))


def _int(value: object) -> int | None:
    """An INFO value as int; keys the header does not declare arrive as strings."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    try:
        return int(str(value))
    except ValueError:
        return None


def _pair(value: object) -> tuple[int, int] | None:
    """A Number=2 INFO value (CIPOS, CIEND) as a pair of ints."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, tuple | list) or len(items) != 2:
        return None
    low, high = _int(items[0]), _int(items[1])
    return None if low is None or high is None else (low, high)


def _per_allele(value: object, index: int, count: int) -> object:
    """The value for ALT ``index`` (1-based) of a Number=A field, or a single shared value."""
    if isinstance(value, str) and "," in value:
        value = tuple(value.split(","))
    if isinstance(value, tuple | list):
        return value[index - 1] if len(value) == count else None
    return value


def _sv_type(alt: str, svtype: object) -> SvType | None:
    """SVTYPE, else the symbolic allele's (<DUP:TANDEM> → DUP, <CN0> → CNV), else BND."""
    if svtype is not None:
        return _SV_TYPES.get(str(svtype))
    if alt.startswith("<"):
        name = alt[1:-1].split(":", maxsplit=1)[0]
        return SvType.CNV if _COPY_NUMBER_ALLELE.fullmatch(name) else _SV_TYPES.get(name)
    breakend = "[" in alt or "]" in alt or (len(alt) > 1 and (alt[0] == "." or alt[-1] == "."))
    return SvType.BND if breakend else None


def _contig_key(name: str) -> str:
    """A contig name comparable across naming styles (chr1 and 1 alike)."""
    return normalize_chromosome(name) or name


class _RegionFilter:
    """Overlap test for records of an unindexed file read with regions."""

    def __init__(self, regions: Sequence[GenomicRegion]) -> None:
        self.starts: dict[str, list[int]] = {}
        self.ends: dict[str, list[int]] = {}
        for r in regions:  # merged: sorted and disjoint per contig
            self.starts.setdefault(r.chrom, []).append(r.start)
            self.ends.setdefault(r.chrom, []).append(r.end)

    def __call__(self, chromosome: str, start: int, end: int) -> bool:
        """True if [start, end) overlaps a region on the chromosome."""
        starts = self.starts.get(chromosome)
        if starts is None:
            return False
        i = bisect_left(starts, end) - 1
        return i >= 0 and self.ends[chromosome][i] > start
