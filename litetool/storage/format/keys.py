"""Replica keys: the one builder and the one parser (docs/FORMAT.md section 1).

Below a replica root, litetool writes exactly these keys::

    litetool-replica.json                         format marker
    lease.json                                    writer lease
    objects/<d0d1>/<digest>                       content-addressed object
    generations/<generation>/index/<seq>          index record
    generations/<generation>/compacted/<seq>      compacted index record (format 1: 0..seq)
    generations/<generation>/compacted/<seq>-<lo> compacted index record (format 2: lo..seq)

``<digest>`` is 64 lowercase hex digits (BLAKE3-256 of the stored bytes) and
``<d0d1>`` its first two; ``<generation>``, ``<seq>`` and ``<lo>`` are 16
lowercase hex digits each, with ``lo <= seq``. A generation id is its creation
time in milliseconds since the Unix epoch (12 hex digits) followed by 4 random
hex digits, so generation ids sort by creation time.

Every key read from a replica goes through :func:`parse_key`, which accepts
only the shapes above (ASCII, exact lengths, no ``..``, no leading ``/``) and
raises ``ReplicaFormatError`` for anything else. Callers that list a replica
ignore keys that do not parse; nothing else is ever read or deleted.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from enum import Enum

from litetool.errors import ReplicaFormatError

MARKER_KEY = "litetool-replica.json"
LEASE_KEY = "lease.json"
OBJECTS_PREFIX = "objects/"
GENERATIONS_PREFIX = "generations/"

DIGEST_HEX_LENGTH = 64
GENERATION_ID_LENGTH = 16
SEQ_HEX_LENGTH = 16
MAX_SEQ = (1 << 64) - 1
#: Creation time field of a generation id: 12 hex digits of milliseconds.
MAX_GENERATION_TIME_MS = (1 << 48) - 1

# ``[0-9a-f]`` and not ``\d`` / ``\w``: those match non-ASCII digits and letters.
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
_GENERATION_RE = re.compile(r"[0-9a-f]{16}")
_SEQ_RE = re.compile(r"[0-9a-f]{16}")
_OBJECT_KEY_RE = re.compile(r"objects/([0-9a-f]{2})/([0-9a-f]{64})")
_RECORD_KEY_RE = re.compile(
    r"generations/([0-9a-f]{16})/(index|compacted)/([0-9a-f]{16})(?:-([0-9a-f]{16}))?"
)


class KeyKind(Enum):
    MARKER = "marker"
    LEASE = "lease"
    OBJECT = "object"
    INDEX_RECORD = "index"
    COMPACTED_RECORD = "compacted"


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """What a valid replica key names.

    ``digest`` is set for objects; ``generation`` and ``seq`` for records, and
    ``first_seq``: the first record a record stands for (``seq`` itself for an
    index record; None for a format-1 compacted key, which covers ``0..seq``).
    """

    kind: KeyKind
    key: str
    digest: str | None = None
    generation: str | None = None
    seq: int | None = None
    first_seq: int | None = None


def _hostile(what: str, value: object) -> ReplicaFormatError:
    # repr() keeps control characters and odd unicode visible and on one line;
    # the cap keeps a hostile megabyte-long key out of the message.
    shown = repr(value)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return ReplicaFormatError(f"invalid {what}: {shown}")


def validate_digest(digest: object) -> str:
    """Return *digest* if it is 64 lowercase hex digits, else ReplicaFormatError."""
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise _hostile("object digest", digest)
    return digest


def validate_generation(generation: object) -> str:
    """Return *generation* if it is a well-formed generation id."""
    if not isinstance(generation, str) or not _GENERATION_RE.fullmatch(generation):
        raise _hostile("generation id", generation)
    return generation


def validate_seq(seq: object) -> int:
    """Return *seq* if it is an int in ``0 .. 2**64-1`` (bool is not an int here)."""
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        raise _hostile("record sequence number", seq)
    return seq


def object_key(digest: str) -> str:
    """``objects/<d0d1>/<digest>``."""
    validate_digest(digest)
    return f"{OBJECTS_PREFIX}{digest[:2]}/{digest}"


def generation_prefix(generation: str) -> str:
    """``generations/<generation>/`` (with the trailing slash, for listing)."""
    validate_generation(generation)
    return f"{GENERATIONS_PREFIX}{generation}/"


def index_record_key(generation: str, seq: int) -> str:
    """``generations/<generation>/index/<seq>``."""
    return f"{generation_prefix(generation)}index/{validate_seq(seq):016x}"


def compacted_record_key(generation: str, seq: int, first_seq: int | None = None) -> str:
    """``generations/<generation>/compacted/<seq>-<first_seq>`` (format 2), or the
    format-1 ``.../compacted/<seq>`` (covering ``0..seq``) when *first_seq* is None."""
    key = f"{generation_prefix(generation)}compacted/{validate_seq(seq):016x}"
    if first_seq is None:
        return key
    if validate_seq(first_seq) > seq:
        raise ValueError(f"a compacted record cannot cover {first_seq}..{seq}")
    return f"{key}-{first_seq:016x}"


def record_key(generation: str, seq: int, *, compacted: bool, first_seq: int | None = None) -> str:
    """The key of an index record or of a compacted record (see
    :func:`compacted_record_key` for *first_seq*)."""
    if compacted:
        return compacted_record_key(generation, seq, first_seq)
    return index_record_key(generation, seq)


def parse_key(key: object) -> ParsedKey:
    """Classify a key read from a replica; anything unknown is ReplicaFormatError."""
    if not isinstance(key, str):
        raise _hostile("replica key", key)
    if key == MARKER_KEY:
        return ParsedKey(KeyKind.MARKER, key)
    if key == LEASE_KEY:
        return ParsedKey(KeyKind.LEASE, key)
    match = _OBJECT_KEY_RE.fullmatch(key)
    if match is not None:
        fanout, digest = match.groups()
        if digest[:2] != fanout:
            raise _hostile("object key (fan-out directory does not match digest)", key)
        return ParsedKey(KeyKind.OBJECT, key, digest=digest)
    match = _RECORD_KEY_RE.fullmatch(key)
    if match is not None:
        generation, kind, seq_hex, first_hex = match.groups()
        seq = int(seq_hex, 16)
        if kind == "index":
            if first_hex is not None:
                raise _hostile("index record key", key)
            return ParsedKey(
                KeyKind.INDEX_RECORD, key, generation=generation, seq=seq, first_seq=seq
            )
        first_seq = None if first_hex is None else int(first_hex, 16)
        if first_seq is not None and first_seq > seq:
            raise _hostile("compacted record key (covers a range backwards)", key)
        return ParsedKey(
            KeyKind.COMPACTED_RECORD, key, generation=generation, seq=seq, first_seq=first_seq
        )
    raise _hostile("replica key", key)


def try_parse_key(key: object) -> ParsedKey | None:
    """:func:`parse_key`, but ``None`` for keys that are not ours (listings skip those)."""
    try:
        return parse_key(key)
    except ReplicaFormatError:
        return None


def new_generation_id(now_ms: int | None = None, random_suffix: int | None = None) -> str:
    """A fresh generation id: 12 hex digits of creation time (ms) + 4 random hex digits.

    *now_ms* and *random_suffix* are injectable for deterministic tests and fixtures.
    """
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    if random_suffix is None:
        random_suffix = secrets.randbits(16)
    if type(now_ms) is not int or not 0 <= now_ms <= MAX_GENERATION_TIME_MS:
        raise ValueError(f"generation time out of range: {now_ms!r}")
    if type(random_suffix) is not int or not 0 <= random_suffix <= 0xFFFF:
        raise ValueError(f"generation suffix out of range: {random_suffix!r}")
    return f"{now_ms:012x}{random_suffix:04x}"


def parse_generation_time_ms(generation: str) -> int:
    """The creation time (ms since the Unix epoch) encoded in a generation id."""
    return int(validate_generation(generation)[:12], 16)
