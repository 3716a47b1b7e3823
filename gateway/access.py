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
