"""Filter a SOAP/XML response: hide elements and attributes in records, safety net elsewhere.

Elements and attributes are matched by local name (casefolded) whatever prefix or
namespace the document uses; records are found by the resource's XPath, relative to the
SOAP Body, with the prefixes declared in ``resources.yaml`` (so matched by namespace URI).
The hardened parser (``safexml``) refuses DTDs, never resolves entities, merges CDATA into
text and drops comments, so neither can split or smuggle a value. A SOAP Fault carries no
records: it passes byte for byte unless the safety net has something to mask in it.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from gateway.fieldplan import HideAction, HideRule
from gateway.masking import Masker, mask_pii
from gateway.payloads.json import Unfilterable
from gateway.payloads.plan import COVERED, CompiledPlan, NameTable
from gateway.payloads.safexml import is_soap_fault, parse_xml, soap_body


class _XmlWalk:
    """Hides elements and attributes of one document; remembers the names it hid."""

    def __init__(self, masker: Masker, mask_pii: bool) -> None:
        self.masker = masker
        self.mask_pii = mask_pii
        self.masked: set[str] = set()

    def run(
        self,
        root: etree._Element,
        table: NameTable,
        records: frozenset[etree._Element] = frozenset(),
    ) -> None:
        """Hide by ``table`` below ``root``, never entering the subtrees in ``records``."""
        hits: list[tuple[etree._Element, HideRule]] = []
        lookup = table.lookup_tag
        for el in _elements(root, records):
            tag = el.tag
            if not isinstance(tag, str):
                continue  # an unresolved entity reference: it carries no text of its own
            rule = lookup(tag)
            if rule is not None and rule is not COVERED:
                hits.append((el, rule))
                continue  # hiding clears the element: its attributes and text go with it
            if el.attrib:
                self._attributes(el, table)
            if self.mask_pii:
                if rule is None and el.text:
                    el.text = mask_pii(el.text)[0]
                if el.tail:
                    el.tail = mask_pii(el.tail)[0]
        for el, rule in hits:
            self._hide(el, rule)

    def _attributes(self, el: etree._Element, table: NameTable) -> None:
        attrib = el.attrib
        for name in list(attrib.keys()):
            rule = table.lookup_tag(name)
            if rule is None:
                if self.mask_pii:
                    attrib[name] = mask_pii(attrib[name])[0]
            elif rule is not COVERED:
                self.masked.add(rule.field)
                if rule.action is HideAction.REMOVE:
                    del attrib[name]
                else:
                    attrib[name] = self.masker.hide_text(rule, attrib[name])

    def _hide(self, el: etree._Element, rule: HideRule) -> None:
        parent = el.getparent()
        self.masked.add(rule.field)
        if rule.action is HideAction.REMOVE and parent is not None:
            _remove_keeping_tail(parent, el)
            return
        text = "".join(el.itertext())
        el.clear(keep_tail=True)  # children and attributes go too: nothing of it survives
        el.text = self.masker.hide_text(rule, text) if rule.action is not HideAction.REMOVE else ""


def _elements(root: etree._Element, records: frozenset[etree._Element]) -> Iterator[etree._Element]:
    """Every element below ``root`` in document order, skipping record subtrees."""
    if not records:
        yield from root.iter()
        return
    walker = etree.iterwalk(root, events=("start",))
    for _event, el in walker:
        if el in records:
            walker.skip_subtree()  # the inside walk already handled it by the plan
        else:
            yield el


def _remove_keeping_tail(parent: etree._Element, el: etree._Element) -> None:
    # The tail is the parent's text after the element, not the element's own value.
    if el.tail:
        previous = el.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    parent.remove(el)


def filter_xml(
    body: bytes, xpath: etree.XPath | None, plan: CompiledPlan, masker: Masker
) -> tuple[bytes, int, set[str]]:
    """(new body, records, names hidden). ``xpath`` None: unmapped, safety net only."""
    root = parse_xml(body, error=Unfilterable)
    soap = soap_body(root)
    walk = _XmlWalk(masker, plan.mask_pii)
    if is_soap_fault(soap):
        walk.run(root, plan.outside)
        return (body if not walk.masked else _serialise(root, body)), 0, walk.masked
    records: list[etree._Element] = []
    if xpath is not None:
        try:
            selected = xpath(soap)
        except etree.XPathEvalError as exc:
            raise Unfilterable(f"the records XPath failed ({exc})") from None
        records = (
            [el for el in selected if isinstance(el, etree._Element)]
            if isinstance(selected, list)
            else []
        )
        for record in records:
            walk.run(record, plan.inside)
    walk.run(root, plan.outside, frozenset(records))
    return _serialise(root, body), len(records), walk.masked


def _serialise(root: etree._Element, original: bytes) -> bytes:
    tree = root.getroottree()
    declared = original.lstrip().startswith(b"<?xml")
    return etree.tostring(tree, encoding=tree.docinfo.encoding or "UTF-8", xml_declaration=declared)
