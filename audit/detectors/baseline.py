"""Personal baseline: today's total against the person's own 30-day history."""

from __future__ import annotations

from collections.abc import Sequence

from audit.detectors.base import Context, Finding, daily_finding, plural
from audit.detectors.config import BaselineConfig


class BaselineDetector:
    """Robust z-score of today's records against the person's active days (median/MAD).

    Fires on one day far out (``z``), or on a slow drip: ``sustained_days`` active days in a
    row (today included) each at least ``sustained_z`` above the median. Only days on which
    the person read anything count, so weekends and leave do not drag the median to zero.
    Silent until ``learning_days`` active days exist; never fires below the absolute
    ``floor``.
    """

    name = "baseline"

    def __init__(self, config: BaselineConfig) -> None:
        self._cfg = config

    def check(self, ctx: Context) -> Sequence[Finding]:
        today = ctx.days[-1]
        scale = ctx.scale(self.name)
        if today < self._cfg.floor * scale or len(ctx.active_past_days) < self._cfg.learning_days:
            return ()
        med, mad = ctx.median_day, ctx.mad_day
        sigma = max(1.4826 * mad, 0.1 * med, 1.0)
        z = (today - med) / sigma
        obs = ctx.obs
        if z >= self._cfg.z * scale:
            detail = ""
        elif z >= self._cfg.sustained_z * scale and self._sustained(ctx):
            detail = f", as on each of their {self._cfg.sustained_days - 1} active days before"
        else:
            return ()
        return daily_finding(
            self.name,
            self._cfg,
            today,
            (
                f"{obs.subject} read {plural(today)} {obs.entity} records today{detail}; "
                f"their 30-day median is {plural(med)} a day (z-score {z:.1f})"
            ),
            {
                "median": med,
                "mad": mad,
                "z": round(z, 2),
                "active_days": len(ctx.active_past_days),
                "sustained": bool(detail),
            },
        )

    def _sustained(self, ctx: Context) -> bool:
        """The person's last active days before today were each far above the median too."""
        previous = ctx.active_past_days[-(self._cfg.sustained_days - 1) :]
        if len(previous) < self._cfg.sustained_days - 1:
            return False
        sigma = max(1.4826 * ctx.mad_day, 0.1 * ctx.median_day, 1.0)
        bar = ctx.median_day + self._cfg.sustained_z * ctx.scale(self.name) * sigma
        return all(ctx.days[i] >= bar for i in previous)
