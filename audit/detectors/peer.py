"""Peer group: today's total against what people with the same role read in a day."""

from __future__ import annotations

from collections.abc import Sequence

from audit.detectors.base import Context, Finding, daily_finding, plural, robust_z
from audit.detectors.config import PeerConfig

_MAX_SUBJECTS_PER_GROUP = 5000


class PeerDetector:
    """Robust z-score of today's records against the peers' active person-days.

    Peers' daily histories come from the shared counters as each peer is seen, so every
    replica builds the same picture. A person is judged against each of their roles that has
    at least ``min_peers`` other people, and fires only if they stand out in all of them.
    """

    name = "peer"

    def __init__(self, config: PeerConfig) -> None:
        self._cfg = config
        # (role, entity) → subject → (local day, that person's past daily records)
        self._histories: dict[tuple[str, str], dict[str, tuple[int, tuple[int, ...]]]] = {}
        # (role, entity) → (computed at, local day, median, mad, peers)
        self._stats: dict[tuple[str, str], tuple[float, int, float, float, int]] = {}

    def check(self, ctx: Context) -> Sequence[Finding]:
        obs = ctx.obs
        day = ctx.local.day
        for role in obs.roles:
            group = self._histories.get((role, obs.entity))
            if group is None:
                group = self._histories[(role, obs.entity)] = {}
            known = group.get(obs.subject)
            if (known is None or known[0] != day) and len(group) < _MAX_SUBJECTS_PER_GROUP:
                active = ctx.history.active_past_days
                group[obs.subject] = (day, tuple(ctx.days[i] for i in active))
        today = ctx.days[-1]
        scale = ctx.scale(self.name)
        if today < self._cfg.floor * scale:
            return ()
        lowest: tuple[float, str, float, int] | None = None
        for role in obs.roles:
            stats = self._group_stats(role, obs.entity, obs.time, day)
            med, mad, people = stats
            own = self._histories[(role, obs.entity)].get(obs.subject)
            peers = people - (1 if own is not None and own[1] else 0)
            if peers < self._cfg.min_peers:
                continue
            z = (today - med) / max(1.4826 * mad, 0.1 * med, 1.0)
            if lowest is None or z < lowest[0]:
                lowest = (z, role, med, peers)
        if lowest is None or lowest[0] < self._cfg.z * scale:
            return ()
        z, role, med, peers = lowest
        return daily_finding(
            self.name,
            self._cfg,
            today,
            (
                f"{obs.subject} read {plural(today)} {obs.entity} records today; "
                f"{peers} other {role} people read a median of {plural(med)} a day "
                f"(z-score {z:.1f})"
            ),
            {"role": role, "peer_median": med, "peers": peers, "z": round(z, 2)},
        )

    def _group_stats(
        self, role: str, entity: str, now: float, day: int
    ) -> tuple[float, float, int]:
        """(median, MAD, people with history) of the group's person-days, recomputed every
        ``refresh`` (the person judged is part of the sample: the median shrugs that off)."""
        stats = self._stats.get((role, entity))
        if stats is None or stats[1] != day or now - stats[0] > self._cfg.refresh:
            histories = [days for _, days in self._histories.get((role, entity), {}).values()]
            sample = [n for days in histories for n in days]
            peers = sum(1 for days in histories if days)
            med, mad = robust_z(0, sample)[1:] if sample else (0.0, 0.0)
            stats = self._stats[(role, entity)] = (now, day, med, mad, peers)
        return stats[2], stats[3], stats[4]
