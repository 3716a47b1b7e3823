"""structlog configuration: JSON under ``serve``, readable under ``demo``; secrets redacted.

The redaction processor runs first, so no later processor or renderer ever sees a secret.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(authorization|token|secret|password|api_?key|cookie|signature)", re.I)
_BEARER = re.compile(r"(Bearer|ApiKey)\s+[A-Za-z0-9._~+/=-]+", re.I)
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace values of secret-looking keys, and bearer credentials inside any string."""
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key):
            event[key] = "[secure]"
        elif isinstance(value, str) and ("earer " in value or "piKey " in value):
            event[key] = _BEARER.sub(r"\1 [secure]", value)
    return event


def configure_logging(fmt: str = "json", level: str = "info") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            redact_secrets,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        # sys.stderr looked up per logger: tests (and daemons) may swap the stream later
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=_LEVELS[level], format="%(message)s", stream=sys.stderr, force=True)
    # Libraries that narrate at INFO (Casbin prints the whole policy, httpx every JWKS call).
    for noisy in ("uvicorn.access", "uvicorn.error", "aiohttp.access", "casbin", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, _LEVELS[level]))
