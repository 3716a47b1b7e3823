"""One hardened way to parse XML, shared by the resource map, the SOAP filter and write guard.

Threats: entity expansion (billion laughs, quadratic blow-up), external entities and DTDs
reaching ``file://`` or the network, and very deep nesting. Any document type declaration
is refused outright (SOAP forbids them); libxml2 without ``huge_tree`` stops at depth 256
and at 10 MB text nodes; entities are never resolved and nothing is loaded from anywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from lxml import etree

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
SOAP_NAMESPACES = frozenset({SOAP11_NS, SOAP12_NS})

_local = threading.local()  # lxml parsers must not be shared between threads


# The same options for every parser: whole-document and pull (streaming) parsing alike.
_HARDENED = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "strip_cdata": True,  # CDATA becomes plain text, so it is filtered like text
    "remove_comments": True,  # a comment can neither split a value nor carry data out
    "remove_pis": True,
}
_ENVELOPES = tuple(f"{{{ns}}}Envelope" for ns in sorted(SOAP_NAMESPACES))


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(**_HARDENED)
    return parser


def parse_xml(body: bytes, *, error: Callable[[str], Exception]) -> etree._Element:
    """Parse ``body`` or raise ``error(reason)``; a DTD is refused before or after parsing."""
    _refuse_doctype(body, error)
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise error(f"not well-formed XML ({exc.msg})") from None
    _refuse_dtd(root, error)
    return root


def parse_chunks(
    body: bytes, size: int, *, error: Callable[[str], Exception]
) -> Iterator[tuple[etree._Element | None, bool]]:
    """Parse ``body`` ``size`` bytes at a time, hardened like ``parse_xml``.

    Yields ``(root, done)`` after each chunk: the root element as parsed so far (``None``
    until it is known: only a SOAP Envelope root is seen before the end), and finally the
    whole document with ``done`` True. Between chunks the caller may change and drop
    elements that are complete; the last child at each level may still be growing.
    """
    _refuse_doctype(body, error)
    parser = etree.XMLPullParser(events=("start",), tag=_ENVELOPES, **_HARDENED)
    root: etree._Element | None = None
    try:
        for start in range(0, len(body), size):
            parser.feed(body[start : start + size])
            for _event, el in parser.read_events():  # drained: events keep elements alive
                if root is None:
                    root = el.getroottree().getroot()
                    _refuse_dtd(root, error)  # before anything is done with the document
            yield root, False
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        raise error(f"not well-formed XML ({exc.msg})") from None
    _refuse_dtd(root, error)
    yield root, True


def _refuse_doctype(body: bytes, error: Callable[[str], Exception]) -> None:
    if b"<!DOCTYPE" in body:
        raise error("a document type declaration (DTD) is not allowed")


def _refuse_dtd(root: etree._Element, error: Callable[[str], Exception]) -> None:
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise error("a document type declaration (DTD) is not allowed")  # e.g. UTF-16 input


def is_soap_envelope(root: etree._Element) -> bool:
    qname = etree.QName(root)
    return qname.localname == "Envelope" and qname.namespace in SOAP_NAMESPACES


def soap_body(root: etree._Element) -> etree._Element:
    """The SOAP Body of an envelope (1.1 or 1.2); a non-SOAP document is its own body."""
    if not is_soap_envelope(root):
        return root
    ns = etree.QName(root).namespace
    body = root.find(f"{{{ns}}}Body")
    return root if body is None else body


def is_soap_fault(body: etree._Element) -> bool:
    """True when the Body holds a Fault (it carries no records and passes unfiltered)."""
    first = next((el for el in body if isinstance(el.tag, str)), None)
    if first is None:
        return False
    qname = etree.QName(first)
    return qname.localname == "Fault" and qname.namespace in SOAP_NAMESPACES
