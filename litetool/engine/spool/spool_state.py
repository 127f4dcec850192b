"""The spool's state: the generation being captured and where it began, as one value.

Pure: no files (``litetool.engine.spool.spool`` reads and writes ``state.json``
atomically), no asyncio, no sqlite3 (an import contract holds it to that).

``state.json`` holds one JSON object::

    spool_format    SPOOL_FORMAT; a spool of another format is discarded
    format          1 (the object's own layout)
    generation      the engine generation captured (16 hex digits)
    reason          why it started ("first run", or the proof that failed)
    created_us      when it started (its base's commit time)
    page_size       the database's page size
    base_txid       the txid of its base, the image its snapshot shows (0)
    base_position   the WAL position of the base ({header, offset, checksum}),
                    null when the WAL held no frames
    base_db_pages   the database's size in pages at the base

The records of the spool carry every later position; the base is what capture
resumes from while the spool holds no record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litetool.engine.spool.spool_codec import WalPosition

SPOOL_FORMAT = 3
STATE_FORMAT = 1


class SpoolStateError(ValueError):
    """``state.json`` does not hold a spool state (names the field)."""


@dataclass(frozen=True, slots=True)
class SpoolState:
    """The generation being captured, and its base."""

    generation: str
    reason: str
    created_us: int
    page_size: int
    base_txid: int
    base_position: WalPosition | None
    base_db_pages: int

    def to_json(self) -> dict[str, Any]:
        position = self.base_position
        return {
            "spool_format": SPOOL_FORMAT,
            "format": STATE_FORMAT,
            "generation": self.generation,
            "reason": self.reason,
            "created_us": self.created_us,
            "page_size": self.page_size,
            "base_txid": self.base_txid,
            "base_position": None
            if position is None
            else {
                "header": position.header.hex(),
                "offset": position.offset,
                "checksum": list(position.checksum),
            },
            "base_db_pages": self.base_db_pages,
        }

    @classmethod
    def from_json(cls, value: object) -> SpoolState:
        """The state in a parsed ``state.json`` of this spool format; raises
        ``SpoolStateError`` naming the first field that is missing or wrong."""
        if not isinstance(value, dict):
            raise SpoolStateError("not a JSON object")
        position = value.get("base_position")
        return cls(
            generation=_field(value, "generation", str),
            reason=_field(value, "reason", str),
            created_us=_field(value, "created_us", int),
            page_size=_field(value, "page_size", int),
            base_txid=_field(value, "base_txid", int),
            base_position=None if position is None else _position(position),
            base_db_pages=_field(value, "base_db_pages", int),
        )


def is_current_format(value: object) -> bool:
    """Whether a parsed ``state.json`` is of this spool format."""
    return isinstance(value, dict) and value.get("spool_format") == SPOOL_FORMAT


_KIND_WORDS = {int: "a whole number", str: "a string"}


def _field(value: dict, name: str, kind: type) -> Any:
    item = value.get(name)
    if not isinstance(item, kind) or isinstance(item, bool):
        raise SpoolStateError(f"field {name!r} is missing or not {_KIND_WORDS[kind]}")
    if kind is int and item < 0:
        raise SpoolStateError(f"field {name!r} is negative")
    return item


def _position(value: object) -> WalPosition:
    if not isinstance(value, dict):
        raise SpoolStateError("field 'base_position' is not an object")
    try:
        header = bytes.fromhex(_field(value, "header", str))
    except ValueError:
        raise SpoolStateError("field 'base_position.header' is not hex") from None
    checksum = value.get("checksum")
    if (
        len(header) != 32
        or not isinstance(checksum, list)
        or len(checksum) != 2
        or not all(_is_word(c) for c in checksum)
    ):
        raise SpoolStateError("field 'base_position' is not a WAL position")
    return WalPosition(header, _field(value, "offset", int), (checksum[0], checksum[1]))


def _is_word(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 32
