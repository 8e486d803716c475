"""Read a request body with a size limit (QUALITY.md, "Security": body size limits).

``Content-Length`` is checked first when present; the stream is counted anyway,
because a chunked request has no length and a client may lie.
"""

from __future__ import annotations

from fastapi import Request

from server.errors import VitrineError

__all__ = ["BodyTooLarge", "read_body"]


class BodyTooLarge(VitrineError):  # noqa: N818 (named for the HTTP status 413)
    status_code = 413


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
