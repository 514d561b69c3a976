"""``GET /openapi.json``: a hand-written OpenAPI 3.0 document of the gateway's endpoints.

``model`` lists the services routed now (an arch name is also accepted, see the description), so
that a schema-driven client or fuzzer reaches the real checks behind routing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "Bad input (names the field)", 401: "No or a wrong API key", 403: "The key may not use this service",
        404: "Unknown model or path", 405: "Method not allowed", 413: "Body over gateway.max_body",
        415: "Content-Type is not application/json", 429: "Over the key's rpm (Retry-After) or budget",
        499: "The client went away", 502: "The service failed mid-answer or cannot be reached",
        503: "The service is not ready (Retry-After; code is the server's reason)",
        504: "The service did not answer within gateway.upstream_timeout",
    }  # fmt: skip
    return {
        str(c): {"description": words[c], "content": {"application/json": {"schema": _ERROR}}} for c in codes
    }


def _chat_request(models: list[str]) -> dict[str, Any]:
    model: dict[str, Any] = {
        "type": "string",
        "description": "A service name (or an arch run by exactly one ready service)",
    }
    if models:
        model["enum"] = models
    text_part = {
        "type": "object", "required": ["type", "text"],
        "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}},
    }  # fmt: skip
    url = {"type": "object", "required": ["url"], "properties": {"url": {"type": "string", "minLength": 1}}}
    image_part = {
        "type": "object", "required": ["type", "image_url"],
        "properties": {"type": {"type": "string", "enum": ["image_url"]}, "image_url": url},
    }  # fmt: skip
    video_part = {
        "type": "object", "required": ["type", "video_url"],
        "properties": {"type": {"type": "string", "enum": ["video_url"]}, "video_url": url},
    }  # fmt: skip
    message = {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
            "content": {
                "oneOf": [
                    {"type": "string"},
                    {
                        "type": "array",
                        "maxItems": 1024,
                        "items": {"oneOf": [text_part, image_part, video_part]},
                    },
                ]
            },
        },
    }
    return {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": model,
            "messages": {"type": "array", "minItems": 1, "maxItems": 4096, "items": message},
            "stream": {"type": "boolean"},
            "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
            "user": {"type": "string", "description": "The end user, recorded beside the caller"},
            "max_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "description": "OpenAI chat completions. Sampling fields an arch takes are required unless "
        "gateway.sampling is server-defaults; fields meant for another arch are refused.",
    }


def document(listen: str, models: Iterable[str] = ()) -> dict[str, Any]:
    models = sorted(models)
    json_ok = {"application/json": {"schema": {"type": "object"}}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "taoplan gateway",
            "version": "1",
            "description": "One OpenAI-compatible endpoint in front of every service of a taoplan project.",
        },  # fmt: skip
        "servers": [{"url": f"http://{listen}"}],
        "security": [{"bearer": []}],
        "paths": {
            "/v1/chat/completions": {
                "post": {
                    "summary": "Chat completion, routed to the service named by model",
                    "parameters": [
                        {
                            "name": "x-taoplan-user",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ChatRequest"}}
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The answer (JSON), or SSE chunks then data: [DONE] with stream: true",
                            "content": {**json_ok, "text/event-stream": {"schema": {"type": "string"}}},
                        },
                        **_errors(400, 401, 403, 404, 413, 415, 429, 502, 503, 504),
                    },
                }
            },
            "/v1/models": {
                "get": {
                    "summary": "Every service with readiness, arch, platform and job id (x_taoplan)",
                    "responses": {
                        "200": {"description": "OpenAI model list", "content": json_ok},
                        **_errors(401),
                    },
                }
            },
            "/health/live": _open("The gateway process answers", json_ok),
            "/health/ready": _open(
                "200 when at least one service is ready (503 otherwise, or draining)", json_ok
            ),
            "/metrics": _open("Prometheus text", {"text/plain": {"schema": {"type": "string"}}}),
            "/openapi.json": _open("This document", json_ok),
            **_dashboard_api(models, json_ok),
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "taoplan keys create"}
            },
            "schemas": {
                "ChatRequest": _chat_request(models),
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["message", "type", "code"],
                            "properties": {
                                "message": {"type": "string"},
                                "type": {"type": "string"},
                                "code": {"type": "string", "nullable": True},
                                "param": {"type": "string"},
                            },
                        }
                    },
                },
            },
        },
    }


def _dashboard_api(models: list[str], json_ok: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's JSON endpoints (traffic/dashboard/routes.py), so that the fuzz reaches them too."""
    name: dict[str, Any] = {"type": "string"}
    if models:
        name["enum"] = models
    service = {"name": "name", "in": "path", "required": True, "schema": name}

    def get(summary: str, *parameters: dict[str, Any]) -> dict[str, Any]:
        responses = {"200": {"description": summary, "content": json_ok}, **_errors(400, 401, 403, 404)}
        return {"get": {"summary": summary, "parameters": list(parameters), "responses": responses}}

    tail = {"name": "tail", "in": "query", "required": False, "schema": {"type": "integer"}}
    window = {"name": "window", "in": "query", "required": False, "schema": {"type": "string"}}
    return {
        "/ui/api/services": get("The dashboard's services table"),
        "/ui/api/services/{name}": get("A service's row and its last hour", service),
        "/ui/api/services/{name}/logs": get("The platform's log tail (tail <= 2000)", service, tail),
        "/ui/api/services/{name}/form": get("The chat form: sampling fields, defaults, ranges", service),
        "/ui/api/cost": get("Cost and requests per caller and end user (window 1h, 24h or 7d)", window),
    }


def _open(summary: str, content: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": summary, "content": content}}
    if "ready" in summary:
        responses["503"] = {
            "description": "No service is ready, or the gateway is draining",
            "content": content,
        }
    return {"get": {"summary": summary, "security": [], "responses": responses}}
