"""Text from the data made safe to show: every character that could act on a terminal, a
document or a reader's eye (controls, format and bidi characters, line separators, lone
surrogates) becomes a visible escape such as ``\\x1b``, ``\\n`` or ``\\u202e``.

Everything a view shows of tokens, file names, keys or header cells goes through :func:`visible`
(or :func:`label`, which also shortens); data formats (JSON, CSV, NPZ) keep the exact text.
"""

from __future__ import annotations

import unicodedata

# Unicode categories shown as escapes: controls, format (bidi overrides, zero-width), surrogates,
# line and paragraph separators.
_ESCAPED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: str) -> str:
    """``text`` with each control or format character replaced by its escape."""
    if text.isprintable():  # the common case: nothing to replace
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _ESCAPED else c for c in text)


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last being ``…`` when something was cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def label(text: str, limit: int = 40) -> str:
    """A token or name as a view shows it: visible, at most ``limit`` characters. Only the start
    of a long text is examined, so a megabyte token costs no more than a short one."""
    return shorten(visible(text[: limit + 1]), limit)
