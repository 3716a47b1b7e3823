"""First access: a person with a history reads an entity they have not read in 30 days."""

from __future__ import annotations

from collections.abc import Sequence

from audit.detectors.base import HISTORY_DAYS, Context, Finding, daily_finding, plural
from audit.detectors.config import FirstAccessConfig


class FirstAccessDetector:
    """Fires once ``records`` of a new entity were read today by a person with at least
    ``learning_days`` active days (so a newcomer's first week is not all alerts)."""

    name = "first_access"

    def __init__(self, config: FirstAccessConfig) -> None:
        self._cfg = config

    def check(self, ctx: Context) -> Sequence[Finding]:
        today = ctx.days[-1]
        history = ctx.history
        if today < self._cfg.records * ctx.scale(self.name) or history.read_before:
            return ()
        active = len(history.active_past_days)
        if active < self._cfg.learning_days:
            return ()
        obs = ctx.obs
        return daily_finding(
            self.name,
            self._cfg,
            today,
            (
                f"{obs.subject} read {plural(today)} {obs.entity} records today, the first "
                f"{obs.entity} records in {HISTORY_DAYS} days ({active} active days)"
            ),
            {"active_days": active},
        )
