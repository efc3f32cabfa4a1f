"""Milvus boolean expressions: string literals that stand for any Unicode text, lists and conjunctions.

Milvus parses a double-quoted literal with backslash escapes for the quote, the backslash, and
newline, carriage return and tab; it takes every other character as it is. JSON's `\\uXXXX`
escapes are not understood (`unknown escape sequence \\u`), so `json.dumps` must not quote a
value that is not ASCII. Checked on Milvus Lite 3.2 and the Milvus 2.3 server.
"""

from __future__ import annotations

_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def quote(text: str) -> str:
    """`text` as a Milvus string literal, matching exactly that text."""
    return '"' + text.translate(_ESCAPES) + '"'


def in_list(field: str, values: list[str], negate: bool = False) -> str:
    """`field in [...]` (or `not in`) over string values."""
    return f"{field} {'not in' if negate else 'in'} [{', '.join(map(quote, values))}]"


def all_of(*expressions: str) -> str:
    """The conjunction of the non-empty expressions."""
    return " and ".join(f"({e})" for e in expressions if e)
