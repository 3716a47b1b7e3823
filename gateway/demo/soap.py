"""SOAP 1.1 plumbing for the demo ERP: read a request safely, write envelopes and faults.

Requests are parsed with lxml hardened against XML attacks: no entity expansion, no
network, no DTD loading, no huge trees; a document that carries any DTD is refused
outright (SOAP 1.1 §3 forbids one). Responses are built as strings with escaping, which
is several times faster than building a tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from lxml import etree

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ERP_NS = "http://demo.wardgate.dev/erp"
CONTENT_TYPE = "text/xml"
ACCEPTED_CONTENT_TYPES = frozenset({"text/xml", "application/xml"})

_ENVELOPE_OPEN = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:erp="{ERP_NS}"><soapenv:Body>'
)
_ENVELOPE_CLOSE = "</soapenv:Body></soapenv:Envelope>"


class SoapFault(Exception):
    """A request the ERP refuses; sent back as a SOAP 1.1 Fault (HTTP 500 unless said)."""

    def __init__(self, message: str, *, code: str = "Client", http_status: int = 500) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


@dataclass(frozen=True, slots=True)
class SoapCall:
    """A parsed request: the operation's local name and its element."""

    operation: str
    element: etree._Element


def hardened_parser() -> etree.XMLParser:
    """An lxml parser that never expands entities or fetches anything."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_call(body: bytes, parser: etree.XMLParser, operations: frozenset[str]) -> SoapCall:
    """The single ERP operation in a SOAP 1.1 request, or a ``SoapFault`` saying what is wrong."""
    if not body.strip():
        raise SoapFault("the request body is empty; send a SOAP 1.1 envelope")
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise SoapFault(f"the request is not well-formed XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise SoapFault("a SOAP message must not contain a DTD (<!DOCTYPE …>)")
    if etree.QName(root).localname == "Envelope" and etree.QName(root).namespace != SOAP_ENV:
        raise SoapFault(f"only SOAP 1.1 envelopes ({SOAP_ENV}) are served", code="VersionMismatch")
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapFault("the document is not a SOAP 1.1 Envelope")
    _refuse_must_understand(root)
    body_element = root.find(f"{{{SOAP_ENV}}}Body")
    if body_element is None:
        raise SoapFault("the Envelope has no Body")
    calls = list(body_element)
    if len(calls) != 1:
        raise SoapFault(f"the Body must hold exactly one operation element, found {len(calls)}")
    name = etree.QName(calls[0])
    if name.namespace != ERP_NS or name.localname not in operations:
        offered = ", ".join(sorted(operations))
        raise SoapFault(f"unknown operation {calls[0].tag}; operations in {ERP_NS}: {offered}")
    return SoapCall(name.localname, calls[0])


def _refuse_must_understand(root: etree._Element) -> None:
    header = root.find(f"{{{SOAP_ENV}}}Header")
    for entry in header if header is not None else ():
        if entry.get(f"{{{SOAP_ENV}}}mustUnderstand") == "1":
            raise SoapFault(f"header {entry.tag} is not understood", code="MustUnderstand")


def text_fields(element: etree._Element, allowed: tuple[str, ...]) -> dict[str, str]:
    """The text of ``element``'s children, each an ERP element named in ``allowed``, once."""
    fields: dict[str, str] = {}
    for child in element:
        name = etree.QName(child)
        if name.namespace != ERP_NS or name.localname not in allowed:
            expected = ", ".join(f"erp:{a}" for a in allowed)
            raise SoapFault(f"unexpected element {child.tag} in {element.tag}; allowed: {expected}")
        if name.localname in fields:
            raise SoapFault(f"element erp:{name.localname} appears twice in {element.tag}")
        if len(child):
            raise SoapFault(f"element erp:{name.localname} must hold text only")
        fields[name.localname] = child.text or ""
    return fields


def only_child(element: etree._Element, name: str) -> etree._Element:
    """``element``'s one child, which must be the ERP element ``name``."""
    children = list(element)
    if len(children) != 1 or children[0].tag != f"{{{ERP_NS}}}{name}":
        raise SoapFault(f"{element.tag} must hold exactly one erp:{name} element")
    return children[0]


def elements(record: dict[str, str], names: tuple[str, ...]) -> str:
    """``<erp:Name>text</erp:Name>`` for each of ``names``, text escaped."""
    return "".join(f"<erp:{n}>{escape(record[n])}</erp:{n}>" for n in names)


def envelope(body_xml: str) -> bytes:
    """A SOAP 1.1 envelope (prefixes ``soapenv`` and ``erp`` declared) around ``body_xml``."""
    return (_ENVELOPE_OPEN + body_xml + _ENVELOPE_CLOSE).encode()


def fault_envelope(fault: SoapFault) -> bytes:
    """A SOAP 1.1 Fault envelope for ``fault``."""
    return envelope(
        f"<soapenv:Fault><faultcode>soapenv:{fault.code}</faultcode>"
        f"<faultstring>{escape(str(fault))}</faultstring></soapenv:Fault>"
    )
