"""Hide fields in a parsed XML tree: the walk every SOAP filter uses, and the whole-tree filter.

Elements and attributes are matched by local name (casefolded) whatever prefix or
namespace the document uses; records are found by the resource's XPath, relative to the
SOAP Body, with the prefixes declared in ``resources.yaml`` (so matched by namespace URI).
The hardened parser (``safexml``) refuses DTDs, never resolves entities, merges CDATA into
text and drops comments, so neither can split or smuggle a value. A SOAP Fault carries no
records: it passes byte for byte unless the safety net has something to mask in it.

Each value is hidden exactly once, from what the upstream sent. An element the plan hides
is hidden whole and never entered: nothing inside it (a nested hidden field, PII, a record)
is edited first. Everything outside the records is walked first, so a record inside an
element hidden whole goes with it; then each record by the entity's plan, a record inside
another record (a ``//`` path) with the outer one: it is the same plan, applied once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import islice

from lxml import etree

from gateway.fieldplan import HideAction, HideRule
from gateway.masking import Masker, mask_pii
from gateway.payloads.json import Unfilterable
from gateway.payloads.plan import COVERED, CompiledPlan, NameTable
from gateway.payloads.safexml import is_soap_fault, soap_body

# One step's name test (``p:Name``, ``Name``, ``p:*``, ``*``), also read by ``xmlstream``.
_NAME = r"[^\W\d][\w.-]*"
NAME_TEST = rf"(?:child::)?(?:\*|{_NAME}:\*|(?:{_NAME}:)?{_NAME})"
_FIXED_DEPTH = re.compile(rf"(?:\./)?{NAME_TEST}(?:/{NAME_TEST})*")


class XmlWalk:
    """Hides elements and attributes of one document; remembers the names it hid."""

    def __init__(self, masker: Masker, mask_pii: bool, nested: bool = False) -> None:
        self.masker = masker
        self.mask_pii = mask_pii
        self.nested = nested  # records may hold records (see ``may_nest``)
        self.masked: set[str] = set()

    def run(
        self,
        roots: Iterable[etree._Element],
        table: NameTable,
        records: frozenset[etree._Element] = frozenset(),
    ) -> set[etree._Element]:
        """Hide by ``table`` in each of ``roots``, never entering the subtrees in ``records``;
        returns the ``records`` that went with an element hidden whole."""
        hits: list[tuple[etree._Element, HideRule]] = []
        memo, lookup, pii = table.tag_memo, table.lookup_tag, self.mask_pii
        for root in roots:
            nodes = _nodes(root, records)
            for el in nodes:
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
                    if len(el):
                        _skip_inside(nodes, el, records)  # hidden whole, from the upstream's text
                    continue  # hiding clears the element: its attributes and text go with it
                if el.attrib:
                    self._attributes(el, table)
                if pii:
                    if rule is None and el.text:
                        el.text = mask_pii(el.text)[0]
                    if el.tail:
                        el.tail = mask_pii(el.tail)[0]
        gone: set[etree._Element] = set()
        for el, rule in hits:
            if records and len(el):
                gone.update(filter(records.__contains__, el.iter()))
            self._hide(el, rule)
        return gone

    def document(
        self, rest: Iterable[etree._Element], records: list[etree._Element], plan: CompiledPlan
    ) -> None:
        """Hide by the plan outside the records in ``rest``, then inside each record once."""
        if self.mask_pii:
            # A record's tail is outside text that the outside walk never visits; mask it
            # before that walk can join a removed element's tail onto it ("a@b.cn" + "v1"
            # would no longer read as an e-mail). Masking masked text changes nothing.
            for record in records:
                if record.tail:
                    record.tail = mask_pii(record.tail)[0]
        gone = self.run(rest, plan.outside, frozenset(records))
        if self.nested or gone:
            records = _outermost(records, gone)
        self.run(records, plan.inside)

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


def _nodes(root: etree._Element, records: frozenset[etree._Element]) -> Iterator[etree._Element]:
    """``root`` and every node below it in document order, but the subtrees of ``records``."""
    return _outside(root, records) if records else root.iter()


def _outside(root: etree._Element, records: frozenset[etree._Element]) -> Iterator[etree._Element]:
    walker = etree.iterwalk(root, events=("start",))
    for _event, el in walker:
        if el in records:
            walker.skip_subtree()  # the inside walk handles it by the plan
        else:
            yield el


def _skip_inside(
    nodes: Iterator[etree._Element], el: etree._Element, records: frozenset[etree._Element]
) -> None:
    """Take what ``nodes`` holds below ``el``, the node it gave last, without looking at it."""
    below = sum(1 for _ in _nodes(el, records)) - 1
    next(islice(nodes, below, below), None)  # itertools' "consume" recipe: in C


def _outermost(records: list[etree._Element], gone: set[etree._Element]) -> list[etree._Element]:
    """The records neither inside another record nor hidden with an element around them."""
    enclosing = set(records)
    return [r for r in records if r not in gone and enclosing.isdisjoint(r.iterancestors())]


def may_nest(xpath: etree.XPath) -> bool:
    """Whether a record ``xpath`` selects may hold another: False only for paths of child
    steps (every record at the same depth)."""
    return _FIXED_DEPTH.fullmatch(xpath.path) is None


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
    walk = XmlWalk(masker, plan.mask_pii, xpath is not None and may_nest(xpath))
    if is_soap_fault(soap):
        walk.run((root,), plan.outside)
        return (original if not walk.masked else _serialise(root, original)), 0, walk.masked
    records = select_records(xpath, soap) if xpath is not None else []
    walk.document((root,), records, plan)
    return _serialise(root, original), len(records), walk.masked


def _serialise(root: etree._Element, original: bytes) -> bytes:
    tree = root.getroottree()
    return etree.tostring(
        tree, encoding=tree.docinfo.encoding or "UTF-8", xml_declaration=has_declaration(original)
    )


def has_declaration(original: bytes) -> bool:
    """Whether the upstream's body started with an XML declaration (the output keeps it)."""
    return original.lstrip().startswith(b"<?xml")
