"""The proxy listener: one request flows one way through the stages.

    identify ─► route ─► authorize ─► guard writes ─► forward ─► filter ─► detect ─► record

Plain ASGI (no framework routing on the hot path). Each stage is one call into its own module;
this file only orders them and turns refusals into problem+json. A refusal at any stage stops
the request there: nothing reaches the upstream, and the audit event says which stage and why.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import structlog

from audit.detectors.base import Observation
from gateway import metrics
from gateway.errors import (
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    RequestRefused,
    TooManyRequests,
    Unauthenticated,
    UpstreamUnavailable,
)
from gateway.exchange import Exchange
from gateway.forwarded import client_info
from gateway.payloads import filter_response, guard_write
from gateway.proxy import Forwarder, UpstreamResponse, request_headers_for_upstream
from gateway.routing import Router, check_method_override

if TYPE_CHECKING:
    from audit.detect import Verdict
    from gateway.services import Services

log = structlog.get_logger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FILTERABLE_TYPES = ("json", "xml", "csv")
Send = Any
Receive = Any


class ProxyApp:
    """ASGI app for the proxy port. ``/healthz`` and ``/readyz`` are reserved paths."""

    def __init__(self, services: Services, forwarder: Forwarder) -> None:
        self.s = services
        self.forwarder = forwarder
        self.router = Router(services.settings.upstreams)
        limits = services.settings.limits
        self.max_request_body = limits.max_request_body
        self.max_filtered = limits.max_filtered_response
        self.trusted_proxies = services.settings.trusted_proxies
        self.strict = services.settings.audit.durability == "strict"

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return  # lifespan is handled by the process, not per app
        if scope["path"] in ("/healthz", "/readyz"):
            await self.s.health.respond(scope["path"], send)
            return
        ex = Exchange(scope, scope["method"], scope["headers"])
        try:
            await self._serve(ex, receive, send)
        except RequestRefused as err:
            await self._refuse(ex, err, send)
        except Exception:
            log.exception("request failed", request_id=ex.request_id)
            await self._refuse(ex, WardgateInternal(), send)
        finally:
            try:
                if not ex.recorded:
                    await self._record(ex)
            except RequestRefused as err:  # the answer is already out: say so loudly
                log.error(
                    "audit event not recorded",
                    request_id=ex.request_id,
                    reason_id=err.reason_id,
                )
            finally:
                if ex.audit_slot:  # ended before its event could take the slot
                    self.s.audit.release()
            upstream = ex.route.upstream if ex.route else "-"
            metrics.request_done(upstream, ex.decision, ex.reason_id, ex.status, ex.elapsed())

    # --- the stages, in order ---------------------------------------------------------------

    async def _serve(self, ex: Exchange, receive: Receive, send: Send) -> None:
        s = self.s
        scope = ex.scope
        client = client_info(
            scope["client"][0] if scope.get("client") else None,
            ex.headers,
            self.trusted_proxies,
            scope.get("scheme", "http"),
        )
        ex.client_addr = client.addr
        # identify
        ex.principal = await s.identity.identify(ex.authorization, ex.api_key)
        # route
        check_method_override(ex.headers, scope["query_string"])
        route = ex.route = self.router.resolve(self._raw_path(scope))
        ex.roles = s.policy.roles_for(ex.principal, route.upstream)
        self._check_declared_length(ex)
        body: bytes | None = None
        if s.resources.needs_request_body(route.upstream, ex.method, route.upstream_path):
            body = await self._read_body(ex, receive)
        ex.resource = s.resources.match(
            route.upstream, ex.method, route.upstream_path, ex.header_map(), body
        )
        # authorize: SOAP calls are authorised per operation, REST calls per method
        action = ex.resource.operation if ex.resource and ex.resource.operation else ex.method
        decision = s.policy.decide(ex.roles, route.upstream, route.upstream_path, action)
        ex.matched_rule = decision.matched_rule
        if not decision.allowed:
            raise Forbidden(
                f"{sorted(ex.roles) or 'no roles'} may not {action} {route.public_path}; "
                "ask your Wardgate administrator for access if you need it",
                reason_id=decision.reason_id,
            )
        if ex.resource is not None:
            ex.plan = s.policy.field_plan(ex.roles, route.upstream, ex.resource.entity)
            # guard writes
            if ex.method in WRITE_METHODS and ex.plan.write_denied:
                if body is None:
                    body = await self._read_body(ex, receive)
                guard_write(ex.resource, ex.plan, ex.content_type, body)
            self._apply(
                await s.detection.precheck(ex.principal.subject, route.upstream, ex.resource.entity)
            )
        # the audit event must have room before any data leaves (fast mode records after)
        ex.audit_slot = s.audit.reserve()
        ex.decision, ex.reason_id = "allow", "allowed"
        # forward
        try:
            response = await self.forwarder.send(
                route.upstream,
                ex.method,
                route.upstream_target,
                scope["query_string"].decode("latin-1"),
                self._upstream_headers(ex, client.forwarded_for, client.proto, client.host),
                body if body is not None else self._body_stream(ex, receive),
            )
        except UpstreamUnavailable:
            # A streamed body that broke its limit aborts the upstream call: say why.
            if ex.body_refusal is not None:
                raise ex.body_refusal from None
            raise
        try:
            ex.status = response.status
            if self._must_filter(ex, response):
                await self._send_filtered(ex, response, send)
            else:
                await self._stream(ex, response, send)
        finally:
            response.release()

    @staticmethod
    def _raw_path(scope: dict[str, Any]) -> bytes:
        """The path exactly as sent; a decoded path would hide an encoded '/' (so refuse)."""
        raw = scope.get("raw_path")
        if not raw:
            raise BadRequest(
                "the server gave no raw request path; Wardgate will not guess it",
                reason_id="path_invalid",
            )
        return raw.split(b"?", 1)[0]

    def _upstream_headers(
        self, ex: Exchange, forwarded_for: str, proto: str, host: str | None
    ) -> list[tuple[bytes, bytes]]:
        assert ex.principal is not None
        headers = request_headers_for_upstream(ex.headers)
        headers += [
            (b"x-wardgate-subject", ex.principal.subject.encode()),
            (b"x-wardgate-roles", ",".join(sorted(ex.roles)).encode()),
            (b"x-request-id", ex.request_id.encode()),
            (b"x-forwarded-for", forwarded_for.encode()),
            (b"x-forwarded-proto", proto.encode()),
        ]
        if host:
            headers.append((b"x-forwarded-host", host.encode()))
        return headers

    # --- request bodies -------------------------------------------------------------------

    def _check_declared_length(self, ex: Exchange) -> None:
        if ex.request_bytes > self.max_request_body:
            raise PayloadTooLarge(
                f"request body of {ex.request_bytes} bytes is over the limit of "
                f"{self.max_request_body}; send smaller batches",
            )

    async def _read_body(self, ex: Exchange, receive: Receive) -> bytes:
        chunks = [chunk async for chunk in self._body_chunks(ex, receive)]
        return b"".join(chunks)

    async def _body_chunks(self, ex: Exchange, receive: Receive) -> AsyncIterator[bytes]:
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_request_body:
                ex.body_refusal = PayloadTooLarge(
                    f"request body is over the limit of {self.max_request_body} bytes; "
                    "send smaller batches",
                )
                raise ex.body_refusal
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                ex.request_bytes = size
                return

    def _body_stream(self, ex: Exchange, receive: Receive) -> AsyncIterator[bytes] | None:
        if ex.method in ("GET", "HEAD", "OPTIONS") and ex.request_bytes == 0:
            return None
        return self._body_chunks(ex, receive)

    # --- responses ------------------------------------------------------------------------

    def _must_filter(self, ex: Exchange, response: UpstreamResponse) -> bool:
        if ex.resource is not None and 200 <= response.status < 300:
            return True
        # Unmapped routes still get the safety net for documents Wardgate can read.
        ctype = (response.header(b"content-type") or b"").decode("latin-1").lower()
        return ex.method != "HEAD" and any(t in ctype for t in FILTERABLE_TYPES[:2])

    async def _send_filtered(self, ex: Exchange, response: UpstreamResponse, send: Send) -> None:
        raw = await response.read(self.max_filtered)
        if raw is None:
            raise UpstreamUnavailable(
                f"the upstream's answer is over {self.max_filtered} bytes and must be filtered; "
                "ask for smaller pages",
                reason_id="response_too_large",
            )
        resource = ex.resource if 200 <= response.status < 300 else None
        result = filter_response(
            resource,
            ex.plan if resource else None,
            (response.header(b"content-type") or b"").decode("latin-1"),
            (response.header(b"content-encoding") or b"").decode("latin-1") or None,
            raw,
            masker=self.s.masker,
            catalog=self.s.catalog,
            max_bytes=self.max_filtered,
        )
        ex.records, ex.fields_masked, ex.pii_hits = (
            result.records,
            result.masked_fields,
            result.pii_hits,
        )
        if resource is not None:
            await self._detect(ex)
        headers = [(k, v) for k, v in response.headers if k != b"content-encoding"]
        if result.content_encoding:
            headers.append((b"content-encoding", result.content_encoding.encode()))
        await self._send_whole(ex, response.status, headers, result.body, send)

    async def _detect(self, ex: Exchange) -> None:
        assert ex.principal is not None and ex.route is not None and ex.resource is not None
        observation = Observation(
            time=time.time(),
            subject=ex.principal.subject,
            roles=tuple(sorted(ex.roles)),
            upstream=ex.route.upstream,
            entity=ex.resource.entity,
            method=ex.method,
            path=ex.route.upstream_path,
            query=dict(parse_qsl(ex.scope["query_string"].decode("latin-1"))),
            status=ex.status,
            records=ex.records,
            response_bytes=ex.response_bytes,
            pii_hits=ex.pii_hits,
            request_id=ex.request_id,
        )
        verdict = await self.s.detection.observe(observation)
        if verdict.refused:
            ex.records = 0  # refused: the records never leave
        self._apply(verdict)

    @staticmethod
    def _apply(verdict: Verdict) -> None:
        """Turn a detection verdict into a refusal of this very request."""
        error = verdict.error()
        if error is not None:
            raise error

    async def _send_whole(
        self, ex: Exchange, status: int, headers: list[tuple[bytes, bytes]], body: bytes, send: Send
    ) -> None:
        ex.status, ex.response_bytes = status, len(body)
        headers = [
            *headers,
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", ex.request_id.encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        ex.response_started = True
        await self._release(ex, {"type": "http.response.body", "body": body}, send)

    async def _stream(self, ex: Exchange, response: UpstreamResponse, send: Send) -> None:
        """Pass the body through untouched; the last chunk waits for the audit in strict mode."""
        headers = list(response.headers)
        length = response.header(b"content-length")
        if length is not None:
            headers.append((b"content-length", length))
        headers.append((b"x-request-id", ex.request_id.encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        ex.response_started = True
        held = b""
        async for chunk in response.iter_chunks():
            if held:
                await send({"type": "http.response.body", "body": held, "more_body": True})
            held = chunk
            ex.response_bytes += len(chunk)
        await self._release(ex, {"type": "http.response.body", "body": held}, send)

    async def _release(self, ex: Exchange, last: dict[str, Any], send: Send) -> None:
        if self.strict:
            try:
                await self._record(ex)  # durable before the client sees the end of the answer
            except RequestRefused:
                if ex.reason_id == "allowed":
                    raise  # the data stays in: the answer is cut short
                ex.recorded = False  # a refusal holds no data: finish it; the finally logs the loss
        await send(last)

    async def _refuse(self, ex: Exchange, err: RequestRefused, send: Send) -> None:
        ex.status, ex.reason_id = err.status, err.reason_id
        if isinstance(err, (Unauthenticated, Forbidden, TooManyRequests, PayloadTooLarge)):
            ex.decision = "deny"
        log.info(
            "request refused",
            request_id=ex.request_id,
            reason_id=err.reason_id,
            status=err.status,
            subject=ex.principal.subject if ex.principal else None,
            path=ex.path_for_audit,
        )
        if ex.response_started:
            return  # too late for a problem document; the audit still says what happened
        headers = [(b"content-type", b"application/problem+json")]
        headers += [(k.encode(), v.encode()) for k, v in err.headers.items()]
        await self._send_whole(ex, err.status, headers, err.to_bytes(ex.request_id), send)

    async def _record(self, ex: Exchange) -> None:
        ex.recorded = True
        if ex.route is not None and ex.records:
            metrics.records_returned(
                ex.route.upstream, ex.resource.entity if ex.resource else "-", ex.records
            )
        event = ex.audit_event()
        slot, ex.audit_slot = ex.audit_slot, False  # the writer takes the slot over
        await self.s.audit.record(event, reserved=slot)


class WardgateInternal(RequestRefused):
    """An unexpected failure: fail closed with 500 and no details."""

    status = 500
    title = "Internal error"
    default_reason = "internal_error"

    def __init__(self) -> None:
        super().__init__("Wardgate failed to handle this request; its operators have the log")


class ClientGone(RequestRefused):
    """The client disconnected before its request body arrived (nobody reads the answer)."""

    status = 499
    default_reason = "client_disconnected"

    def __init__(self) -> None:
        super().__init__("the client disconnected before its request body arrived")
