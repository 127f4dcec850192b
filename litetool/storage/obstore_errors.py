"""The one place where obstore exceptions become litetool errors.

Every I/O call in ``litetool.storage`` runs inside :func:`translate_errors`,
which maps, most specific first::

    FileNotFoundError (builtin; obstore's not-found)      -> ObjectNotFound
    PermissionDeniedError, UnauthenticatedError           -> StorageError + credentials hint
    GenericError: connection refused/reset, DNS, timeout,
      5xx or 429 after obstore's own retries               -> StorageUnavailable (retryable)
    GenericError "builder error" (http without allow_http) -> StorageError + allow_http hint
    NotImplementedError, NotSupportedError                 -> StorageError (store lacks it)
    any other obstore BaseError                            -> StorageError

``AlreadyExistsError`` and ``PreconditionError`` mean something only to the
caller that asked for a conditional write: it names them in ``expected`` and
they pass through untranslated. Messages carry the operation, the key and the
replica's display URL, and only the first line of obstore's text, with known
secrets (of 4 characters or more) replaced by ``***`` and URL query strings (SAS tokens, signatures)
dropped. When obstore's own text contained a secret, the chained cause is a
scrubbed copy so that no traceback can print the secret either.

obstore already retries connection errors, timeouts and 5xx with backoff
(configured in ``location.py``); no second blind retry layer is stacked here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from obstore.exceptions import (
    BaseError,
    GenericError,
    NotSupportedError,
    PermissionDeniedError,
    UnauthenticatedError,
)

from litetool.errors import ObjectNotFound, StorageError, StorageUnavailable

_URL_QUERY = re.compile(r"(https?://[^\s?\"'<>]*)\?[^\s\"'<>)]*")
_MAX_DETAIL = 400
_MIN_SECRET = 4

# Phrases obstore (reqwest / hyper / object_store) uses for failures that a
# later attempt may not have: the server could not be reached or was overloaded.
_UNAVAILABLE = (
    "error sending request",
    "kind: connect",
    "kind: timeout",
    "timed out",
    "connection refused",
    "connection reset",
    "connection closed",
    "broken pipe",
    "dns error",
    "status code: 5",
    "status: 5",
    "status code: 429",
    "status: 429",
)


def scrub(error: BaseException | str, secrets: Iterable[str]) -> str:
    """One safe line from a foreign error: no debug dump, no secrets, no query strings."""
    text = str(error)
    text = text.split("\n\nDebug source:", 1)[0]
    text = " ".join(text.split())
    # Very short "secrets" (test placeholders) would only mangle the text.
    for secret in sorted((s for s in secrets if len(s) >= _MIN_SECRET), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_QUERY.sub(r"\1?...", text)
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 3] + "..."
    return text or type(error).__name__


def _contains_secret(error: BaseException, secrets: Iterable[str]) -> bool:
    text = str(error)
    return any(len(secret) >= _MIN_SECRET and secret in text for secret in secrets)


def is_unavailable(error: BaseException) -> bool:
    """Whether a GenericError looks like a transient reachability failure."""
    text = str(error).lower()
    return any(marker in text for marker in _UNAVAILABLE)


def _translate(
    error: BaseException, operation: str, key: str, where: str, secrets: list[str]
) -> StorageError:
    detail = scrub(error, secrets)
    context = f"{operation} {key} on {where}"
    if isinstance(error, FileNotFoundError):
        return ObjectNotFound(key, hint=f"missing from {where}")
    if isinstance(error, PermissionDeniedError | UnauthenticatedError):
        return StorageError(
            f"{context}: permission denied ({detail})",
            hint="check the credentials (options or the store's environment variables) "
            "and the bucket or container permissions",
        )
    if isinstance(error, TimeoutError | ConnectionError) or (
        isinstance(error, GenericError) and is_unavailable(error)
    ):
        return StorageUnavailable(
            f"{context}: store unreachable ({detail})",
            hint="the store could not be reached; litetool will try again",
        )
    if isinstance(error, GenericError) and "builder error" in str(error):
        return StorageError(
            f"{context}: {detail}",
            hint="for a plain http endpoint give endpoint=http://... (or AWS_ALLOW_HTTP=true)",
        )
    if isinstance(error, NotImplementedError | NotSupportedError):
        return StorageError(f"{context}: not supported by this store ({detail})")
    return StorageError(f"{context}: {detail}")


@contextmanager
def translate_errors(
    operation: str,
    key: str,
    *,
    where: str,
    secrets: Iterable[str] = (),
    expected: tuple[type[BaseException], ...] = (),
) -> Iterator[None]:
    """Run an obstore call, turning its exceptions into litetool errors.

    *where* is the replica's display URL (never its secrets); *expected*
    exception classes (e.g. ``AlreadyExistsError``) pass through unchanged.
    """
    try:
        yield
    except expected:
        raise
    except (BaseError, FileNotFoundError, NotImplementedError, TimeoutError, ConnectionError) as e:
        secret_list = [secret for secret in secrets if secret]
        translated = _translate(e, operation, key, where, secret_list)
        if _contains_secret(e, secret_list):
            raise translated from type(e)(scrub(e, secret_list))
        raise translated from e
