"""Types of the C hot path (adapter/_native.c)."""

from collections.abc import Callable, Sequence
from typing import Any

def describe(
    accession: str, pos: int, ref: str, alt: str
) -> tuple[str, int, int, str, str | None] | None: ...
def sha1(data: bytes, portable: bool, /) -> bytes: ...
def lines(body: bytes, tabs: int, marks_after: int, /) -> tuple[bytes, bytes, bytes] | None: ...

class VariantIds:
    def __init__(self, prefix: bytes) -> None: ...
    def variant(
        self, chrom: str, pos: int, ref: str, alt: str, end: int | None
    ) -> tuple[str, bytes]: ...

class Lane:
    fallback: Callable[..., tuple[bytes, bytes]]
    def __init__(
        self,
        ids: VariantIds,
        changes: dict[str, Any],
        dumps: Callable[[Any], bytes],
        fallback: Callable[..., tuple[bytes, bytes]],
        inspect: Callable[[str, Any, list[Any], list[Any]], None] | None,
        consequences: Consequences | None = None,
    ) -> None: ...
    def __call__(self, call: Any, genes: Sequence[Any] = ()) -> tuple[bytes, bytes]: ...
    def place(self, chromosome: str, accession: str) -> None: ...
    def learn(
        self, key: tuple[Any, ...], shape: Any, pieces: tuple[bytes, ...], before: int, after: int
    ) -> None: ...

class Consequences:
    def __init__(
        self,
        prefix: bytes,
        references: str,
        ensembl: str,
        refseq: str,
        make: Callable[
            [str | None, bool, bool, tuple[str, ...], int], tuple[tuple[bytes, ...], int]
        ],
        dumps: Callable[[Any], bytes],
    ) -> None: ...
    def __call__(self, variant: str, consequences: Sequence[Any]) -> tuple[bytes, bytes]: ...

class Entries:
    def __init__(
        self,
        width: int,
        allele: int,
        fields: tuple[int, ...],
        af: tuple[int, ...],
        make: type,
        slots: tuple[str, ...],
        impacts: dict[str, Any],
        unquote: Callable[[str], str],
        order: tuple[int, ...],
        alleles: type,
        allele_slots: tuple[str, ...],
        vep: bool,
    ) -> None: ...
    def __call__(self, raw: str, ref: str, alts: Sequence[str]) -> tuple[Any, ...] | None: ...
