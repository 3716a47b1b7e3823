"""Payload filters: what leaves (``filter_response``) and what may be written (``guard_write``).

``filter_response`` is the single entry point of the filter stage. A mapped resource's body
is decoded, parsed, filtered by the compiled plan and re-serialised; if that cannot be done
(unparseable, over the size cap, a content type that is not the resource's format) the
response is refused with a 502, never passed unfiltered. An unmapped route gets only the
safety net (``always_mask`` names) on JSON and XML bodies; other types pass untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.catalog import FieldCatalog
from gateway.fieldplan import FieldPlan
from gateway.masking import Masker
from gateway.payloads.compression import decode_body, too_large, unfilterable
from gateway.payloads.csv import filter_csv
from gateway.payloads.json import Unfilterable, filter_json
from gateway.payloads.plan import FilterResult, compile_plan
from gateway.payloads.prefilter import may_name_any
from gateway.payloads.writes import guard_write
from gateway.payloads.xml import filter_xml
from gateway.pii import count_pii

if TYPE_CHECKING:  # resources imports payloads.safexml: a runtime import would be circular
    from gateway.resources import Resource

__all__ = ["FilterResult", "filter_response", "guard_write", "media_format"]

_JSON_TYPES = frozenset({"application/json", "text/json"})
_XML_TYPES = frozenset({"application/xml", "text/xml", "application/soap+xml"})
_CSV_TYPES = frozenset({"text/csv", "application/csv"})


def media_format(content_type: str | None) -> str | None:
    """``json``, ``xml``, ``csv`` or ``None`` from a Content-Type header value."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _JSON_TYPES or media.endswith("+json"):
        return "json"
    if media in _XML_TYPES or media.endswith("+xml"):
        return "xml"
    if media in _CSV_TYPES:
        return "csv"
    return None


def filter_response(
    resource: Resource | None,
    plan: FieldPlan | None,
    content_type: str | None,
    content_encoding: str | None,
    body: bytes,
    *,
    masker: Masker,
    catalog: FieldCatalog,
    max_bytes: int,
) -> FilterResult:
    """Filter one upstream response body; raise ``UpstreamUnavailable`` when it cannot be.

    The result's body is identity-encoded (``content_encoding`` None) whenever it was
    filtered; an untouched pass keeps the upstream's encoding.
    """
    kind = media_format(content_type)
    if not body or (resource is None and kind not in ("json", "xml")):
        return FilterResult(body, 0, content_encoding=content_encoding)  # nothing to filter
    if resource is None and not content_encoding and not may_name_any(body, catalog.always_mask):
        # Unmapped and no safety-net name in any spelling: pass untouched, unparsed. PII is
        # counted where Wardgate reads records (mapped routes), not on every passing byte.
        return FilterResult(body, 0, content_encoding=content_encoding)
    if resource is not None and kind != resource.format:
        raise unfilterable(
            f"content type {content_type!r} is not the {resource.format} this route is mapped to"
        )
    if len(body) > max_bytes:
        raise too_large(max_bytes)
    raw = decode_body(body, content_encoding, max_bytes)
    if not raw:
        return FilterResult(raw, 0)  # e.g. a gzip stream of nothing
    compiled = compile_plan(plan if resource is not None else None, catalog)
    try:
        if kind == "json":
            steps = resource.json_path if resource is not None else None
            out, records, masked = filter_json(raw, steps, compiled, masker)
        elif kind == "xml":
            xpath = resource.xpath if resource is not None else None
            out, records, masked = filter_xml(raw, xpath, compiled, masker)
        else:
            out, records, masked = filter_csv(raw, resource is not None, compiled, masker)
    except Unfilterable as exc:
        raise unfilterable(str(exc)) from None
    # PII is counted where records are read; the safety net on unmapped routes only masks
    pii = dict(count_pii(raw)) if resource is not None else {}
    return FilterResult(out, records, tuple(sorted(masked)), pii, None)
