"""Reading request bodies of the directory's admin endpoints with a size cap."""

from __future__ import annotations

from fastapi import Request

MAX_BODY = 64 * 1024  # an HR event or a SCIM user is a few hundred bytes


async def read_capped(request: Request, limit: int = MAX_BODY) -> bytes | None:
    """The raw body, or ``None`` as soon as it is known to be over ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
