"""Filter a SOAP/XML response: hide elements and attributes in records, safety net elsewhere.

Two ways, one result (see ``xmltree`` for what is hidden and how records are found): a
body larger than one chunk whose records XPath is a plain location path is filtered while
it is parsed (``xmlstream``: memory about one chunk's tree plus the output); anything else
is parsed into one tree and filtered whole (``xmltree``: about 8x the body). Unmapped
bodies (safety net only) are always filtered whole.
"""

from __future__ import annotations

from lxml import etree

from gateway.masking import Masker
from gateway.payloads.json import Unfilterable
from gateway.payloads.plan import CompiledPlan
from gateway.payloads.safexml import parse_xml
from gateway.payloads.xmlstream import CHUNK, filter_streaming, streamable
from gateway.payloads.xmltree import filter_tree


def filter_xml(
    body: bytes, xpath: etree.XPath | None, plan: CompiledPlan, masker: Masker
) -> tuple[bytes, int, set[str]]:
    """(new body, records, names hidden). ``xpath`` None: unmapped, safety net only."""
    if xpath is not None and len(body) > CHUNK and streamable(xpath, body):
        return filter_streaming(body, xpath, plan, masker)
    return filter_tree(parse_xml(body, error=Unfilterable), body, xpath, plan, masker)
