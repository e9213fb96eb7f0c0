"""The tab-separated files of the adapter's own formats (knowledge, pharmacogenomic calls).

``#`` lines are comments, and those of the form ``# key: value`` say something of the file
(its name, its version); blank lines are skipped; the first other line names the columns,
exactly; every line after it is a row. Each reader checks its rows' values itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["Table", "TableError", "read_table"]


class TableError(Exception):
    """The file is no table of these columns; ``line`` is 1-based, None for the whole file.
    Readers turn it into their own :class:`adapter.errors.InputError`."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


@dataclass(frozen=True, slots=True)
class Table:
    """What the comments said (``key: value``) and the rows, each with its line number."""

    meta: dict[str, str] = field(default_factory=dict)
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


def read_table(lines: Iterable[str], columns: Sequence[str]) -> Table:
    """The table in ``lines``, whose header must name exactly ``columns``."""
    table, header = Table(), False
    for number, text in enumerate(lines, 1):
        if text.startswith("#"):
            key, sep, value = text.lstrip("# ").partition(":")
            if sep and key.strip():
                table.meta.setdefault(key.strip(), value.strip())
            continue
        if not text.strip():
            continue
        fields = [f.strip() for f in text.split("\t")]
        if header:
            table.rows.append((number, fields))
        elif tuple(fields) == tuple(columns):
            header = True
        else:
            raise TableError(number, f"the header must be: {' '.join(columns)}")
    if not header:
        raise TableError(None, "no header line")
    return table
