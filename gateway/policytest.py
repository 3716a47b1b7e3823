"""``wardgate policy test``: policy as code, tested like code (in the spirit of ``opa test``).

Each YAML file in ``policies/tests/`` holds cases: a principal (subject + roles), a request,
the upstream's response (a fixture), and what the caller must get back. The case runs through
the real proxy pipeline in-process: the same routing, Casbin decisions, write guard and
response filters as production; only the credential check, the network hop, detection and the
audit writer are replaced. Expectations:

    status:  the HTTP status the caller receives
    upstream_called: whether the request may reach the upstream (default: status < 400)
    present: fields that reach the caller unchanged
    absent:  fields that never reach the caller
    masked:  fields that reach the caller, but never with their original values
    reason_id: the refusal's reason id

Fields are compared by name across the whole document (JSON keys, XML local names, CSV
columns), so a case does not depend on where the records sit.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog
import yaml
from lxml import etree

from audit.detect import Verdict
from gateway.catalog import FieldCatalog
from gateway.errors import ConfigError
from gateway.masking import Masker
from gateway.pipeline import ProxyApp
from gateway.policy import Policy
from gateway.principal import Principal
from gateway.resources import ResourceMap
from gateway.settings import Settings, load_settings

log = structlog.get_logger(__name__)


# --- stand-ins for the parts a policy test does not exercise ------------------------------


@dataclass
class _FixedIdentity:
    principal: Principal | None = None

    async def identify(self, authorization: str | None, api_key: str | None) -> Principal:
        assert self.principal is not None
        return self.principal


class _NoDetection:
    async def precheck(self, *_: Any) -> Verdict:
        return Verdict()

    async def observe(self, *_: Any) -> Verdict:
        return Verdict()


class _NoAudit:
    def reserve(self) -> bool:
        return False

    async def record(self, event: Any, *, reserved: bool = False) -> None:
        return None


@dataclass
class _FixtureResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)

    async def read(self, limit: int) -> bytes | None:
        return self.body if len(self.body) <= limit else None

    async def iter_chunks(self) -> Iterator[bytes]:  # type: ignore[misc]
        yield self.body

    def release(self) -> None:
        return None


@dataclass
class _FixtureForwarder:
    response: _FixtureResponse | None = None
    calls: list[bytes | None] = field(default_factory=list)

    async def send(
        self, upstream: str, method: str, target: str, query: str, headers: Any, body: Any
    ) -> _FixtureResponse:
        if body is not None and not isinstance(body, bytes):
            body = b"".join([chunk async for chunk in body])
        self.calls.append(body)
        assert self.response is not None
        return self.response


@dataclass
class _Services:
    settings: Settings
    policy: Policy
    catalog: FieldCatalog
    resources: ResourceMap
    masker: Masker
    identity: _FixedIdentity = field(default_factory=_FixedIdentity)
    detection: _NoDetection = field(default_factory=_NoDetection)
    audit: _NoAudit = field(default_factory=_NoAudit)
    health: Any = None


# --- comparing documents by field name -----------------------------------------------------


def field_values(content_type: str, body: bytes) -> dict[str, list[str]]:
    """Every value of every field name in a JSON, XML or CSV document, in document order."""
    values: dict[str, list[str]] = {}
    ctype = content_type.lower()
    if "json" in ctype:
        _walk_json(orjson.loads(body), values)
    elif "xml" in ctype:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        for el in etree.fromstring(body, parser).iter():
            if isinstance(el.tag, str) and len(el) == 0:
                values.setdefault(etree.QName(el).localname, []).append(el.text or "")
    elif "csv" in ctype:
        for row in csv.DictReader(io.StringIO(body.decode("utf-8-sig"))):
            for key, value in row.items():
                values.setdefault(key, []).append(value)
    return values


def _walk_json(node: Any, values: dict[str, list[str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                _walk_json(value, values)
            else:
                values.setdefault(key, []).append(str(value))
    elif isinstance(node, list):
        for item in node:
            _walk_json(item, values)


# --- running cases ---------------------------------------------------------------------------


@dataclass
class CaseResult:
    file: str
    name: str
    failures: list[str]


async def _call(app: ProxyApp, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    body = _body(request)
    headers = [(k.lower().encode(), str(v).encode()) for k, v in request.get("headers", {}).items()]
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    path, _, query = request["path"].partition("?")
    scope = {
        "type": "http",
        "method": request.get("method", "GET").upper(),
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "scheme": "http",
    }
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    out_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], out_headers, b"".join(m.get("body", b"") for m in sent[1:])


def _body(spec: dict[str, Any], base: Path | None = None) -> bytes:
    if "body_file" in spec and base is not None:
        return (base / spec["body_file"]).read_bytes()
    body = spec.get("body", b"")
    if isinstance(body, (dict, list)):
        return orjson.dumps(body)
    return body.encode() if isinstance(body, str) else body


def _check(
    case: dict[str, Any],
    status: int,
    headers: dict[str, str],
    body: bytes,
    fixture: bytes,
    fixture_type: str,
    called: bool,
) -> list[str]:
    expect = case.get("expect", {})
    failures = []
    if "status" in expect and status != expect["status"]:
        failures.append(f"status {status}, expected {expect['status']}: {body[:300]!r}")
    if "reason_id" in expect:
        got = orjson.loads(body).get("reason_id") if status >= 400 else None
        if got != expect["reason_id"]:
            failures.append(f"reason_id {got!r}, expected {expect['reason_id']!r}")
    want_called = expect.get("upstream_called", expect.get("status", 200) < 400)
    if called != want_called:
        failures.append(f"upstream {'was' if called else 'was not'} called")
    if not any(k in expect for k in ("present", "absent", "masked")) or status >= 400:
        return failures
    before = field_values(fixture_type, fixture)
    after = field_values(headers.get("content-type", fixture_type), body)
    for name in expect.get("present", []):
        if after.get(name) != before.get(name):
            failures.append(f"field {name!r} should arrive unchanged")
    for name in expect.get("absent", []):
        if name in after:
            failures.append(f"field {name!r} should be absent, found {after[name][:3]}")
    for name in expect.get("masked", []):
        original = set(before.get(name, []))
        if name not in after or not original or original & set(after[name]):
            failures.append(f"field {name!r} should arrive masked, got {after.get(name, [])[:3]}")
    return failures


async def run_case(
    app: ProxyApp,
    services: _Services,
    forwarder: _FixtureForwarder,
    case: dict[str, Any],
    base: Path,
) -> list[str]:
    who = case["principal"]
    services.identity.principal = Principal(
        subject=who["subject"], auth_method="jwt", granted_roles=frozenset(who.get("roles", []))
    )
    upstream = case.get("upstream", {"status": 200, "body": ""})
    fixture = _body(upstream, base)
    up_headers = {
        "content-type": "application/json",
        **{k.lower(): str(v) for k, v in upstream.get("headers", {}).items()},
    }
    forwarder.response = _FixtureResponse(
        upstream.get("status", 200),
        [(k.encode(), v.encode()) for k, v in up_headers.items()],
        fixture,
    )
    forwarder.calls.clear()
    case["request"]["body"] = _body(case["request"], base)
    status, headers, body = await _call(app, case["request"])
    return _check(
        case, status, headers, body, fixture, up_headers["content-type"], bool(forwarder.calls)
    )


def load_cases(tests_dir: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    files = sorted(tests_dir.glob("*.yaml"))
    if not files:
        raise ConfigError(f"no policy tests found in {tests_dir} (expected *.yaml files)")
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        for i, case in enumerate(doc.get("cases", [])):
            if not isinstance(case, dict) or "principal" not in case or "request" not in case:
                raise ConfigError(f"{path}: case {i + 1} needs principal and request")
            yield path, case


def build(settings: Settings) -> tuple[ProxyApp, _Services, _FixtureForwarder]:
    catalog = FieldCatalog.load(settings.policy.path("fields"))
    services = _Services(
        settings=settings,
        policy=Policy(settings, catalog),
        catalog=catalog,
        resources=ResourceMap.load(settings.policy.path("resources")),
        masker=Masker(b"wardgate-policy-test-key"),
    )
    forwarder = _FixtureForwarder()
    return ProxyApp(services, forwarder), services, forwarder  # type: ignore[arg-type]


def run_policy_tests(
    config: Path, *, tests_dir: Path | None = None, policy_dir: Path | None = None
) -> int:
    """Run every case, print one line each, return the number of failures."""
    import asyncio

    settings = load_settings(config)
    if policy_dir is not None:
        settings = settings.model_copy(
            update={"policy": settings.policy.model_copy(update={"dir": str(policy_dir)})}
        )
    tests_dir = tests_dir or Path(settings.policy.dir) / "tests"
    app, services, forwarder = build(settings)

    async def run_all() -> list[CaseResult]:
        return [
            CaseResult(
                path.name,
                case.get("name", "?"),
                await run_case(app, services, forwarder, case, path.parent),
            )
            for path, case in load_cases(tests_dir)
        ]

    results = asyncio.run(run_all())
    failed = [r for r in results if r.failures]
    for r in results:
        mark = "FAIL" if r.failures else "ok  "
        print(f"{mark} {r.file}: {r.name}")
        for failure in r.failures:
            print(f"       {failure}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return len(failed)
