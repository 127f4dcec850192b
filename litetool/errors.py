"""The litetool exception tree.

Every error a user can see is a ``LitetoolError``: it carries a one-line
``message``, an optional ``hint`` (what to do about it) and the process
``exit_code``. Only the CLI and the TUI render errors; everything else adds
context or propagates. Foreign exceptions are translated in one place per
foreign library (``litetool.storage.obstore_errors`` for obstore).

::

    LitetoolError                      exit 1
    +-- UsageError                     exit 2   bad command-line arguments
    +-- ConfigError                    exit 2   bad configuration file, value or environment
    +-- WalFormatError                 exit 1   bytes that cannot be a WAL at all
    +-- DatabaseError                  exit 1   the live database cannot be opened or followed
    +-- StorageError                   exit 1   anything about a replica
    |   +-- ObjectNotFound                      a key the index names is missing
    |   +-- CorruptObject                       bytes do not match their name or header
    |   +-- ReplicaFormatError                  unknown format version, bad record, hostile key
    |   +-- ReplicaConflict                     another writer owns the replica / generation
    |   |   +-- OwnRecordExists                 an earlier attempt of this writer was stored
    |   +-- StorageUnavailable                  retryable: unreachable, timed out, 5xx
    |   |   +-- StorageThrottled                the store asks for fewer requests
    |   +-- StorageMisconfigured                not retryable: credentials, permissions, no bucket
    +-- RestoreError                   exit 1
        +-- NoBackupFound                       nothing to restore
        +-- OutputExists                        refusing to overwrite the output
        +-- TargetUnreachable                   the requested restore point cannot be reached

``CorruptObject`` is deliberately *not* a subclass of ``ObjectNotFound``: no
handler for "missing" may ever swallow corruption, and a missing bucket is
``StorageMisconfigured``, not ``ObjectNotFound``: no handler for "no replica
yet" may ever take a wrong bucket name for an empty replica.

``retryable`` says whether trying the same request again can succeed without
anyone changing anything: True for ``StorageUnavailable``, False for
``StorageMisconfigured`` (someone must fix the credentials, the permissions,
the bucket name or the region; until then every attempt fails the same way).
"""

from __future__ import annotations


class LitetoolError(Exception):
    """Base class: a user-facing one-line message, a hint and an exit code."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def render(self) -> str:
        """One line for the terminal: ``error: message (hint: ...)``. Control
        characters (from a path or URL as typed) are escaped: always one line."""
        text = f"error: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return one_line(text)


def one_line(text: str) -> str:
    """*text* with line breaks and other control characters escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown(text: str) -> str:
    """User input as a message shows it: as typed, or quoted (``''``, ``' x'``,
    ``'a\\nb'``) when it is empty, has spaces at its ends or unprintable characters."""
    if text and text == text.strip() and text.isprintable():
        return text
    return repr(text)


class UsageError(LitetoolError):
    exit_code = 2


class ConfigError(LitetoolError):
    exit_code = 2


class WalFormatError(LitetoolError):
    """The bytes cannot be a WAL at all (bad magic, version or page size).

    A checksum or salt break is *not* this error: it is the normal end of the
    valid WAL, reported by the reader as a stop reason.
    """


class DatabaseError(LitetoolError):
    """The live database cannot be opened, switched to WAL mode or followed."""


class StorageError(LitetoolError):
    """Something about a replica went wrong."""


class ObjectNotFound(StorageError):
    def __init__(self, key: str, *, hint: str | None = None) -> None:
        super().__init__(f"object not found: {key}", hint=hint)
        self.key = key


class CorruptObject(StorageError):
    def __init__(self, key: str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(f"corrupt object {key}: {problem}", hint=hint)
        self.key = key
        self.problem = problem


class ReplicaFormatError(StorageError):
    """Unknown format version, malformed index record or hostile key."""


class ReplicaConflict(StorageError):
    """Another writer owns this replica or generation."""


class OwnRecordExists(ReplicaConflict):
    """The record's key holds a record this same writer stored in an earlier attempt
    whose answer it never got (a timeout or an error after the store had done the
    write). Not a conflict with anyone: the writer continues from what the replica
    holds (its tip) instead of publishing this record."""

    def __init__(self, message: str, *, seq: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.seq = seq


class StorageUnavailable(StorageError):
    """The store could not be reached, did not answer in time, failed the request
    (5xx) or throttled it (503 SlowDown, 429): retrying later may succeed."""

    retryable = True


class StorageThrottled(StorageUnavailable):
    """The store asked for fewer requests (503 SlowDown or ServerBusy, 429)."""


class StorageMisconfigured(StorageError):
    """The store answered, and retrying will not change the answer: credentials
    rejected, permission denied, no such bucket or container, wrong region, plain
    http without consent. Someone has to fix the configuration or the store.

    ``problem`` says what is wrong in words that are the same for every request
    it fails (the message also names the request): a running replica reports
    each problem once, not once per attempt."""

    retryable = False

    def __init__(self, message: str, *, problem: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problem = problem or message


class RestoreError(LitetoolError):
    pass


class NoBackupFound(RestoreError):
    pass


class OutputExists(RestoreError):
    pass


class TargetUnreachable(RestoreError):
    pass
