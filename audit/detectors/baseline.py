"""Personal baseline: today's total against the person's own 30-day history."""

from __future__ import annotations

from collections.abc import Sequence

from audit.detectors.base import Context, Finding, plural, robust_z
from audit.detectors.config import BaselineConfig


class BaselineDetector:
    """Robust z-score of today's records against the person's active days (median/MAD).

    Only days on which the person read anything count, so weekends and leave do not drag
    the median to zero. Silent until ``learning_days`` active days exist; never fires below
    the absolute ``floor``.
    """

    name = "baseline"

    def __init__(self, config: BaselineConfig) -> None:
        self._cfg = config
        self._cache: dict[tuple[str, str], tuple[int, float, float, int]] = {}

    def check(self, ctx: Context) -> Sequence[Finding]:
        today = ctx.days[-1]
        scale = ctx.scale(self.name)
        if today < self._cfg.floor * scale:
            return ()
        obs = ctx.obs
        key = (obs.subject, obs.entity)
        cached = self._cache.get(key)
        if cached is None or cached[0] != ctx.local.day:
            active = ctx.active_past_days
            if len(active) < self._cfg.learning_days:
                return ()
            _, med, mad = robust_z(0, [ctx.days[i] for i in active])
            cached = self._cache[key] = (ctx.local.day, med, mad, len(active))
        _, med, mad, n_days = cached
        z = (today - med) / max(1.4826 * mad, 0.1 * med, 1.0)
        if z < self._cfg.z * scale:
            return ()
        return (
            Finding(
                detector=self.name,
                severity=self._cfg.severity,
                action=self._cfg.action,
                count=today,
                window_s=86400,
                explanation=(
                    f"{obs.subject} read {plural(today)} {obs.entity} records today; their "
                    f"30-day median is {plural(med)} a day (z-score {z:.1f})"
                ),
                evidence={"median": med, "mad": mad, "z": round(z, 2), "active_days": n_days},
            ),
        )
