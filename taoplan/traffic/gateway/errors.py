"""The gateway's one error shape, OpenAI's: ``{"error": {"message", "type", "code"}}``.

Every refusal is a ``GatewayError`` raised where the reason is known and turned into a response in
one place (``app``); nothing else ever reaches the client (no traceback, no 500 for bad input).
"""

from __future__ import annotations

from taoplan.traffic.gateway.wire import dumps


class GatewayError(Exception):
    """A refusal: HTTP status, OpenAI error type, a short machine code and a one-line message."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.headers = headers or []
        self.param = param

    def payload(self) -> bytes:
        return error_payload(self.message, self.type, self.code, self.param)


def error_payload(message: str, type: str, code: str | None, param: str | None = None) -> bytes:
    error: dict[str, object] = {"message": message, "type": type, "code": code}
    if param is not None:
        error["param"] = param
    return dumps({"error": error})


def bad_request(message: str, code: str = "invalid_request", param: str | None = None) -> GatewayError:
    return GatewayError(400, message, code=code, param=param)


def not_found(message: str, code: str = "not_found") -> GatewayError:
    return GatewayError(404, message, code=code)


def unavailable(message: str, reason: str, retry_after: float) -> GatewayError:
    seconds = str(max(1, int(retry_after + 0.999))).encode()
    return GatewayError(
        503, message, type="service_unavailable", code=reason, headers=[(b"retry-after", seconds)]
    )


def upstream_failed(message: str, code: str = "upstream_error") -> GatewayError:
    return GatewayError(502, message, type="upstream_error", code=code)


def upstream_timeout(seconds: float) -> GatewayError:
    return GatewayError(
        504, f"the service did not answer within {seconds:g}s (gateway.upstream_timeout)",
        type="upstream_error", code="upstream_timeout",
    )  # fmt: skip
