"""Guard writes: refuse a request body that touches a field the roles may not write.

Every way of naming a field counts: a key at any depth of a JSON or merge-patch body
(objects inside arrays included), each segment of a JSON Patch ``path`` and ``from``
(``~1`` and ``~0`` unescaped) and the keys of its ``value``, any element or attribute of a
SOAP Body (by local name, whatever the prefix), and form field names (``a[b]`` and ``a.b``
split into segments; multipart part names too). Names compare case-insensitively. A body
on a guarded route that cannot be read, or whose type cannot be checked, is refused: an
unchecked write is never forwarded.
"""

from __future__ import annotations

import re
from email.parser import BytesParser
from email.policy import HTTP
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from lxml import etree

from gateway.errors import BadRequest, Forbidden
from gateway.fieldplan import FieldPlan
from gateway.payloads.safexml import parse_xml, soap_body

if TYPE_CHECKING:  # resources imports payloads.safexml: a runtime import would be circular
    from gateway.resources import Resource

_PATCH_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})
_FORM_SEGMENTS = re.compile(r"[\[\].]+")


@lru_cache(maxsize=1024)
def _folded(names: frozenset[str]) -> frozenset[str]:
    return frozenset(n.casefold() for n in names)


def bad_body(why: str) -> BadRequest:
    return BadRequest(f"the request body cannot be checked: {why}", reason_id="bad_body")


def guard_write(
    resource: Resource | None, plan: FieldPlan | None, content_type: str | None, body: bytes
) -> None:
    """Raise ``Forbidden`` (``field_write_denied``) naming the first denied field written."""
    if plan is None or not plan.write_denied or not body:
        return
    denied = _folded(plan.write_denied)
    entity = resource.entity if resource is not None else plan.entity
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json-patch+json":
        names = _json_patch_names(_load_json(body))
    elif media in ("application/json", "text/json") or media.endswith("+json"):
        names = _json_keys(_load_json(body))
    elif media == "application/x-www-form-urlencoded":
        names = _form_names(body)
    elif media == "multipart/form-data":
        names = _multipart_names(content_type or "", body)
    elif media in ("text/xml", "application/xml") or media.endswith("+xml"):
        names = _xml_names(body)
    else:
        raise bad_body(
            f"content type {content_type!r} is not one Wardgate can check; send JSON, JSON"
            " (merge) patch, SOAP/XML or a form"
        )
    for name in names:
        if name.casefold() in denied:
            raise Forbidden(
                f"you may not write the field {name!r} of {entity}; remove it from the request",
                reason_id="field_write_denied",
                extra={"field": name},
            )


def _load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_body(f"not valid JSON ({exc})") from None


def _json_keys(doc: Any) -> list[str]:
    """Every object key at any depth (iterative: no recursion limit to trip over)."""
    names: list[str] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            names.extend(node)
            stack.extend(v for v in node.values() if type(v) is dict or type(v) is list)
        elif type(node) is list:
            stack.extend(v for v in node if type(v) is dict or type(v) is list)
    return names


def _json_patch_names(doc: Any) -> list[str]:
    if type(doc) is not list:
        raise bad_body("a JSON Patch is a list of operations")
    names: list[str] = []
    for op in doc:
        if type(op) is not dict or not isinstance(op.get("op"), str) or op["op"] not in _PATCH_OPS:
            raise bad_body(f"not a JSON Patch operation: {op!r:.80}")
        for member in ("path", "from") if op["op"] in ("move", "copy") else ("path",):
            names.extend(_pointer_segments(op.get(member)))
        if "value" in op:
            names.extend(_json_keys(op["value"]))
    return names


def _pointer_segments(pointer: object) -> list[str]:
    """RFC 6901: ``/a~1b/c~0d`` → ``["a/b", "c~d"]`` (``~1`` before ``~0``)."""
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise bad_body(f"not a JSON Pointer: {pointer!r:.80}")
    return [s.replace("~1", "/").replace("~0", "~") for s in pointer.split("/")[1:]]


def _form_names(body: bytes) -> list[str]:
    try:
        # Some servers also split on ';': treat it as a separator so no name hides behind it.
        pairs = parse_qsl(body.decode("utf-8").replace(";", "&"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_body(f"not a valid form ({exc})") from None
    return _segments(name for name, _ in pairs)


def _segments(names: Any) -> list[str]:
    """The whole name and each part of ``customer[phone]`` / ``customer.phone``."""
    out: list[str] = []
    for name in names:
        out.append(name)
        out.extend(s for s in _FORM_SEGMENTS.split(name) if s)
    return out


def _multipart_names(content_type: str, body: bytes) -> list[str]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise bad_body("not a valid multipart/form-data body")
    names = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise bad_body("a multipart part has no field name")
        names.append(name)
    return _segments(names)


def _xml_names(body: bytes) -> list[str]:
    """Local names of every element and attribute in the SOAP Body (or XML document)."""
    root = soap_body(parse_xml(body, error=bad_body))
    names: list[str] = []
    for el in root.iter():
        if isinstance(el.tag, str):
            names.append(etree.QName(el).localname)
            names.extend(etree.QName(a).localname for a in el.attrib)
    return names
