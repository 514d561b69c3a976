#!/opt/llm-venv/bin/python
"""`llama-server` for the taoplan LLM test image: llama.cpp's own OpenAI-compatible server, run
through xllamacpp's embedded copy (`xllamacpp.Server`), with the official server's flags:

    llama-server --model/-m FILE.gguf [--host H] [--port P] [--alias/-a NAME[,NAME...]]
                 [--ctx-size/-c N] [--n-gpu-layers/--gpu-layers/-ngl N|auto|all]
                 [--threads/-t N] [--parallel/-np N]

Any other flag, a missing value, or a model file that is not there: one line on stderr, exit 2.
A model that fails to load: one line, exit 1. The process stays in the foreground while it serves;
SIGTERM or SIGINT stops it cleanly (exit 0), also as PID 1 without an init.

Endpoints are llama.cpp's: GET /health (503 {"error": {"message": "Loading model", ...}} while the
model loads, then 200 {"status": "ok"}), GET /v1/models, POST /v1/chat/completions (stream too), ...

Test knob (environment): LLAMA_TEST_START_DELAY=SECONDS (float) waits that long before loading the
model. Meanwhile the port already answers like a loading llama-server: 503 "Loading model" on every
path, so readiness code sees the real loading state for longer. A SIGTERM during the wait exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROG = "llama-server"
DEFAULT_CTX = 4096  # the official default is the model's own (32768 here); small keeps RSS low
LOADING_BODY = json.dumps(  # byte for byte what llama.cpp's server answers while it loads
    {"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}}, separators=(",", ":")
).encode()


class Refused(Exception):
    """A bad command line or environment: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise Refused(message)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _layers(text: str) -> int:
    if text in ("auto", "all"):
        return -1 if text == "auto" else 999
    return _int(text)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, allow_abbrev=False, description="llama.cpp server (xllamacpp) for taoplan tests")
    p.add_argument("-m", "--model", required=True, metavar="FILE", help="GGUF model file")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_int, default=8080, help="port to listen on (default 8080)")
    p.add_argument("-a", "--alias", default=None, help="model name(s) the API reports, comma-separated")
    p.add_argument("-c", "--ctx-size", type=_int, default=DEFAULT_CTX, help="context size, 0 = model's")
    p.add_argument(
        "-ngl",
        "--n-gpu-layers",
        "--gpu-layers",
        type=_layers,
        default=-1,
        dest="n_gpu_layers",
        help="layers to offload (no GPU in this build: accepted, no effect)",
    )
    p.add_argument("-t", "--threads", type=_int, default=-1, help="CPU threads (default: auto)")
    p.add_argument("-np", "--parallel", type=_int, default=1, help="server slots (default 1)")
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if not 0 < args.port < 65536:
        raise Refused(f"argument --port: {args.port} is not a port (1-65535)")
    if args.ctx_size < 0 or args.parallel < 1:
        raise Refused("argument --ctx-size must be >= 0 and --parallel >= 1")
    if not os.path.isfile(args.model):
        raise Refused(f"argument --model: model file not found: {args.model}")
    return args


def start_delay() -> float:
    raw = os.environ.get("LLAMA_TEST_START_DELAY", "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise Refused(f"LLAMA_TEST_START_DELAY: not a number of seconds: {raw!r}") from None
    if value < 0:
        raise Refused(f"LLAMA_TEST_START_DELAY: negative: {raw!r}")
    return value


class _LoadingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Loading)


class _Loading(BaseHTTPRequestHandler):
    """What a llama-server answers while its model loads: 503 on every path."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(503)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(LOADING_BODY)))
        self.end_headers()
        self.wfile.write(LOADING_BODY)

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = _answer

    def do_HEAD(self) -> None:
        self.send_response(503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(args: argparse.Namespace, delay: float) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        print(f"{PROG}: {signal.Signals(signum).name}, stopping", file=sys.stderr, flush=True)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    placeholder = None
    if delay > 0:
        print(
            f"{PROG}: LLAMA_TEST_START_DELAY={delay:g}: answering 503 'Loading model' meanwhile",
            file=sys.stderr,
            flush=True,
        )
        try:
            placeholder = _LoadingServer(args.host, args.port)
        except OSError as exc:
            print(f"{PROG}: error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
            return 1
        threading.Thread(
            target=placeholder.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    import xllamacpp  # here, so that `--help` and bad flags need no native library

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx_size
    params.n_parallel = args.parallel
    params.n_gpu_layers = args.n_gpu_layers
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    if args.alias:
        params.model_alias = {a.strip() for a in args.alias.split(",") if a.strip()}
    if placeholder is not None:
        stopped = stop.wait(delay)
        # Free the port just before llama.cpp binds it (it answers 503 itself while loading).
        placeholder.shutdown()
        placeholder.server_close()
        if stopped:
            return 0
    try:
        server = xllamacpp.Server(params)  # binds, loads (503 meanwhile), returns once serving
    except RuntimeError as exc:
        print(f"{PROG}: error: model failed to load: {args.model}: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"{PROG}: serving {args.model} on {server.listening_address}", file=sys.stderr, flush=True)
    while not stop.wait(3600):
        pass
    del server  # joins llama.cpp's HTTP and main loops
    print(f"{PROG}: stopped", file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
        delay = start_delay()
    except Refused as exc:
        print(f"{PROG}: error: {exc} (see {PROG} --help)", file=sys.stderr)
        return 2
    return serve(args, delay)


if __name__ == "__main__":
    sys.exit(main())
