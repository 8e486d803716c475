"""Typed domain errors, each carrying its HTTP status, rendered by one handler.

Services raise these; endpoints do not catch them. Expected outcomes (not
found, no consent, conflict) are never a 500 (STYLE.md, "Errors are typed")::

    VitrineError (500)
     ├── BadRequest (400)
     ├── Unauthorized (401)
     ├── Forbidden (403)
     │    └── ConsentRequired (403)
     ├── NotFound (404)
     └── Conflict (409)

The response body is ``{"detail": message}``, FastAPI's own shape for
``HTTPException``, so clients parse one format.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

__all__ = [
    "BadRequest",
    "Conflict",
    "ConsentRequired",
    "Forbidden",
    "NotFound",
    "Unauthorized",
    "VitrineError",
    "install_error_handler",
]


class VitrineError(Exception):
    """Base of every domain error; ``status_code`` is the HTTP status to answer with."""

    status_code: int = 500

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class BadRequest(VitrineError):  # noqa: N818 (named for the HTTP status)
    status_code = 400


class Unauthorized(VitrineError):  # noqa: N818 (named for the HTTP status)
    status_code = 401


class Forbidden(VitrineError):  # noqa: N818 (named for the HTTP status)
    status_code = 403


class ConsentRequired(Forbidden):
    """The shopper has not granted the purpose this action needs."""

    def __init__(self, purpose: str, message: str | None = None) -> None:
        super().__init__(message or f"consent required: {purpose}")
        self.purpose = purpose


class NotFound(VitrineError):  # noqa: N818 (named for the HTTP status)
    status_code = 404


class Conflict(VitrineError):  # noqa: N818 (named for the HTTP status)
    status_code = 409


async def _render(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VitrineError)
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code)


def install_error_handler(app: FastAPI) -> None:
    """Render every :class:`VitrineError` as ``{"detail": ...}`` with its status."""
    app.add_exception_handler(VitrineError, _render)
