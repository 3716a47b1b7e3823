"""Pagination crawl: one collection walked page after page (or offset after offset)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from audit.detectors.base import Context, Finding, plural, span_text
from audit.detectors.config import CrawlConfig


def page_index(query: Mapping[str, str], config: CrawlConfig) -> int | None:
    """Which page of a collection a request reads (0 = the first), ``None`` if unpaged.

    ``page`` counts from 1; an offset is divided by the page size sent with it (or
    ``default_page_size``); an opaque ``cursor`` is a continuation of unknown depth and
    counts as deep; an unparseable position counts as deep too (never a way around).
    """
    for name in config.params:
        raw = query.get(name)
        if raw is None:
            continue
        if name == "cursor":
            return config.depth if raw else 0
        try:
            value = int(raw)
        except ValueError:
            return config.depth
        if name == "page":
            return max(0, value - 1)
        return max(0, value) // _page_size(query, config)
    return None


def _page_size(query: Mapping[str, str], config: CrawlConfig) -> int:
    for name in config.size_params:
        raw = query.get(name, "")
        if raw.isdigit() and int(raw) > 0:
            return int(raw)
    return config.default_page_size


class CrawlDetector:
    """Adds up paginated calls per person and collection (upstream + path) in one window.

    A person browsing looks at the first few pages; a crawl walks deep. Pages are not judged
    one by one: each page at index ``depth`` or beyond bumps a shared counter, so a walk
    split across replicas, or spread over slow requests, still adds up; the alert needs
    ``pages`` deep pages and ``records`` records on paginated calls in one window. Roles in
    ``exempt_roles`` (integration bots that page through collections by design) are skipped;
    volume limits still apply to them.
    """

    name = "crawl"

    def __init__(self, config: CrawlConfig) -> None:
        self._cfg = config
        self._exempt = frozenset(config.exempt_roles)

    def check(self, ctx: Context) -> Sequence[Finding]:
        if ctx.crawl_pages is None or ctx.crawl_records is None:
            return ()
        if not self._exempt.isdisjoint(ctx.obs.roles):
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
                    f"{obs.subject} walked {plural(pages)} deep pages of {obs.path} and read "
                    f"{plural(records)} {obs.entity} records within "
                    f"{span_text(self._cfg.window)}"
                ),
                evidence={"collection": collection, "pages": pages, "query": dict(obs.query)},
            ),
        )
