"""The live access status of people, consulted by the identify stage on every request.

Implemented by the directory package (people table + revocations, refreshed from the
database and fanned out over Redis); kept as a protocol here so that identify depends on
the question, not on how the directory answers it.
"""

from __future__ import annotations

from typing import Protocol


class AccessStatus(Protocol):
    def refusal(self, subject: str, issued_at: float | None) -> str | None:
        """Return a reason id if this subject must be refused now, else ``None``.

        ``"person_revoked"``: the subject left or was deprovisioned;
        ``"person_suspended"``: an officer or a detector suspended them;
        ``"token_revoked"``: the credential was issued before the subject's
        ``revoked_before`` time. Must be a memory lookup (no I/O): it runs per request.
        """
        ...


class AllowAll:
    """Used only where no directory is configured at all (unit tests of other stages)."""

    def refusal(self, subject: str, issued_at: float | None) -> str | None:
        return None


class PeopleActions(Protocol):
    """What detection and the officer API may do to a person (implemented by directory)."""

    def is_departing(self, subject: str) -> bool:
        """True from the moment HR recorded a notice until the person is gone (memory lookup)."""
        ...

    async def suspend(self, subject: str, *, by: str, reason: str) -> None:
        """Refuse the subject everywhere (live tokens and API keys included) until reinstated."""
        ...

    async def reinstate(self, subject: str, *, by: str, reason: str) -> None: ...

    async def mark_departing(self, subject: str, *, last_day: str | None, by: str) -> None: ...
