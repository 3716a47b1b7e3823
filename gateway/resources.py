"""The resource map: which requests carry which entity, and where its records sit.

``policies/resources.yaml`` declares, per upstream, REST routes (method, path pattern,
format, JSONPath of the records) and SOAP endpoints (operations, entity per operation,
XPath of the records). The map is compiled once at start; ``match`` runs per request.

Matching is deliberately generous: paths are compared case-folded and with a trailing '/'
ignored, because an upstream that accepts ``/API/Customers`` must not let that spelling
skip the filter (over-filtering is harmless; under-filtering leaks).

A SOAP operation is named twice, by the ``SOAPAction`` header (or the SOAP 1.2 ``action``
content-type parameter) and by the first element of the Body. Both are compared
case-insensitively, and the Body element by local name whatever its prefix or namespace
(a lax upstream may ignore both; matching more only filters more). When both are known
and disagree the request is refused: an upstream might route by either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from lxml import etree

from gateway.errors import BadRequest, ConfigError
from gateway.payloads.safexml import parse_xml, soap_body

Format = Literal["json", "csv", "xml"]
PathStep = tuple[Literal["key", "all"], str]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
_JSONPATH_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[\*\]|\.\*|\['([^'\]]+)'\]")


@dataclass(frozen=True, slots=True)
class Resource:
    """What one request is about: the entity, the payload format and where records sit.

    ``records`` is the selector as written in the file; ``json_path`` (JSON) or ``xpath``
    (XML, evaluated relative to the SOAP Body) is its compiled form. A SOAP write is
    guarded over its whole Body, so no request-side selector is needed.
    """

    upstream: str
    entity: str
    format: Format
    records: str
    operation: str | None = None
    json_path: tuple[PathStep, ...] = ()
    xpath: etree.XPath | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class _PathPattern:
    """``/api/customers/:id`` or ``/api/files/*``, compared case-folded."""

    segments: tuple[str, ...]
    rest: bool

    def matches(self, parts: list[str]) -> bool:
        if len(parts) < len(self.segments) or (not self.rest and len(parts) != len(self.segments)):
            return False
        return all(s == ":" or s == p for s, p in zip(self.segments, parts, strict=False))

    @property
    def specificity(self) -> tuple[int, int]:
        """Literal segments first, then fixed length beats a trailing ``*``."""
        return (sum(s != ":" for s in self.segments), 0 if self.rest else 1)


@dataclass(frozen=True, slots=True)
class _RestRoute:
    methods: frozenset[str]
    pattern: _PathPattern
    resource: Resource


@dataclass(frozen=True, slots=True)
class _SoapEndpoint:
    pattern: _PathPattern
    by_element: Mapping[str, Resource]  # casefolded operation name -> resource
    by_action: Mapping[str, Resource]  # casefolded SOAPAction value -> resource


def _split_path(path: str) -> list[str]:
    path = path.split("?", 1)[0].casefold().rstrip("/")
    return path.split("/")[1:] if path else []


class ResourceMap:
    """Compiled ``resources.yaml``: ``match`` a request to its ``Resource`` (or ``None``)."""

    def __init__(self, rest: dict[str, list[_RestRoute]], soap: dict[str, list[_SoapEndpoint]]):
        self._rest = rest
        self._soap = soap

    @classmethod
    def load(cls, path: str | Path) -> ResourceMap:
        """Read and compile the file; raise ``ConfigError`` naming file, key and value."""
        raw = _read_yaml(Path(path))
        return _Loader(str(path)).build(raw)

    @property
    def entities(self) -> frozenset[str]:
        """Every entity the map names (to check against the field catalog at start)."""
        rest = {r.resource.entity for routes in self._rest.values() for r in routes}
        soap = {
            res.entity
            for ends in self._soap.values()
            for e in ends
            for res in e.by_element.values()
        }
        return frozenset(rest | soap)

    def needs_request_body(self, upstream: str, method: str, upstream_path: str) -> bool:
        """True when only the body can tell the resource (a SOAP endpoint)."""
        parts = _split_path(upstream_path)
        return method.upper() == "POST" and any(
            e.pattern.matches(parts) for e in self._soap.get(upstream, ())
        )

    def match(
        self,
        upstream: str,
        method: str,
        upstream_path: str,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> Resource | None:
        """The resource this request reads or writes, or ``None`` for an unmapped route."""
        parts = _split_path(upstream_path)
        method = method.upper()
        candidates = [
            r
            for r in self._rest.get(upstream, ())
            if method in r.methods and r.pattern.matches(parts)
        ]
        best = max(candidates, key=lambda r: r.pattern.specificity, default=None)
        if best is not None:
            return best.resource
        for endpoint in self._soap.get(upstream, ()):
            if endpoint.pattern.matches(parts):
                return _soap_operation(endpoint, headers, body)
        return None


def _soap_action(headers: Mapping[str, str]) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    action = lowered.get("soapaction")
    if action is None:
        match = re.search(r'action\s*=\s*"?([^";]+)', lowered.get("content-type", ""), re.I)
        action = match.group(1) if match else None
    action = (action or "").strip().strip('"').strip()
    return action or None


def _soap_operation(
    endpoint: _SoapEndpoint, headers: Mapping[str, str], body: bytes | None
) -> Resource | None:
    action = _soap_action(headers)
    by_action = endpoint.by_action.get(action.casefold()) if action else None
    if not body:
        return by_action
    body_el = soap_body(parse_xml(body, error=_bad_soap_body))
    operations = [el for el in body_el if isinstance(el.tag, str)]
    if len(operations) > 1:
        # An upstream may run every Body element; only one can be authorised: refuse.
        raise BadRequest(
            f"the SOAP Body holds {len(operations)} operations; send one operation per request",
            reason_id="soap_multiple_operations",
        )
    if not operations:
        return by_action
    first = operations[0]
    qname = etree.QName(first)
    by_body = endpoint.by_element.get(qname.localname.casefold())
    if action and (by_body or by_action) and by_body is not by_action:
        raise BadRequest(
            f"SOAPAction {action!r} and the body operation {qname.localname!r} disagree;"
            " send a SOAPAction that names the body's operation",
            reason_id="soap_operation_mismatch",
        )
    return by_body


def _bad_soap_body(reason: str) -> BadRequest:
    return BadRequest(f"SOAP request body is not usable: {reason}", reason_id="bad_body")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {raw!r}")
    return raw


def parse_json_path(text: str) -> tuple[PathStep, ...]:
    """``$``, ``$.data[*]``, ``$.a.*.b``, ``$['odd key']`` → steps; ``ValueError`` if not."""
    if not text.startswith("$"):
        raise ValueError("must start with '$'")
    steps: list[PathStep] = []
    pos = 1
    while pos < len(text):
        m = _JSONPATH_STEP.match(text, pos)
        if not m:
            raise ValueError(f"unsupported syntax at {text[pos:]!r}")
        key = m.group(1) or m.group(2)
        steps.append(("key", key) if key else ("all", "*"))
        pos = m.end()
    return tuple(steps)


class _Loader:
    """Turns the raw YAML into routes, naming file, key and value on every problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, value: object, expected: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {expected} (got {value!r})")

    def build(self, raw: dict[str, Any]) -> ResourceMap:
        upstreams = raw.get("upstreams")
        if not isinstance(upstreams, dict) or set(raw) != {"upstreams"}:
            raise self.fail("(top level)", sorted(raw), "expected exactly one key 'upstreams'")
        rest: dict[str, list[_RestRoute]] = {}
        soap: dict[str, list[_SoapEndpoint]] = {}
        for name, spec in upstreams.items():
            key = f"upstreams.{name}"
            if not isinstance(spec, dict) or not set(spec) <= {"rest", "soap"}:
                raise self.fail(key, spec, "expected a mapping with 'rest' and/or 'soap' lists")
            rest[name] = [
                self.rest_route(f"{key}.rest[{i}]", name, r)
                for i, r in enumerate(self.as_list(f"{key}.rest", spec.get("rest", [])))
            ]
            soap[name] = [
                self.soap_endpoint(f"{key}.soap[{i}]", name, s)
                for i, s in enumerate(self.as_list(f"{key}.soap", spec.get("soap", [])))
            ]
        return ResourceMap(rest, soap)

    def as_list(self, key: str, value: object) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(key, value, "expected a list")
        return value

    def keys(self, key: str, spec: object, required: set[str], optional: set[str]) -> dict:
        if not isinstance(spec, dict):
            raise self.fail(key, spec, "expected a mapping")
        missing, unknown = required - set(spec), set(spec) - required - optional
        if missing:
            raise self.fail(key, spec, f"missing {sorted(missing)}")
        if unknown:
            raise self.fail(key, sorted(unknown), "unknown keys; remove them or fix the spelling")
        return spec

    def pattern(self, key: str, value: object) -> _PathPattern:
        if not isinstance(value, str) or not value.startswith("/") or "//" in value:
            raise self.fail(key, value, "expected a path starting with '/' (':name', final '*')")
        parts = _split_path(value)
        rest = bool(parts) and parts[-1] == "*"
        segments = tuple(":" if p.startswith(":") else p for p in (parts[:-1] if rest else parts))
        if "*" in segments or any(p == ":" for p in parts):
            raise self.fail(key, value, "'*' only as the last segment; ':' needs a name")
        return _PathPattern(segments, rest)

    def rest_route(self, key: str, upstream: str, spec: object) -> _RestRoute:
        spec = self.keys(key, spec, {"path", "entity", "format", "records"}, {"methods"})
        methods = spec.get("methods", ["GET"])
        if (
            not isinstance(methods, list)
            or not methods
            or not {str(m) for m in methods} <= _METHODS
        ):
            raise self.fail(f"{key}.methods", methods, f"expected a list from {sorted(_METHODS)}")
        fmt = spec["format"]
        if fmt not in ("json", "csv"):
            raise self.fail(f"{key}.format", fmt, "expected 'json' or 'csv'")
        records = spec["records"]
        try:
            steps = parse_json_path(records) if fmt == "json" else ()
        except (ValueError, TypeError) as exc:
            raise self.fail(f"{key}.records", records, f"not a supported JSONPath: {exc}") from None
        resource = Resource(upstream, self.entity(key, spec), fmt, str(records), json_path=steps)
        return _RestRoute(
            frozenset(m.upper() for m in methods),
            self.pattern(f"{key}.path", spec["path"]),
            resource,
        )

    def entity(self, key: str, spec: dict) -> str:
        entity = spec["entity"]
        if not isinstance(entity, str) or not entity.isidentifier():
            raise self.fail(f"{key}.entity", entity, "expected an entity name such as 'customer'")
        return entity

    def soap_endpoint(self, key: str, upstream: str, spec: object) -> _SoapEndpoint:
        spec = self.keys(key, spec, {"path", "namespace", "operations"}, {"namespaces"})
        ns = spec.get("namespaces", {})
        if not isinstance(ns, dict) or not all(isinstance(v, str) for v in ns.values()):
            raise self.fail(f"{key}.namespaces", ns, "expected a mapping prefix -> namespace URI")
        namespace, ops = spec["namespace"], spec["operations"]
        if not isinstance(namespace, str) or not namespace:
            raise self.fail(f"{key}.namespace", namespace, "expected the operations' namespace URI")
        if not isinstance(ops, dict) or not ops:
            raise self.fail(f"{key}.operations", ops, "expected a mapping operation -> spec")
        by_element: dict[str, Resource] = {}
        by_action: dict[str, Resource] = {}
        for op, op_spec in ops.items():
            op_key = f"{key}.operations.{op}"
            op_spec = self.keys(op_key, op_spec, {"entity", "records"}, {"action"})
            records = op_spec["records"]
            resource = Resource(
                upstream,
                self.entity(op_key, op_spec),
                "xml",
                str(records),
                operation=str(op),
                xpath=self.xpath(f"{op_key}.records", records, ns),
            )
            if str(op).casefold() in by_element:
                raise self.fail(op_key, op, "declared twice (operation names ignore case)")
            by_element[str(op).casefold()] = resource
            default_actions = [f"{namespace.rstrip('/')}/{op}", f"{namespace}#{op}", str(op)]
            actions = [op_spec["action"]] if "action" in op_spec else default_actions
            for action in actions:
                by_action[str(action).casefold()] = resource
        return _SoapEndpoint(self.pattern(f"{key}.path", spec["path"]), by_element, by_action)

    def xpath(self, key: str, expr: object, ns: dict[str, str]) -> etree.XPath:
        if not isinstance(expr, str):
            raise self.fail(key, expr, "expected an XPath relative to the SOAP Body")
        try:
            compiled = etree.XPath(expr, namespaces=ns)
            compiled(etree.Element("probe"))  # undefined prefixes only show on evaluation
        except (etree.XPathSyntaxError, etree.XPathEvalError) as exc:
            raise self.fail(
                key, expr, f"not a usable XPath ({exc}); declare prefixes in namespaces"
            ) from None
        return compiled
