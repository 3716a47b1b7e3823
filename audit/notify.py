"""Tell people about new alerts: a signed webhook and, optionally, e-mail.

The webhook is signed like the HR webhook Wardgate receives: header
``X-Wardgate-Signature: t=<unix seconds>,v1=<hex>`` with hex = HMAC-SHA256(secret,
``"<t>.<raw body>"``). Failed deliveries (network errors, 429, 5xx) are retried with
exponential back-off; a 4xx other than 429 means the receiver refuses the message, so it is
not retried. Everything here runs off the request path (the guard schedules it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import smtplib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from email.message import EmailMessage
from typing import Any, Protocol

import httpx
import orjson
import structlog

from audit.detectors.config import NotifyConfig, SmtpConfig
from gateway.errors import ConfigError

log = structlog.get_logger(__name__)
SIGNATURE_HEADER = "X-Wardgate-Signature"
_MAX_BACKOFF_S = 60.0


class Notifier(Protocol):
    async def notify(self, alert: Mapping[str, Any]) -> None:
        """Deliver one new alert; never raises (failures are logged)."""
        ...


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class WebhookNotifier:
    """POSTs each alert as JSON to ``url`` with the control-plane httpx client."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        secret: bytes,
        *,
        retries: int = 5,
        backoff_s: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not secret:
            raise ConfigError("the alert webhook needs a non-empty signing secret")
        self._client = client
        self._url = url
        self._secret = secret
        self._retries = retries
        self._backoff_s = backoff_s
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"WebhookNotifier(url={self._url!r}, secret=[secure])"

    async def notify(self, alert: Mapping[str, Any]) -> None:
        body = orjson.dumps(alert)
        for attempt in range(self._retries + 1):
            headers = {
                "content-type": "application/json",
                SIGNATURE_HEADER: sign(self._secret, int(time.time()), body),
            }
            try:
                response = await self._client.post(self._url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            else:
                if response.status_code < 300:
                    return
                outcome = f"http_{response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    log.error(
                        "alert_webhook_refused",
                        status=response.status_code,
                        alert_id=alert.get("id"),
                    )
                    return
            if attempt < self._retries:
                await self._sleep(min(self._backoff_s * 2**attempt, _MAX_BACKOFF_S))
        log.error(
            "alert_webhook_failed",
            outcome=outcome,
            attempts=self._retries + 1,
            alert_id=alert.get("id"),
        )


class EmailNotifier:
    """Sends each alert as a short plain-text e-mail (smtplib in a worker thread)."""

    def __init__(self, config: SmtpConfig, password: str | None = None) -> None:
        self._cfg = config
        self._password = password

    def __repr__(self) -> str:
        return f"EmailNotifier(host={self._cfg.host!r}, password=[secure])"

    async def notify(self, alert: Mapping[str, Any]) -> None:
        try:
            await asyncio.to_thread(self._send, alert)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("alert_email_failed", error=type(exc).__name__, alert_id=alert.get("id"))

    def _send(self, alert: Mapping[str, Any]) -> None:
        msg = EmailMessage()
        msg["From"] = self._cfg.sender
        msg["To"] = ", ".join(self._cfg.recipients)
        msg["Subject"] = f"[Wardgate {alert.get('severity')}] {alert.get('detector')}: " + str(
            alert.get("subject")
        )
        msg.set_content(f"{alert.get('explanation')}\n\nalert id: {alert.get('id')}\n")
        with smtplib.SMTP(self._cfg.host, self._cfg.port, timeout=10) as smtp:
            if self._cfg.starttls:
                smtp.starttls()
            if self._cfg.username and self._password:
                smtp.login(self._cfg.username, self._password)
            smtp.send_message(msg)


class FanoutNotifier:
    """Delivers to several notifiers at once."""

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self._notifiers = list(notifiers)

    async def notify(self, alert: Mapping[str, Any]) -> None:
        await asyncio.gather(*(n.notify(alert) for n in self._notifiers))


def notifier_from_config(
    config: NotifyConfig, client: httpx.AsyncClient, environ: Mapping[str, str] | None = None
) -> Notifier | None:
    """The configured notifiers, or ``None`` if none is configured."""
    env = os.environ if environ is None else environ
    notifiers: list[Notifier] = []
    if config.webhook_url:
        secret = env.get(config.webhook_secret_env, "")
        if not secret:
            raise ConfigError(
                f"notify.webhook_url is set but {config.webhook_secret_env} is empty; "
                "export the shared signing secret in that variable"
            )
        notifiers.append(
            WebhookNotifier(
                client,
                config.webhook_url,
                secret.encode(),
                retries=config.retries,
                backoff_s=config.backoff_s,
            )
        )
    if config.smtp is not None:
        password = env.get(config.smtp.password_env) if config.smtp.password_env else None
        notifiers.append(EmailNotifier(config.smtp, password))
    if not notifiers:
        return None
    return notifiers[0] if len(notifiers) == 1 else FanoutNotifier(notifiers)
