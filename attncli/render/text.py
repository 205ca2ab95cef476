"""Text from the data (tokens, file names) shown as the characters it is.

Tokens may hold rich markup (``[bold]``), escape sequences or other control characters. A plain
``str`` given to a rich table is parsed as markup, and a raw ESC reaches the terminal; these
helpers make both impossible: markup stays literal in a :class:`rich.text.Text`, and characters
that are not printable are written as their escapes (``\\x1b``, ``\\n``).
"""

from __future__ import annotations

from rich.text import Text


def literal(s: str) -> str:
    """``s`` with every non-printable character written as its Python escape."""
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)


def label(s: str, style: str = "") -> Text:
    """``s`` as a Text: never parsed as markup, control characters escaped."""
    return Text(literal(s), style=style)
