"""Hide fields in a parsed XML tree: the walk every SOAP filter uses, and the whole-tree filter.

Elements and attributes are matched by local name (casefolded) whatever prefix or
namespace the document uses; records are found by the resource's XPath, relative to the
SOAP Body, with the prefixes declared in ``resources.yaml`` (so matched by namespace URI).
The hardened parser (``safexml``) refuses DTDs, never resolves entities, merges CDATA into
text and drops comments, so neither can split or smuggle a value. A SOAP Fault carries no
records: it passes byte for byte unless the safety net has something to mask in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from lxml import etree

from gateway.fieldplan import HideAction, HideRule
from gateway.masking import Masker, mask_pii
from gateway.payloads.json import Unfilterable
from gateway.payloads.plan import COVERED, CompiledPlan, NameTable
from gateway.payloads.safexml import is_soap_fault, soap_body


class XmlWalk:
    """Hides elements and attributes of one document; remembers the names it hid."""

    def __init__(self, masker: Masker, mask_pii: bool) -> None:
        self.masker = masker
        self.mask_pii = mask_pii
        self.masked: set[str] = set()

    def run(
        self,
        roots: Iterable[etree._Element],
        table: NameTable,
        records: frozenset[etree._Element] = frozenset(),
    ) -> None:
        """Hide by ``table`` in each of ``roots``, never entering the subtrees in ``records``."""
        hits: list[tuple[etree._Element, HideRule]] = []
        memo, lookup, pii = table.tag_memo, table.lookup_tag, self.mask_pii
        for root in roots:
            for el in _elements(root, records) if records else root.iter():
                tag = el.tag
                try:
                    rule = memo[tag]  # lookup_tag's own memo, read inline: this loop is hot
                except KeyError:
                    if not isinstance(tag, str):
                        continue  # an unresolved entity reference: it carries no text of its own
                    rule = lookup(tag)
                if rule is not None and rule is not COVERED:
                    hits.append((el, rule))
                    if pii and el.tail:  # the text after it is its parent's: it stays
                        el.tail = mask_pii(el.tail)[0]
                    continue  # hiding clears the element: its attributes and text go with it
                if el.attrib:
                    self._attributes(el, table)
                if pii:
                    if rule is None and el.text:
                        el.text = mask_pii(el.text)[0]
                    if el.tail:
                        el.tail = mask_pii(el.tail)[0]
        for el, rule in hits:
            self._hide(el, rule)

    def enter(self, el: etree._Element, table: NameTable) -> None:
        """What ``run`` does to ``el`` itself but its tail: for an element written in parts."""
        if el.attrib:
            self._attributes(el, table)
        if self.mask_pii and el.text:
            el.text = mask_pii(el.text)[0]

    def leave(self, el: etree._Element) -> None:
        """What ``run`` does to the tail of an element written in parts, once it is complete."""
        if self.mask_pii and el.tail:
            el.tail = mask_pii(el.tail)[0]

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


def select_records(xpath: etree.XPath, context: etree._Element) -> list[etree._Element]:
    """The elements ``xpath`` selects from ``context`` (anything else it returns is ignored)."""
    try:
        selected = xpath(context)
    except etree.XPathEvalError as exc:
        raise Unfilterable(f"the records XPath failed ({exc})") from None
    if not isinstance(selected, list):
        return []
    return [el for el in selected if isinstance(el, etree._Element)]


def filter_tree(
    root: etree._Element,
    original: bytes,
    xpath: etree.XPath | None,
    plan: CompiledPlan,
    masker: Masker,
) -> tuple[bytes, int, set[str]]:
    """Filter a whole parsed document: (new body, records, names hidden)."""
    soap = soap_body(root)
    walk = XmlWalk(masker, plan.mask_pii)
    if is_soap_fault(soap):
        walk.run((root,), plan.outside)
        return (original if not walk.masked else _serialise(root, original)), 0, walk.masked
    records = select_records(xpath, soap) if xpath is not None else []
    walk.run(records, plan.inside)
    walk.run((root,), plan.outside, frozenset(records))
    return _serialise(root, original), len(records), walk.masked


def _serialise(root: etree._Element, original: bytes) -> bytes:
    tree = root.getroottree()
    return etree.tostring(
        tree, encoding=tree.docinfo.encoding or "UTF-8", xml_declaration=has_declaration(original)
    )


def has_declaration(original: bytes) -> bool:
    """Whether the upstream's body started with an XML declaration (the output keeps it)."""
    return original.lstrip().startswith(b"<?xml")
