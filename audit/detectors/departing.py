"""Departing people: every bulk read of someone who handed in notice alerts.

The heightened watch on every other detector (thresholds × ``factor``) is applied by the
guard through ``Context.scale``; this detector adds the per-response rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from audit.detectors.base import Context, Finding, plural
from audit.detectors.config import DepartingConfig


class DepartingDetector:
    """Fires on any response of ``bulk_records`` or more to a departing person."""

    name = "departing"

    def __init__(self, config: DepartingConfig) -> None:
        self._cfg = config

    def check(self, ctx: Context) -> Sequence[Finding]:
        obs = ctx.obs
        # Only false-positive feedback moves this threshold, not the departing factor itself.
        if not ctx.departing or obs.records < self._cfg.bulk_records * ctx.adjust(self.name):
            return ()
        return (
            Finding(
                detector=self.name,
                severity=self._cfg.severity,
                action=self._cfg.action,
                count=ctx.days[-1],
                window_s=86400,
                explanation=(
                    f"{obs.subject} is leaving and read {plural(obs.records)} {obs.entity} "
                    f"records in one response ({plural(ctx.days[-1])} today)"
                ),
                evidence={"response_records": obs.records, "today": ctx.days[-1]},
            ),
        )
