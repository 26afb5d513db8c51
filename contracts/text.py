"""Which characters a string from outside may hold.

Why one place: three things downstream break on the same characters, each differently. An
object store's path parser refuses control characters in keys, PostgreSQL cannot store NUL in
``text`` or ``jsonb``, and a lone surrogate (``"\\ud800"`` is valid JSON) cannot be encoded
as UTF-8 at all. Each used to surface as an HTTP 500 deep inside a route; checking at the edge
turns them into a 422 that names the field.
"""

from __future__ import annotations

import unicodedata

__all__ = ["TEXT_WHITESPACE", "bad_character"]

#: Control characters free text (descriptions, arguments, file contents) may hold.
TEXT_WHITESPACE = frozenset("\t\n\r")


def bad_character(value: str, *, allow: frozenset[str] = frozenset()) -> str | None:
    """A description of the first character of ``value`` that is not allowed, or ``None``.

    Refused: NUL, every other control character (C0, DEL and C1) unless listed in ``allow``,
    and unpaired surrogates. The description names the character and its position, so a user
    can find it in a long string.
    """
    if value.isprintable():  # fast path: no control character, no surrogate
        return None
    for i, ch in enumerate(value):
        code = ord(ch)
        if ch in allow:
            continue
        if code == 0:
            return f"a control character (NUL, \\x00) at position {i}"
        category = unicodedata.category(ch)
        if category == "Cc":
            return f"a control character ({ch!r}) at position {i}"
        if category == "Cs":
            return f"an unpaired surrogate (\\u{code:04x}) at position {i}"
    return None
