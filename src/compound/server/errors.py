"""Errors as JSON in the CLI's shape: what is wrong, where, what to do.

``{"error": <kind>, "message": <what>, "where": <where>, "hint": <hint>}``
(a SpecError adds file, line, column and path, as ``--json`` does). A
request never gets a traceback back: what the server did not expect is a
500 with a message, and the traceback goes to the server's log only.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from compound.errors import (
    CompoundError,
    EngineError,
    EngineUnavailableError,
    ProjectBusyError,
    SpecError,
    SpecErrors,
    UsageError,
)
from compound.server.projects import NoSuchProjectError

log = logging.getLogger("compound.server")


class NotFoundError(CompoundError):
    """An unknown service, volume, job or archive (404)."""


class AuthError(CompoundError):
    """No token, a wrong one (401), or one that may not act (403)."""

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def body(kind: str, message: str, where: str | None, hint: str | None) -> dict[str, Any]:
    return {"error": kind, "message": message, "where": where, "hint": hint}


def status_of(exc: CompoundError) -> int:
    if isinstance(exc, AuthError):
        return exc.status
    if isinstance(exc, NoSuchProjectError | NotFoundError):
        return 404
    if isinstance(exc, ProjectBusyError):
        return 409
    if isinstance(exc, UsageError):
        return 400
    if isinstance(exc, EngineUnavailableError):
        return 503
    if isinstance(exc, EngineError):
        return 502
    return 422  # a problem with what was asked (a file, a volume, a revision) the user can fix


async def compound_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CompoundError)
    data = {**exc.to_json(), **body(type(exc).__name__, exc.message, request.url.path, exc.hint)}
    if isinstance(exc, SpecError | SpecErrors):
        data.update(exc.to_json())
    headers = {"WWW-Authenticate": "Bearer"} if status_of(exc) == 401 else None
    return JSONResponse(data, status_code=status_of(exc), headers=headers)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    first = problems[0] if problems else {}
    where = ".".join(str(p) for p in first.get("loc", ())) or request.url.path
    message = str(first.get("msg", "invalid request"))
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return JSONResponse(
        body(
            "RequestValidationError",
            message + more,
            where,
            "see the OpenAPI document at /openapi.json for this endpoint's parameters",
        ),
        status_code=422,
    )


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    hint = "see /openapi.json for the endpoints" if exc.status_code in (404, 405) else None
    return JSONResponse(
        body("HTTPError", str(exc.detail), request.url.path, hint),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(
        body(
            "InternalError",
            f"the server failed: {type(exc).__name__}",
            request.url.path,
            "the server's log has the details",
        ),
        status_code=500,
    )
