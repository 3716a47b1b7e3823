"""One error tree for everything a client or an operator can be told.

    WardgateError                       (500, internal_error)
    ├── ConfigError                     settings or policy files are wrong; never sent to a client
    └── RequestRefused                  a request is refused; rendered as problem+json
        ├── BadRequest                  400  path_ambiguous, bad_body, method_override_refused …
        ├── Unauthenticated             401  token_missing, token_invalid, token_expired …
        ├── Forbidden                   403  no_matching_rule, explicit_deny, field_write_denied …
        ├── NotFound                    404  no_upstream
        ├── Conflict                    409  hr_event_conflict, alert_transition_invalid
        ├── PayloadTooLarge             413  request_body_too_large
        ├── TooManyRequests             429  export_throttled
        ├── UpstreamUnavailable         502  upstream_unavailable, response_unfilterable …
        ├── ServiceUnavailable          503  audit_backpressure
        └── UpstreamTimeout             504  upstream_timeout

Every refusal carries a stable ``reason_id``: the same id is logged, returned to the client
and written to the audit record. ``detail`` tells the caller what to do; it never holds a
secret, a token or a stack trace.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

PROBLEM_CONTENT_TYPE = b"application/problem+json"
_TYPE_BASE = "https://wardgate.dev/problems/"


class WardgateError(Exception):
    """Base of every error Wardgate raises on purpose."""

    status: ClassVar[int] = 500
    default_reason: ClassVar[str] = "internal_error"

    def __init__(
        self, detail: str, *, reason_id: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason_id = reason_id or self.default_reason
        self.extra = extra or {}


class ConfigError(WardgateError):
    """Settings, policy or catalog files are invalid. The message names key, value and fix."""

    default_reason = "config_invalid"


class RequestRefused(WardgateError):
    """A request is refused; the client receives ``to_problem()`` as problem+json."""

    title: ClassVar[str] = "Refused"
    headers: dict[str, str]

    def __init__(
        self,
        detail: str,
        *,
        reason_id: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail, reason_id=reason_id, extra=extra)
        self.headers = headers or {}

    def to_problem(self, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": _TYPE_BASE + self.reason_id,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "reason_id": self.reason_id,
        }
        if request_id:
            body["request_id"] = request_id
        body.update(self.extra)
        return body

    def to_bytes(self, request_id: str | None = None) -> bytes:
        return orjson.dumps(self.to_problem(request_id))


class BadRequest(RequestRefused):
    """The request cannot be understood without guessing (ambiguous path, malformed body)."""

    status = 400
    title = "Bad request"
    default_reason = "bad_request"


class Unauthenticated(RequestRefused):
    """No identity, or one that cannot be trusted (forged, expired, revoked)."""

    status = 401
    title = "Unauthenticated"
    default_reason = "token_invalid"

    def __init__(self, detail: str, *, reason_id: str | None = None, **kw: Any) -> None:
        super().__init__(detail, reason_id=reason_id, **kw)
        self.headers.setdefault("www-authenticate", 'Bearer realm="wardgate"')


class Forbidden(RequestRefused):
    """The caller is known but the policy does not let them do this."""

    status = 403
    title = "Forbidden"
    default_reason = "no_matching_rule"


class NotFound(RequestRefused):
    """No upstream serves this path."""

    status = 404
    title = "Not found"
    default_reason = "no_upstream"


class Conflict(RequestRefused):
    """The request contradicts the current state (a reused event id, a closed alert)."""

    status = 409
    title = "Conflict"
    default_reason = "conflict"


class PayloadTooLarge(RequestRefused):
    """A body is over the configured cap."""

    status = 413
    title = "Payload too large"
    default_reason = "request_body_too_large"


class TooManyRequests(RequestRefused):
    """The caller is throttled (export detection)."""

    status = 429
    title = "Too many requests"
    default_reason = "export_throttled"


class UpstreamUnavailable(RequestRefused):
    """The upstream could not be reached, or its answer cannot be passed on safely."""

    status = 502
    title = "Bad gateway"
    default_reason = "upstream_unavailable"


class ServiceUnavailable(RequestRefused):
    """Wardgate cannot currently guarantee what it promises (e.g. audit durability)."""

    status = 503
    title = "Service unavailable"
    default_reason = "service_unavailable"


class UpstreamTimeout(RequestRefused):
    """The upstream did not answer within its timeout."""

    status = 504
    title = "Gateway timeout"
    default_reason = "upstream_timeout"
