"""Pagination crawl: one collection walked page after page (or offset after offset)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from audit.detectors.base import Context, Finding, plural, span_text
from audit.detectors.config import CrawlConfig


def page_position(query: Mapping[str, str], params: Sequence[str]) -> int | None:
    """How deep into a collection a request reads: 0 for the first page, None if unpaged.

    ``page=1``/``page=0`` and ``offset=0`` are the first page; any later page, offset or an
    opaque continuation ``cursor`` counts as a step further into the collection.
    """
    for name in params:
        raw = query.get(name)
        if raw is None:
            continue
        if name == "cursor":
            return 1 if raw else 0
        try:
            value = int(raw)
        except ValueError:
            return 1  # an unparseable position is still a position; count it
        return max(0, value - 1) if name == "page" else max(0, value)
    return None


class CrawlDetector:
    """Adds up paginated calls per person and collection (upstream + path) in one window.

    Pages are not judged one by one: each continuation page bumps a shared counter, so a
    walk split across replicas, or spread over slow requests, still adds up.
    """

    name = "crawl"

    def __init__(self, config: CrawlConfig) -> None:
        self._cfg = config

    def check(self, ctx: Context) -> Sequence[Finding]:
        if ctx.crawl_pages is None or ctx.crawl_records is None:
            return ()
        scale = ctx.scale(self.name)
        pages, records = ctx.crawl_pages, ctx.crawl_records
        if pages < self._cfg.pages * scale or records < self._cfg.records * scale:
            return ()
        obs = ctx.obs
        collection = f"{obs.upstream}:{obs.path}"
        return (
            Finding(
                detector=self.name,
                severity=self._cfg.severity,
                action=self._cfg.action,
                count=records,
                window_s=self._cfg.window,
                scope=collection,
                explanation=(
                    f"{obs.subject} walked {plural(pages)} pages of {obs.path} and read "
                    f"{plural(records)} {obs.entity} records within "
                    f"{span_text(self._cfg.window)}"
                ),
                evidence={"collection": collection, "pages": pages, "query": dict(obs.query)},
            ),
        )
