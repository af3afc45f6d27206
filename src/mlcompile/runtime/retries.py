"""Retrying calls to a platform's API: transient failures (throttling, 5xx, timeouts) are
retried with jittered exponential backoff, and creates are sent once and looked up on a retry
(a blind retry of a POST could apply it twice). Used by `deploy` and by the runtime's steps
that call a platform (starting a pipeline run), so it lives in the runtime."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


# Deploy's retry and timeout knobs (environment): attempts per call, the first backoff delay
# and its cap (seconds; doubled per attempt, jittered, at least the server's Retry-After up to
# the cap), and the read timeout of every request a platform client sends.
ATTEMPTS_ENV = "MLCOMPILE_DEPLOY_ATTEMPTS"
BACKOFF_ENV = "MLCOMPILE_DEPLOY_BACKOFF"
MAX_BACKOFF_ENV = "MLCOMPILE_DEPLOY_MAX_BACKOFF"
TIMEOUT_ENV = "MLCOMPILE_DEPLOY_TIMEOUT"


@dataclass(frozen=True)
class RetrySettings:
    attempts: int = 5
    first_delay: float = 0.5
    max_delay: float = 8.0
    timeout: float = 60.0  # seconds a platform may take to answer one request

    @classmethod
    def from_env(cls) -> RetrySettings:
        import os

        def number(name: str, default: float) -> float:
            text = os.environ.get(name)
            try:
                return float(text) if text else default
            except ValueError:
                from mlcompile.runtime.contract import UsageError

                raise UsageError(f"{name}={text!r} is not a number") from None

        defaults = cls()
        return cls(
            attempts=max(1, int(number(ATTEMPTS_ENV, defaults.attempts))),
            first_delay=max(0.0, number(BACKOFF_ENV, defaults.first_delay)),
            max_delay=max(0.0, number(MAX_BACKOFF_ENV, defaults.max_delay)),
            timeout=max(0.1, number(TIMEOUT_ENV, defaults.timeout)),
        )


TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# what the SDKs raise for a connection refused, dropped or timed out (urllib3, requests,
# botocore, azure-core, http.client), matched by name: the SDKs are optional imports
_TRANSIENT_TYPES = frozenset({
    "ProtocolError", "MaxRetryError", "ReadTimeoutError", "ConnectTimeoutError", "NewConnectionError",
    "Timeout", "ReadTimeout", "ConnectTimeout", "ChunkedEncodingError",
    "EndpointConnectionError", "ConnectionClosedError",
    "ServiceRequestError", "ServiceResponseError", "ServiceRequestTimeoutError", "ServiceResponseTimeoutError",
    "RemoteDisconnected", "IncompleteRead", "ConnectionError",
})  # fmt: skip
_THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown"})


def _status_of(exc: BaseException) -> int | None:
    for attribute in ("status", "status_code", "code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    response = getattr(exc, "response", None)
    status_code = getattr(response, "status_code", None)
    if isinstance(status_code, int):
        return status_code
    if isinstance(response, dict):  # botocore's ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status if isinstance(status, int) else None
    return None


def is_transient(exc: BaseException) -> bool:
    """A failure worth retrying: throttling, a server error, a timeout or a dropped connection
    (also when an SDK wraps one of those in its own exception)."""
    from mlcompile.runtime.deadline import deadline_passed

    if deadline_passed():
        return False  # out of time: nothing is worth another attempt
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        status = _status_of(current)
        if status is not None and status in TRANSIENT_STATUSES:
            return True
        response = getattr(current, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code") in _THROTTLING_CODES:
            return True
        if status is not None:
            return False  # the platform answered, and refused
        if isinstance(current, (ConnectionError, TimeoutError)) or any(t.__name__ in _TRANSIENT_TYPES for t in type(current).__mro__):
            return True
        current, seen = current.__cause__ or current.__context__, seen + 1
    return False


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked to wait (a Retry-After header in seconds), if it said."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "headers", None)
    if headers is None and isinstance(response, dict):
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders")
    if not headers:
        return None
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
    except AttributeError:
        return None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: fall back to our own backoff


def backoff(attempt: int, exc: BaseException, settings: RetrySettings) -> float:
    """Delay before retry `attempt` + 1: exponential, jittered, at least Retry-After, capped."""
    import random  # only deploys retry: kept out of validate's cold start

    delay = settings.first_delay * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
    asked = retry_after(exc)
    if asked is not None:
        delay = max(delay, asked)
    return min(settings.max_delay, delay)


def with_retries(
    call: Callable[[], T],
    *,
    attempts: int | None = None,
    first_delay: float | None = None,
    max_delay: float | None = None,
    transient: Callable[[BaseException], bool] = is_transient,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, retried on transient failures with capped exponential backoff and jitter
    (defaults: RetrySettings.from_env()). Only for calls that are safe to repeat: reads,
    deletes and PUT-style upserts; a create goes through `create_once`."""
    env = RetrySettings.from_env()
    settings = RetrySettings(
        attempts=env.attempts if attempts is None else attempts,
        first_delay=env.first_delay if first_delay is None else first_delay,
        max_delay=env.max_delay if max_delay is None else max_delay,
        timeout=env.timeout,
    )
    from mlcompile.runtime.deadline import call_limit

    for attempt in range(1, settings.attempts + 1):
        try:
            with call_limit(settings.timeout):  # the whole answer, however slowly it arrives
                return call()
        except Exception as exc:
            if attempt == settings.attempts or not transient(exc):
                raise
            sleep(backoff(attempt, exc, settings))
    raise AssertionError("unreachable")


def create_once(create: Callable[[], T], find: Callable[[], T | None], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """A create that is not idempotent (a POST), retried without ever creating twice: after a
    transient failure — which may have reached the platform before the connection dropped or
    timed out — look for the resource first (`find`, itself retried) and retry the create only
    when it is not there."""
    from mlcompile.runtime.deadline import call_limit

    settings = RetrySettings.from_env()
    for attempt in range(1, settings.attempts + 1):
        try:
            with call_limit(settings.timeout):
                return create()
        except Exception as exc:
            if not is_transient(exc):
                raise
            found = with_retries(find, sleep=sleep)
            if found is not None:
                return found
            if attempt == settings.attempts:
                raise
            sleep(backoff(attempt, exc, settings))
    raise AssertionError("unreachable")


class RetryingClient:
    """An SDK client whose calls are retried by `with_retries`, except creates (`create_*`,
    `upload_*`: POSTs a blind retry could apply twice), which the caller sends through
    `create_once`."""

    def __init__(self, client: Any):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith(("create_", "upload_")):
            return attribute
        return lambda *args, **kwargs: with_retries(lambda: attribute(*args, **kwargs))
