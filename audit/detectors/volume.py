"""Volume: records of one entity per person over sliding windows, limits per role."""

from __future__ import annotations

from collections.abc import Sequence

from audit.detectors.base import Context, Finding, plural, span_text
from audit.detectors.config import VolumeConfig, VolumeRule

WINDOW_BUCKETS = 60  # each window is 60 buckets, so its edge is exact to 1/60th


class VolumeDetector:
    """Fires when a person's records in a window exceed their role's limit.

    A person with several roles gets, per window, the highest limit among their roles (a role
    granted for bulk work must not be judged as a salesperson); a role's rule for the entity
    beats its ``entity: "*"`` rule; people with no role rule fall back to the ``"*"`` rules.
    """

    name = "volume"

    def __init__(self, config: VolumeConfig) -> None:
        self._rules = config.rules
        self.windows: tuple[int, ...] = tuple(sorted({r.window for r in config.rules}))
        # (roles, entity) → per window its rule and the window's place in ``Context.windows``
        self._plans: dict[tuple[tuple[str, ...], str], tuple[tuple[VolumeRule, int], ...]] = {}

    def check(self, ctx: Context) -> Sequence[Finding]:
        obs = ctx.obs
        rules = self._plans.get((obs.roles, obs.entity))
        if rules is None:
            rules = self._plans[(obs.roles, obs.entity)] = self._compile(obs.roles, obs.entity)
        scale = ctx.scale(self.name)
        found: list[Finding] = []
        for rule, place in rules:
            buckets = ctx.windows[place]
            total = sum(buckets)
            limit = rule.max * scale
            if total <= limit:
                continue
            first = next(i for i, n in enumerate(buckets) if n)
            elapsed = (len(buckets) - first) * rule.window / WINDOW_BUCKETS
            found.append(
                Finding(
                    detector=self.name,
                    severity=rule.severity,
                    action=rule.action,
                    count=total,
                    window_s=rule.window,
                    scope=f"{rule.window}s",
                    explanation=(
                        f"{obs.subject} read {plural(total)} {obs.entity} records in "
                        f"{span_text(elapsed)}; the limit for {rule.role} is {plural(limit)} "
                        f"per {span_text(rule.window)}"
                    ),
                    evidence={"window_s": rule.window, "limit": round(limit), "role": rule.role},
                )
            )
        return found

    def _compile(self, roles: tuple[str, ...], entity: str) -> tuple[tuple[VolumeRule, int], ...]:
        """Per window, the highest limit among the person's roles (each role's most specific
        rule); people whose roles have no rule for the window get the ``"*"`` rules."""
        best: dict[int, tuple[VolumeRule, int]] = {}
        for place, window in enumerate(self.windows):
            rules = [r for r in self._rules if r.window == window]
            chosen = [
                self._most_specific([r for r in rules if r.role == role], entity) for role in roles
            ]
            found = [r for r in chosen if r is not None]
            if not found:
                found = [
                    r
                    for r in [self._most_specific([r for r in rules if r.role == "*"], entity)]
                    if r is not None
                ]
            if found:
                best[window] = (max(found, key=lambda r: r.max), place)
        return tuple(best.values())

    @staticmethod
    def _most_specific(rules: list[VolumeRule], entity: str) -> VolumeRule | None:
        for wanted in (entity, "*"):
            for rule in rules:
                if rule.entity == wanted:
                    return rule
        return None
