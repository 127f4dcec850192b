"""Strict readers for the JSON documents of the replica format.

The index record, the snapshot manifest, the format marker and the lease are
small JSON objects. This module turns their bytes into a dict and reads typed
fields out of it, raising ``ReplicaFormatError`` that names the document and
the field path (``segments[3].times_us``) for anything missing or mistyped.
Unknown fields are ignored (forward compatibility within a format version).
``bool`` is never accepted where an int is expected.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from litetool.errors import ReplicaFormatError

MAX_I64 = (1 << 63) - 1
MIN_I64 = -(1 << 63)

T = TypeVar("T")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON here")


def parse_json_object(document: str, payload: bytes | bytearray | memoryview) -> dict:
    """Decode UTF-8 JSON whose top level must be an object."""
    try:
        # str() decodes straight from the buffer: no copy of a large payload.
        text = str(payload, "utf-8")
        value = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ReplicaFormatError(f"malformed {document}: not UTF-8 JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ReplicaFormatError(f"malformed {document}: expected a JSON object")
    return value


def dump_json(value: dict) -> bytes:
    """Compact, deterministic (field order as given) UTF-8 JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


class Fields:
    """Typed access to one JSON object, with error messages naming the path."""

    def __init__(self, document: str, value: object, path: str = "") -> None:
        if not isinstance(value, dict):
            raise ReplicaFormatError(f"malformed {document}: {path or 'value'} must be an object")
        self.document = document
        self.value = value
        self.path = path

    def _where(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str) -> ReplicaFormatError:
        return ReplicaFormatError(f"malformed {self.document}: {self._where(name)} {problem}")

    def has(self, name: str) -> bool:
        return name in self.value

    def raw(self, name: str) -> object:
        if name not in self.value:
            raise self.error(name, "is missing")
        return self.value[name]

    def integer(self, name: str, low: int = 0, high: int = MAX_I64) -> int:
        value = self.raw(name)
        if type(value) is not int:
            raise self.error(name, f"must be an integer, got {type(value).__name__}")
        if low > high:  # the bounds depend on other fields that leave no valid value
            raise self.error(
                name, f"cannot be valid: it must be at least {low} but at most {high}, got {value}"
            )
        if not low <= value <= high:
            raise self.error(name, f"must be in {low}..{high}, got {value}")
        return value

    def text(self, name: str, max_length: int = 1024) -> str:
        value = self.raw(name)
        if not isinstance(value, str):
            raise self.error(name, f"must be a string, got {type(value).__name__}")
        if len(value) > max_length:
            raise self.error(name, f"is longer than {max_length} characters")
        return value

    def checked(self, name: str, check: Callable[[object], T]) -> T:
        """Run a validator (e.g. ``validate_digest``) and name the field on failure."""
        value = self.raw(name)
        try:
            return check(value)
        except ReplicaFormatError as exc:
            raise self.error(name, f"is invalid ({exc})") from exc

    def items(self, name: str) -> list:
        value = self.raw(name)
        if not isinstance(value, list):
            raise self.error(name, f"must be a list, got {type(value).__name__}")
        return value

    def integers(self, name: str, low: int, high: int) -> list[int]:
        values = self.items(name)
        for index, value in enumerate(values):
            if type(value) is not int or not low <= value <= high:
                raise self.error(f"{name}[{index}]", f"must be an integer in {low}..{high}")
        return values

    def objects(self, name: str) -> list[Fields]:
        where = self._where(name)
        return [
            Fields(self.document, item, f"{where}[{index}]")
            for index, item in enumerate(self.items(name))
        ]
