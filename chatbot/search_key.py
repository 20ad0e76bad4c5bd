"""Text folded for searching: "Chloe" finds "Chloé", "orsted" finds "Ørsted".

Names are stored with a folded copy (a ``search_key`` column, kept in step by the models) and
searches fold the query the same way, so matching ignores accents and case on SQLite and
PostgreSQL alike, without database extensions or collations.
"""

from __future__ import annotations

import unicodedata

# Letters that Unicode does not decompose into a base letter plus marks.
_NO_DECOMPOSITION = str.maketrans(
    {"ø": "o", "đ": "d", "ł": "l", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d"}
)


def fold(text: str) -> str:
    """``text`` without accents (NFKD, combining marks dropped), case-folded, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.translate(_NO_DECOMPOSITION).split())


def like_pattern(query: str) -> str:
    """A LIKE pattern finding the folded ``query`` anywhere (``\\`` escapes % and _)."""
    q = fold(query).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{q}%"
