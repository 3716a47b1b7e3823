"""Filter a large SOAP response while it is parsed, holding about one chunk of it as a tree.

A whole lxml tree costs about 8x the body. Here the hardened pull parser
(``safexml.parse_chunks``) is fed ``CHUNK`` bytes at a time. After each chunk everything that
is complete is filtered exactly as the whole-tree filter (``xmltree``) would, written out and
dropped. What may still grow waits: the "open chain" (the root, its last child, that one's
last child, ...). An element on the chain is written in parts (start tag and text now,
children as they complete, end tag and tail once it has left the chain); a record, or an
element the plan hides, is only ever written whole.

Records are selected by the resource's XPath on what is left of the tree. That selects what
it would on the whole document only for plain location paths (``streamable``): name tests
(``p:Name``, ``Name``, ``p:*``, ``*``) joined by ``/`` or ``//``, no predicates, functions or
other axes. Other XPaths go to the whole-tree filter, and so do bodies that are not UTF-8,
ASCII or ISO-8859 (complete children are written as bytes cut out of one serialisation).

Nothing is written before the SOAP Body's first element has started: a SOAP Fault, an
envelope without a Body, or a document whose root is not a SOAP Envelope is filtered as a
whole tree once parsed (the Fault rules need the whole document; such bodies are small).
Memory is then about one chunk's tree plus the output, unless one element that must be
judged whole (a record, an element the plan hides) is itself large.
"""

from __future__ import annotations

import io
import re
from contextlib import AbstractContextManager
from typing import Any

from lxml import etree

from gateway.masking import Masker
from gateway.payloads.json import Unfilterable
from gateway.payloads.plan import CompiledPlan
from gateway.payloads.safexml import is_soap_envelope, is_soap_fault, parse_chunks, soap_body
from gateway.payloads.xmltree import (
    NAME_TEST,
    XmlWalk,
    filter_tree,
    has_declaration,
    may_nest,
    select_records,
)

CHUNK = 64 * 1024  # bytes fed per step: the tree held is about 8x this, plus the output

_PLAIN_PATH = re.compile(rf"(?:\.//?)?{NAME_TEST}(?://?{NAME_TEST})*")
_DECLARED_ENCODING = re.compile(rb"\sencoding\s*=\s*[\"']([A-Za-z][\w.-]*)[\"']")
_BYTE_SAFE = re.compile(r"utf-?8|(?:us-)?ascii|iso-8859-\d+|latin-?1", re.IGNORECASE)
_XML_NS = "http://www.w3.org/XML/1998/namespace"
_HOLDER_END = b"</h>"

Tops = dict[etree._Element, list[etree._Element]]


def streamable(xpath: etree.XPath, body: bytes) -> bool:
    """True when ``xpath`` selects the same records from a partly parsed, pruned tree and
    the body's encoding lets serialised children be cut by bytes."""
    return _PLAIN_PATH.fullmatch(xpath.path) is not None and _encoding(body) is not None


def filter_streaming(
    body: bytes, xpath: etree.XPath, plan: CompiledPlan, masker: Masker, chunk: int = CHUNK
) -> tuple[bytes, int, set[str]]:
    """(new body, records, names hidden), as ``xmltree.filter_tree`` gives; see ``streamable``."""
    encoding = _encoding(body)
    assert encoding is not None, "streamable() said the body could be streamed"
    walk = XmlWalk(masker, plan.mask_pii, may_nest(xpath))
    stream = _Stream(xpath, plan, walk, encoding, has_declaration(body))
    for root, done in parse_chunks(body, chunk, error=Unfilterable):
        if root is not None and stream.ready(root):
            stream.flush(root, done)
        if done and root is not None and not stream.started:
            return filter_tree(root, body, xpath, plan, masker)
    return stream.result()


def _encoding(body: bytes) -> str | None:
    """The body's declared encoding (UTF-8 if none) when it is one byte-safe to cut."""
    head = body.lstrip()
    if not head.startswith(b"<"):
        return None  # a byte order mark, UTF-16 or UTF-32
    declaration = head[: head.find(b"?>")] if head.startswith(b"<?xml") else b""
    found = _DECLARED_ENCODING.search(declaration)
    if found is None:
        return None if b"encoding" in declaration else "UTF-8"
    name = found[1].decode()
    return name if _BYTE_SAFE.fullmatch(name) else None


class _Stream:
    """The state of one streamed document: the output and the elements written in part."""

    def __init__(
        self, xpath: etree.XPath, plan: CompiledPlan, walk: XmlWalk, encoding: str, declared: bool
    ) -> None:
        self.xpath = xpath
        self.plan = plan
        self.walk = walk
        self.encoding = encoding
        self.declared = declared
        self.context: etree._Element | None = None  # the SOAP Body, once its first element is in
        self.whole = False  # a Fault: leave the document to the whole-tree filter
        self.out = io.BytesIO()
        self.file: AbstractContextManager[Any] | None = None
        self.writer: Any = None  # lxml's incremental writer (it has no public type)
        self.opened: list[tuple[etree._Element, AbstractContextManager[Any]]] = []
        self.started = False  # something was written: the tree is no longer whole
        self.records = 0

    def ready(self, root: etree._Element) -> bool:
        """Whether writing may go on (or begin): the Body is known and holds no Fault."""
        if self.context is not None or self.whole:
            return not self.whole
        context = soap_body(root)
        if (context is root and is_soap_envelope(root)) or not len(context):
            return False  # the Body or its first element has not started yet
        if is_soap_fault(context):
            self.whole = True
            return False
        self.context = context
        return True

    def flush(self, root: etree._Element, done: bool) -> None:
        """Write out and drop everything complete; ``done``: the whole document is."""
        assert self.context is not None, "flush() after ready()"
        records = select_records(self.xpath, self.context)
        chain = [] if done else _open_chain(root)
        kept = 0
        while kept < min(len(self.opened), len(chain)) and self.opened[kept][0] is chain[kept]:
            kept += 1
        to_open = self._openable(chain, kept, frozenset(records))
        tops = _records_by_top(records, {el for el, _ in self.opened} | set(to_open))
        while len(self.opened) > kept:  # they left the chain: complete
            self._finish(tops)
        for el in to_open:
            if self.opened:
                self._children(self.opened[-1][0], el, tops)
            self._open(el)
        if self.opened:
            nxt = len(self.opened)
            self._children(self.opened[-1][0], chain[nxt] if nxt < len(chain) else None, tops)

    def result(self) -> tuple[bytes, int, set[str]]:
        assert self.file is not None and not self.opened, "the last flush closes everything"
        self.file.__exit__(None, None, None)
        return self.out.getvalue(), self.records, self.walk.masked

    def _openable(
        self, chain: list[etree._Element], start: int, records: frozenset[etree._Element]
    ) -> list[etree._Element]:
        """The chain elements from ``start`` on that can be written in parts, in order."""
        found = []
        for el in chain[start:-1]:  # the last one has no child yet: its text may still grow
            if (
                el in records
                or self.plan.outside.lookup_tag(el.tag) is not None  # hidden: judged whole
                or not _writable_in_parts(el)
            ):
                break
            found.append(el)
        return found

    def _open(self, el: etree._Element) -> None:
        """Write the start tag and text of ``el``, whose first child has started."""
        if self.writer is None:
            # unbuffered: complete children are written to ``out`` directly, in between
            self.file = etree.xmlfile(self.out, encoding=self.encoding, buffered=False)
            self.writer = self.file.__enter__()
            if self.declared:
                self.writer.write_declaration()
            self.started = True
        self.walk.enter(el, self.plan.outside)
        parent = el.getparent()
        inherited = parent.nsmap if parent is not None else {}
        declared = {p: uri for p, uri in el.nsmap.items() if inherited.get(p) != uri}
        tag = self.writer.element(el.tag, dict(el.attrib), nsmap=declared)
        tag.__enter__()
        if el.text:
            self.writer.write(el.text)
        self.opened.append((el, tag))

    def _finish(self, tops: Tops) -> None:
        """Write the rest of the deepest opened element, which is complete, and drop it."""
        el, tag = self.opened.pop()
        self._children(el, None, tops)
        tag.__exit__(None, None, None)
        self.walk.leave(el)
        if el.tail:
            self.writer.write(el.tail)
        parent = el.getparent()
        if parent is not None:
            parent.remove(el)

    def _children(self, parent: etree._Element, before: etree._Element | None, tops: Tops) -> None:
        """Filter, write and drop the children of ``parent`` up to ``before`` (all complete).

        They move into a detached holder that declares the namespaces in scope, so one
        serialisation writes them all as they were spelled, with no declarations added.
        """
        complete = []
        for child in parent:
            if child is before:
                break
            complete.append(child)
        if not complete:
            return
        records: list[etree._Element] = []
        others = []
        for child in complete:
            held = tops.get(child)
            if held:
                records += held
            if not held or held[0] is not child:  # a record itself is not walked outside
                others.append(child)
        holder = etree.Element("h", nsmap=parent.nsmap)
        start = len(self._serialise(holder)) - 1  # "<h xmlns…/>" less "/": the start tag
        holder.extend(complete)
        self.walk.document(others, records, self.plan)
        self.records += len(records)
        if len(holder) or holder.text:
            self.out.write(memoryview(self._serialise(holder))[start : -len(_HOLDER_END)])

    def _serialise(self, el: etree._Element) -> bytes:
        return etree.tostring(el, encoding=self.encoding, xml_declaration=False)


def _open_chain(root: etree._Element) -> list[etree._Element]:
    """The root and, level by level, the last child: the elements that may not be complete."""
    chain = [root]
    while True:
        try:
            chain.append(chain[-1][-1])
        except IndexError:
            return chain


def _records_by_top(records: list[etree._Element], opened: set[etree._Element]) -> Tops:
    """Records grouped by the child of an opened element that holds them (or is them)."""
    tops: Tops = {}
    for record in records:
        top, parent = record, record.getparent()
        while parent is not None and parent not in opened:
            top, parent = parent, parent.getparent()
        if parent is not None:
            tops.setdefault(top, []).append(record)
    return tops


def _writable_in_parts(el: etree._Element) -> bool:
    """False when the incremental writer would misspell ``el``'s start tag: it binds the
    ``xml:`` namespace to a prefix of its own (``ns0:lang``) instead of writing ``xml:lang``."""
    return not any(name.startswith(f"{{{_XML_NS}}}") for name in el.attrib)
