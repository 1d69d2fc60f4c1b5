"""The contract's error shape, for every error the gateway returns.

``{"error": {"code": "<machine_code>", "message": "<human text>", "details": …}}``
— raised as :class:`ApiError` by handlers; the middleware also reshapes
aiohttp's own HTTP errors (404 route, 405, 413) and turns anything unexpected
into a logged 500 that never echoes internals.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.keys import METRICS_KEY, SETTINGS_KEY
from gateway.responses import Error, ErrorInfo

log = structlog.get_logger(__name__)

class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, self.details, self.headers)


def error_body(code: str, message: str, details: Any = None) -> Error:
    error = ErrorInfo(code=code, message=message)
    if details is not None:
        error["details"] = details
    return Error(error=error)


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(code, message, details), status=status,
                             headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason if exc.status != 413 else (
            f"request body is larger than {request.app[SETTINGS_KEY].max_body_bytes} bytes")
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(exc.status, code, message, headers=headers)
    except Exception:
        log.exception("gateway.unhandled_error", path=request.path, method=request.method)
        request.app[METRICS_KEY].internal_errors.inc()
        return error_response(500, "internal_error", "internal error; see the gateway's logs")

