"""Personal baseline: today's total, and the last few active days together, against the
person's own 30-day history."""

from __future__ import annotations

from collections.abc import Sequence

from audit.detectors.base import Context, Finding, daily_finding, plural
from audit.detectors.config import BaselineConfig


class BaselineDetector:
    """Robust z-score of the person's records of one entity against their active days.

    Two rules, both silent until ``learning_days`` active days exist and below the absolute
    ``floor`` records today:

    - one day far out: today's z-score (median and σ of the active past days) ≥ ``z``;
    - a slow drip: the last ``drip_days`` active days (today included) judged as one sum
      against the active days before them. Each day adds its z-score, capped at ``drip_cap``
      so one odd day cannot make a drip on its own; the sum over √drip_days is the z-score of
      the total and must reach ``drip_z``. A steady moderate excess that no single day shows
      grows with every day of the drip; ordinary noise does not. A drip alerts once: while
      the window that ended on the previous active day was already over the bar, later days
      are the same episode.

    σ is the wider of the MAD and the person's own upper tail (see ``history.day_scale``):
    someone whose days are naturally lumpy is judged against their own lumps.
    """

    name = "baseline"

    def __init__(self, config: BaselineConfig) -> None:
        self._cfg = config

    def check(self, ctx: Context) -> Sequence[Finding]:
        today = ctx.days[-1]
        scale = ctx.scale(self.name)
        if today < self._cfg.floor * scale:
            return ()
        history = ctx.history
        if len(history.active_past_days) < self._cfg.learning_days:
            return ()
        obs = ctx.obs
        z = (today - history.median) / history.sigma
        evidence = {
            "median": history.median,
            "mad": history.mad,
            "sigma": round(history.sigma, 1),
            "z": round(z, 2),
            "active_days": len(history.active_past_days),
        }
        if z >= self._cfg.z * scale:
            explanation = (
                f"{obs.subject} read {plural(today)} {obs.entity} records today; "
                f"their 30-day median is {plural(history.median)} a day (z-score {z:.1f})"
            )
            return daily_finding(self.name, self._cfg, today, explanation, evidence)
        drip, bar = history.drip, self._cfg.drip_z * scale
        # One alert per drip: the days after the one it crossed the bar add nothing new.
        if drip is None or drip.previous_z >= bar:
            return ()
        drip_z = drip.z(today)
        if drip_z < bar:
            return ()
        total = drip.past_records + today
        explanation = (
            f"{obs.subject} read {plural(total)} {obs.entity} records over their last "
            f"{drip.days} active days, {plural(total - drip.days * drip.median)} more than "
            f"usual; their median before was {plural(drip.median)} a day "
            f"(z-score of the total {drip_z:.1f})"
        )
        evidence |= {"drip_days": drip.days, "drip_total": total, "drip_z": round(drip_z, 2)}
        return daily_finding(self.name, self._cfg, today, explanation, evidence)
