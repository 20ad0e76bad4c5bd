"""Reading the CSV files schools export (rosters, term dates): comma, semicolon or tab
separated (spreadsheets in much of Europe save with semicolons), with a header row."""

from __future__ import annotations

import csv
import io

DELIMITERS = (",", ";", "\t")


def delimiter(header_line: str) -> str:
    """The separator the header row uses most (a comma when it has none)."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_rows(
    text: str, error: type[ValueError] = ValueError
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-blank rows, each with its line number in the file."""
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text), delimiter=delimiter(first))
    try:
        header = next(reader)
    except StopIteration:
        raise error("the file is empty") from None
    rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    return header, rows


def header_key(name: str) -> str:
    """A header as it is matched: lower-case, ``_`` and ``-`` as spaces, no BOM."""
    return " ".join(
        name.strip().lstrip("\ufeff").lower().replace("_", " ").replace("-", " ").split()
    )
