"""The one place where obstore exceptions become litetool errors.

Every obstore call (``obstore_store``) runs inside :func:`translate_errors`,
which maps, most specific first::

    S3 credentials from instance metadata failed
      (its /latest/api/token or /latest/meta-data/ URL)    -> StorageMisconfigured (no credentials)
    not found with NoSuchBucket / ContainerNotFound        -> StorageMisconfigured (no bucket)
    FileNotFoundError (builtin; obstore's not-found)       -> ObjectNotFound
    PermissionDeniedError, UnauthenticatedError, or any
      HTTP 401/403                                         -> StorageMisconfigured (credentials)
    S3 wrong region (PermanentRedirect,
      AuthorizationHeaderMalformed), InvalidBucketName     -> StorageMisconfigured
    GenericError "builder error" (http without allow_http) -> StorageMisconfigured + hint
    connection refused/reset, DNS, timeout                 -> StorageUnavailable "unreachable"
    503 SlowDown / ServerBusy, 429 (after obstore's retries) -> StorageThrottled (retryable)
    other 5xx after obstore's own retries                  -> StorageUnavailable "failing"
    NotImplementedError, NotSupportedError                 -> StorageError (store lacks it)
    any other obstore BaseError                            -> StorageError

``StorageMisconfigured`` is not retryable (``retryable = False``): the store
answered, and the same request will get the same answer until someone fixes
the configuration. Off EC2, the instance metadata endpoint that obstore asks
for S3 credentials when it has none answers 403 or not at all; that is "no S3
credentials found", not a permission problem of the bucket nor an outage
(with ``AWS_EC2_METADATA_DISABLED=true`` it is never asked:
``aws_environment``). A missing bucket is never ``ObjectNotFound``: a reader
that takes "not found" for "no replica yet" (``restore --if-replica-exists``)
must not take a misspelled bucket for an empty one. (A HEAD has no body, so a
HEAD in a missing bucket still looks like a missing object.)

``AlreadyExistsError`` and ``PreconditionError`` mean something only to the
caller that asked for a conditional write: it names them in ``expected`` and
they pass through untranslated. Messages carry the operation, the key and the
replica's display URL, what went wrong in words (with the HTTP status and the
store's error code when there is one), and only the first line of obstore's
text, with known secrets (of 4 characters or more) replaced by ``***`` and
URL query strings (SAS tokens, signatures) dropped. When obstore's own text
contained a secret, the chained cause is a scrubbed copy so that no traceback
can print the secret either.

obstore already retries connection errors, timeouts and 5xx with backoff
(configured in ``obstore_store.py``); no second blind retry layer is stacked here.
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

from litetool.errors import (
    ObjectNotFound,
    StorageError,
    StorageMisconfigured,
    StorageThrottled,
    StorageUnavailable,
)
from litetool.storage.aws_environment import CREDENTIAL_CHOICES, NO_CREDENTIALS

_URL_QUERY = re.compile(r"(https?://[^\s?\"'<>]*)\?[^\s\"'<>)]*")
_STATUS = re.compile(r"status(?: code)?: (\d{3})")
_CODE = re.compile(r"<Code>\s*([A-Za-z0-9.]+)\s*</Code>")
_AZURE_CODE = re.compile(r"x-ms-error-code:\s*([A-Za-z0-9.]+)", re.IGNORECASE)
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


# Error codes (S3's <Code>, Azure's x-ms-error-code) that mean throttling.
_THROTTLING_CODES = frozenset(
    {
        "SlowDown",
        "ServerBusy",
        "TooManyRequests",
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
    }
)
_NO_BUCKET_CODES = frozenset({"NoSuchBucket", "ContainerNotFound"})
# Answers that are the same however often the request is tried.
_WRONG_REGION_CODES = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed"})
_BAD_BUCKET_CODES = frozenset({"InvalidBucketName", "InvalidResourceName"})
_CREDENTIALS_HINT = (
    "check the credentials (options, the store's environment variables or AWS profile) and "
    "the bucket or container permissions"
)
# The paths of EC2's instance metadata service (IMDSv2 token, IMDSv1 credentials),
# whatever its address (169.254.169.254, fd00:ec2::254, AWS_METADATA_ENDPOINT).
_INSTANCE_METADATA = re.compile(r"(https?://\S+?)/latest/(?:api/token|meta-data/)")


def http_status(error: BaseException) -> int | None:
    """The HTTP status obstore reports for the (last) failed attempt, if any."""
    found = _STATUS.findall(str(error))
    return int(found[-1]) if found else None


def error_code(error: BaseException) -> str | None:
    """The store's own error code (S3 ``<Code>``, Azure ``x-ms-error-code``), if any."""
    text = str(error)
    found = _CODE.findall(text) or _AZURE_CODE.findall(text)
    return found[-1] if found else None


def _status_words(status: int | None, code: str | None) -> str:
    parts = [f"HTTP {status}" if status is not None else "", code or ""]
    return " ".join(part for part in parts if part)


def _unreachable_reason(text: str) -> str:
    lowered = text.lower()
    if "connectionrefused" in lowered or "connection refused" in lowered:
        return "connection refused"
    if "dns error" in lowered or "failed to lookup" in lowered:
        return "DNS lookup failed"
    if "kind: timeout" in lowered or "timedout" in lowered or "timed out" in lowered:
        return "no answer within the request timeout"
    if "reset" in lowered or "closed" in lowered or "broken pipe" in lowered:
        return "connection lost"
    return "the request could not be sent"


def _misconfigured(
    error: BaseException, context: str, detail: str, bucket: str
) -> StorageMisconfigured | None:
    """The answers no retry changes, or None."""
    if isinstance(error, GenericError) and "builder error" in str(error):
        return StorageMisconfigured(
            f"{context}: {detail}",
            problem="plain http is not allowed",
            hint="for a plain http endpoint give endpoint=http://... (or AWS_ALLOW_HTTP=true)",
        )
    if not isinstance(error, BaseError | FileNotFoundError):
        return None
    status, code = http_status(error), error_code(error)
    metadata = _INSTANCE_METADATA.search(str(error))
    if metadata is not None:
        answer = f"HTTP {status}" if status is not None else _unreachable_reason(str(error))
        return StorageMisconfigured(
            f"{context}: {NO_CREDENTIALS} ({CREDENTIAL_CHOICES}); the instance metadata "
            f"endpoint {metadata.group(1)} gave none ({answer})",
            problem=NO_CREDENTIALS,
            hint="off EC2, set AWS_EC2_METADATA_DISABLED=true: litetool then never asks it",
        )
    if code in _NO_BUCKET_CODES:
        kind = "container" if code == "ContainerNotFound" else "bucket"
        return StorageMisconfigured(
            f"{context}: the {kind} {bucket} does not exist ({code})",
            problem=f"the {kind} {bucket} does not exist",
            hint="create it, or correct the replica URL; litetool does not create buckets",
        )
    if isinstance(error, PermissionDeniedError | UnauthenticatedError) or status in (401, 403):
        words = _status_words(status, code)
        return StorageMisconfigured(
            f"{context}: permission denied{f' ({words})' if words else ''}: {detail}",
            problem=f"permission denied ({words})",
            hint=_CREDENTIALS_HINT,
        )
    if code in _WRONG_REGION_CODES or "incorrectly configured region" in str(error):
        words = _status_words(status, code)
        return StorageMisconfigured(
            f"{context}: wrong region for bucket {bucket}{f' ({words})' if words else ''}: "
            f"{detail}",
            problem=f"wrong region for bucket {bucket}",
            hint="set region (or AWS_REGION) to the bucket's region",
        )
    if code in _BAD_BUCKET_CODES:
        return StorageMisconfigured(
            f"{context}: invalid bucket or container name {bucket} ({code})",
            problem=f"invalid bucket or container name {bucket}",
            hint="correct the replica URL",
        )
    return None


def _unavailable(error: BaseException, context: str, detail: str) -> StorageUnavailable | None:
    """Failures a later attempt may not have, or None."""
    if isinstance(error, TimeoutError | ConnectionError):
        return StorageUnavailable(
            f"{context}: store unreachable: {_unreachable_reason(repr(error))} ({detail})",
            hint="the store could not be reached; litetool will try again",
        )
    if not (isinstance(error, GenericError) and is_unavailable(error)):
        return None
    status, code = http_status(error), error_code(error)
    if status == 429 or code in _THROTTLING_CODES:
        return StorageThrottled(
            f"{context}: the store is throttling requests ({_status_words(status, code)}): "
            f"{detail}",
            hint="the store asks for fewer requests; litetool will try again with backoff "
            "(a longer sync-interval makes fewer requests)",
        )
    if status is not None and status >= 500:
        return StorageUnavailable(
            f"{context}: the store failed the request ({_status_words(status, code)}): {detail}",
            hint="an error on the store's side; litetool will try again",
        )
    return StorageUnavailable(
        f"{context}: store unreachable: {_unreachable_reason(str(error))} ({detail})",
        hint="the store could not be reached; litetool will try again",
    )


def _translate(
    error: BaseException, operation: str, key: str, where: str, bucket: str, secrets: list[str]
) -> StorageError:
    detail = scrub(error, secrets)
    context = f"{operation} {key} on {where}"
    misconfigured = _misconfigured(error, context, detail, bucket)
    if misconfigured is not None:
        return misconfigured
    if isinstance(error, FileNotFoundError):
        return ObjectNotFound(key, hint=f"missing from {where}")
    unavailable = _unavailable(error, context, detail)
    if unavailable is not None:
        return unavailable
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
    bucket: str = "",
) -> Iterator[None]:
    """Run an obstore call, turning its exceptions into litetool errors.

    *where* is the replica's display URL (never its secrets), *bucket* its
    bucket or container name; *expected* exception classes (e.g.
    ``AlreadyExistsError``) pass through unchanged.
    """
    try:
        yield
    except expected:
        raise
    except (BaseError, FileNotFoundError, NotImplementedError, TimeoutError, ConnectionError) as e:
        secret_list = [secret for secret in secrets if secret]
        translated = _translate(e, operation, key, where, bucket or where, secret_list)
        if _contains_secret(e, secret_list):
            raise translated from type(e)(scrub(e, secret_list))
        raise translated from e
