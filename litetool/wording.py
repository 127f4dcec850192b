"""How litetool writes a count in a message: ``1 object``, ``2 objects``, ``0 objects``.

One home for plurals, so that no message says ``1 restore points``: every
message (CLI, TUI, log) that prints a count next to a noun goes through
:func:`plural`. Pure, and free of imports (``litetool --help`` stays fast).
"""

from __future__ import annotations


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """*count* and *noun*, the noun in the plural unless *count* is exactly 1
    (``plural_noun``, else *noun* + ``s``). Thousands are not separated, as txids
    are not."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {plural_noun if plural_noun is not None else noun + 's'}"
