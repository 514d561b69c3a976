"""The minimal reverse proxies that bench/gateway_stacks.py compares, one per server stack.

    python bench/_stack_apps.py STACK --port P --upstream http://127.0.0.1:U

Each one does the same work a gateway's hot path does at the least: read the whole request body, parse it
as JSON (a gateway routes on ``model`` and checks the body), forward POST /v1/chat/completions to the
upstream over a pooled keep-alive client, copy status and body back, and pass ``stream: true`` answers
through chunk by chunk as they arrive. GET /health answers locally.

Stacks: uvicorn-httpx, uvicorn-aiohttp (a raw ASGI app on uvicorn with uvloop + httptools, and an
httpx.AsyncClient or aiohttp.ClientSession pool), granian-asgi, granian-rsgi (granian with the uvloop loop and an
aiohttp client pool), aiohttp (aiohttp.web server and client).
"""

from __future__ import annotations

import argparse
import os
import sys

import orjson

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:8199").rstrip("/")
TARGET = UPSTREAM + "/v1/chat/completions"
POOL = 512
_FORWARD = ("content-type", "authorization")
_NOT_FOUND = b'{"error":{"message":"not found","type":"not_found_error","code":404}}'
_BAD = b'{"error":{"message":"body is not valid JSON","type":"invalid_request_error","code":400}}'
_BAD_GATEWAY = b'{"error":{"message":"upstream failed","type":"upstream_error","code":502}}'

_httpx_client = None
_aiohttp_session = None


def _httpx():
    global _httpx_client
    if _httpx_client is None:
        import httpx

        limits = httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL, keepalive_expiry=60)
        _httpx_client = httpx.AsyncClient(limits=limits, timeout=300)
    return _httpx_client


def _aiohttp():
    global _aiohttp_session
    if _aiohttp_session is None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=POOL, limit_per_host=0, keepalive_timeout=60)
        _aiohttp_session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=300), auto_decompress=False
        )
    return _aiohttp_session


def _wants_stream(body: bytes) -> bool | None:
    """None for a body that is not a JSON object; else whether it asks to stream."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict):
        return None
    return parsed.get("stream") is True


# --- raw ASGI (uvicorn, granian --interface asgi) ------------------------------------------------------


def make_asgi(client: str):
    json_type = [(b"content-type", b"application/json")]

    async def simple(send, status: int, payload: bytes) -> None:
        headers = json_type + [(b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/health":
            await simple(send, 200, b'{"status":"ok"}')
            return
        if path != "/v1/chat/completions" or scope["method"] != "POST":
            await simple(send, 404, _NOT_FOUND)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        stream = _wants_stream(body)
        if stream is None:
            await simple(send, 400, _BAD)
            return
        headers = {}
        for name, value in scope["headers"]:
            if name in (b"content-type", b"authorization"):
                headers[name.decode()] = value.decode("latin-1")
        if client == "httpx":
            await _asgi_httpx(send, body, headers, stream)
        else:
            await _asgi_aiohttp(send, body, headers, stream)

    async def _asgi_httpx(send, body, headers, stream):
        http = _httpx()
        if not stream:
            reply = await http.post(TARGET, content=body, headers=headers)
            payload = reply.content
            ctype = reply.headers.get("content-type", "application/json").encode()
            out = [(b"content-type", ctype), (b"content-length", str(len(payload)).encode())]
            await send({"type": "http.response.start", "status": reply.status_code, "headers": out})
            await send({"type": "http.response.body", "body": payload})
            return
        request = http.build_request("POST", TARGET, content=body, headers=headers)
        reply = await http.send(request, stream=True)
        try:
            ctype = reply.headers.get("content-type", "text/event-stream").encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": reply.status_code,
                    "headers": [(b"content-type", ctype)],
                }
            )
            async for piece in reply.aiter_raw():
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await reply.aclose()

    async def _asgi_aiohttp(send, body, headers, stream):
        async with _aiohttp().post(TARGET, data=body, headers=headers) as reply:
            ctype = reply.headers.get("content-type", "application/json").encode()
            if not stream:
                payload = await reply.read()
                out = [(b"content-type", ctype), (b"content-length", str(len(payload)).encode())]
                await send({"type": "http.response.start", "status": reply.status, "headers": out})
                await send({"type": "http.response.body", "body": payload})
                return
            await send(
                {"type": "http.response.start", "status": reply.status, "headers": [(b"content-type", ctype)]}
            )
            async for piece in reply.content.iter_any():
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    return app


asgi_httpx = make_asgi("httpx")
asgi_aiohttp = make_asgi("aiohttp")


# --- granian RSGI ------------------------------------------------------------------------------------


class RsgiApp:
    def __rsgi_init__(self, loop) -> None:  # noqa: PLW3201 - granian's protocol name
        pass

    def __rsgi_del__(self, loop) -> None:  # noqa: PLW3201
        pass

    async def __rsgi__(self, scope, proto) -> None:  # noqa: PLW3201
        json_type = [("content-type", "application/json")]
        if scope.path == "/health":
            proto.response_bytes(200, json_type, b'{"status":"ok"}')
            return
        if scope.path != "/v1/chat/completions" or scope.method != "POST":
            proto.response_bytes(404, json_type, _NOT_FOUND)
            return
        body = await proto()
        stream = _wants_stream(body)
        if stream is None:
            proto.response_bytes(400, json_type, _BAD)
            return
        headers = {k: scope.headers.get(k) for k in _FORWARD if scope.headers.get(k) is not None}
        async with _aiohttp().post(TARGET, data=body, headers=headers) as reply:
            ctype = reply.headers.get("content-type", "application/json")
            if not stream:
                proto.response_bytes(reply.status, [("content-type", ctype)], await reply.read())
                return
            transport = proto.response_stream(reply.status, [("content-type", ctype)])
            async for piece in reply.content.iter_any():
                await transport.send_bytes(piece)


rsgi_app = RsgiApp()


# --- aiohttp.web ---------------------------------------------------------------------------------------


def aiohttp_app():
    from aiohttp import web

    async def health(request):
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    async def chat(request):
        body = await request.read()
        stream = _wants_stream(body)
        if stream is None:
            return web.Response(status=400, body=_BAD, content_type="application/json")
        headers = {k: request.headers[k] for k in _FORWARD if k in request.headers}
        async with _aiohttp().post(TARGET, data=body, headers=headers) as reply:
            ctype = reply.headers.get("content-type", "application/json")
            if not stream:
                return web.Response(
                    status=reply.status, body=await reply.read(), headers={"content-type": ctype}
                )
            out = web.StreamResponse(status=reply.status, headers={"content-type": ctype})
            await out.prepare(request)
            async for piece in reply.content.iter_any():
                await out.write(piece)
            await out.write_eof()
            return out

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/health", health)
    app.router.add_post("/v1/chat/completions", chat)
    return app


STACKS = ("uvicorn-httpx", "uvicorn-aiohttp", "granian-asgi", "granian-rsgi", "aiohttp")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one minimal reverse proxy of bench/gateway_stacks.py")
    parser.add_argument("stack", choices=STACKS)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args(argv)
    global TARGET
    os.environ["BENCH_UPSTREAM"] = args.upstream  # for the fresh import that uvicorn and granian make
    TARGET = args.upstream.rstrip("/") + "/v1/chat/completions"
    here = os.path.dirname(os.path.abspath(__file__))
    if args.stack.startswith("uvicorn"):
        import uvicorn

        app = "asgi_httpx" if args.stack == "uvicorn-httpx" else "asgi_aiohttp"
        sys.path.insert(0, here)
        uvicorn.run(
            f"_stack_apps:{app}",
            host="127.0.0.1",
            port=args.port,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
            lifespan="off",
            backlog=1024,
        )
    elif args.stack.startswith("granian"):
        interface, target = ("asgi", "_stack_apps:asgi_aiohttp")
        if args.stack == "granian-rsgi":
            interface, target = ("rsgi", "_stack_apps:rsgi_app")
        granian = os.path.join(os.path.dirname(sys.executable), "granian")
        argv2 = [granian, "--interface", interface, "--host", "127.0.0.1", "--port", str(args.port)]
        argv2 += ["--workers", "1", "--loop", "uvloop", "--http", "1", "--no-ws", "--log-level", "warning"]
        argv2 += ["--backlog", "1024", "--working-dir", here, target]
        os.execv(granian, argv2)
    else:
        import uvloop
        from aiohttp import web

        uvloop.install()
        web.run_app(
            aiohttp_app(), host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=1024
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
