"""Off hours: bulk reads outside working hours that the person does not usually work."""

from __future__ import annotations

from collections.abc import Sequence

from audit.detectors.base import Context, Finding, plural, span_text
from audit.detectors.config import OffHoursConfig, WorkingHours


class OffHoursDetector:
    """Fires on ``records`` or more read off hours within ``window`` in a session the person
    began off hours.

    Off hours are outside the configured working hours and weekdays in the deployment time
    zone, unless the person has worked at that local hour on ``usual_days`` days recently.
    Evening overtime that continues a working day without a pause of ``session_break`` is
    left to the daytime detectors (volume, baseline): what this detector looks for is
    someone who comes back at night or at the weekend to read in bulk. Roles listed in
    ``exempt_roles`` (night batch jobs) are never judged.
    """

    name = "off_hours"

    def __init__(self, config: OffHoursConfig, hours: WorkingHours) -> None:
        self._cfg = config
        self._exempt = frozenset(config.exempt_roles)
        self._start, self._end = hours.start, hours.end
        self._weekdays = hours.weekday_numbers()

    def is_off_hours(self, hour: int, weekday: int) -> bool:
        return weekday not in self._weekdays or not self._start <= hour < self._end

    def is_exempt(self, roles: tuple[str, ...]) -> bool:
        return not self._exempt.isdisjoint(roles)

    def check(self, ctx: Context) -> Sequence[Finding]:
        if ctx.off_records is None or ctx.usual_hour or not ctx.session_off_hours:
            return ()
        limit = self._cfg.records * ctx.scale(self.name)
        if ctx.off_records < limit or self.is_exempt(ctx.obs.roles):
            return ()
        obs, local = ctx.obs, ctx.local
        return (
            Finding(
                detector=self.name,
                severity=self._cfg.severity,
                action=self._cfg.action,
                count=ctx.off_records,
                window_s=self._cfg.window,
                explanation=(
                    f"{obs.subject} read {plural(ctx.off_records)} {obs.entity} records "
                    f"off hours (local {local.hour:02d}:{local.minute_of_day % 60:02d}) within "
                    f"{span_text(self._cfg.window)}; working hours are "
                    f"{self._start:02d}:00-{self._end:02d}:00"
                ),
                evidence={"local_hour": local.hour, "weekday": local.weekday},
            ),
        )
