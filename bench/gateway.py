"""`taoplan gateway` against the direct path and LiteLLM Proxy 1.80.8, in one run, on this machine.

    python bench/gateway.py [--seq 3000] [--duration 5] [--rss-requests 100000] [--no-litellm] [--json OUT]

One fast upstream for all three: bench/upstream_echo.py (OpenAI-compatible echo, SSE with one chunk per
word, 1 ms between chunks). Three ways to reach it:
- direct;
- through `taoplan gateway` (a project whose one service, ``echo``, is recorded in state.json at the echo's
  URL; auth: none, so that the figures compare with LiteLLM without a master key; the SQLite request log on);
- through LiteLLM Proxy 1.80.8 from its own venv (bench/litellm_venv.sh, bench/_litellm.py), no database.
Figures: sequential latency p50/p99 on one keep-alive connection and what each proxy adds; requests/s at
16 and 64 concurrent connections (wrk); the gateway's RSS before and after --rss-requests requests; streaming
time to the first SSE event, and what each proxy adds; plus the gateway's sequential figures with
``auth: keys`` (a real key checked per request; the key exists only in this process's memory).
The 2 cores are shared by load generator, proxy and upstream. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import _litellm  # noqa: E402

SAMPLING = {"max_tokens": 16, "temperature": 0.1, "top_p": 0.5}
BODY = json.dumps(
    {"model": "echo", "messages": [{"role": "user", "content": "hello big world"}], **SAMPLING}
).encode()
STREAM = json.dumps(
    {
        "model": "echo",
        "stream": True,
        "messages": [{"role": "user", "content": "one two three four five"}],
        **SAMPLING,
    }
).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Conn:
    """A minimal blocking HTTP/1.1 keep-alive client (the least client cost for sequential figures)."""

    def __init__(self, port: int, auth: str = "sk-bench") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.auth = auth

    def request(self, body: bytes) -> bytes:
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {self.auth}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        self.buf += data

    def _until(self, mark: bytes) -> bytes:
        while mark not in self.buf:
            self._fill()
        out, self.buf = self.buf.split(mark, 1)
        return out

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def exchange(self, data: bytes, first_event: bool = False) -> tuple[int, bytes, float]:
        """(status, body, seconds to the whole body, or to the first SSE data event)."""
        started = time.perf_counter()
        self.sock.sendall(data)
        lines = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
        if "content-length" in headers:
            return status, self._take(int(headers["content-length"])), time.perf_counter() - started
        parts, first = [], 0.0
        while True:
            size = int(self._until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                self._until(b"\r\n")
                break
            parts.append(self._take(size))
            self._take(2)
            if first_event and not first and b"data:" in parts[-1]:
                first = time.perf_counter() - started
        return status, b"".join(parts), first or time.perf_counter() - started


def sequential(
    port: int, body: bytes, n: int, first_event: bool = False, auth: str = "sk-bench"
) -> list[float]:
    conn = Conn(port, auth)
    data = conn.request(body)
    try:
        for _ in range(min(200, n)):
            conn.exchange(data, first_event)
        out = []
        for _ in range(n):
            status, payload, seconds = conn.exchange(data, first_event)
            if status != 200:
                raise SystemExit(f"port {port}: status {status}: {payload[:300]!r}")
            out.append(seconds)
        if first_event and b"[DONE]" not in payload:
            raise SystemExit(f"port {port}: the stream did not end with [DONE]: {payload[-200:]!r}")
        return out
    finally:
        conn.sock.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wrk(port: int, conns: int, seconds: float, scratch: Path) -> tuple[float, int, int]:
    """(requests/s, requests, non-2xx + socket errors) of one wrk run."""
    script = scratch / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(BODY.decode())}\n'
        'wrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer sk-bench"\n'
    )
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, int(seconds))}s", "--timeout", "10s", "-s", str(script)]
    out = subprocess.run(
        [*argv, f"http://127.0.0.1:{port}/v1/chat/completions"], check=True, capture_output=True, text=True
    ).stdout
    rps, requests, bad = 0.0, 0, 0
    for line in out.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(words[1])
        elif " requests in " in line:
            requests = int(words[0])
        elif line.strip().startswith(("Non-2xx", "Socket errors:")):
            bad += sum(int(w.strip(",")) for w in words if w.strip(",").isdigit())
    return rps, requests, bad


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the process for port {port} exited {proc.returncode}")
        try:
            conn = Conn(port)
            try:
                if conn.exchange(conn.request(BODY))[0] == 200:
                    return
            finally:
                conn.sock.close()
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"nothing answered 200 on port {port} within {timeout:.0f} s")


def gateway_project(
    folder: Path, upstream_port: int, gw_port: int, auth: str, served_name: str | None = None
) -> Path:
    """A project whose one service `echo` is recorded at the echo's URL (as apply records a service):
    a TAO service, or with ``served_name`` a generic `custom` server answering to that model name."""
    folder.mkdir(parents=True, exist_ok=True)
    service = 'echo: {network_arch: tao-dataservices, model_path: "hf_model://a/b", image: "localhost/x/y:1"}'
    spec: dict = {"num_gpus": 1}
    if served_name is not None:
        server = {"type": "custom", "command": ["echo"], "port": 8000, "readiness_path": "/health",
                  "served_name": served_name}  # fmt: skip
        service = f'echo: {{server: {json.dumps(server)}, image: "localhost/x/y:1"}}'
        spec = {"num_gpus": 1, "server": server}
    (folder / "services.yaml").write_text(
        "version: 1\nproject: gwbench\nplatforms:\n  local-docker: {gpus: none}\n"
        f"gateway: {{auth: {auth}, listen: '127.0.0.1:{gw_port}'}}\n"
        f"services:\n  {service}\n"
    )
    record = {
        "name": "echo", "job_id": "bench-echo", "platform": "local-docker",
        "network_arch": "custom" if served_name else "tao-dataservices",
        "spec": spec, "spec_hash": "bench", "image": "localhost/x/y:1", "image_rule": "explicit",
        "host_url": f"http://127.0.0.1:{upstream_port}", "host_port": upstream_port,
        "started_at": "2026-01-01T00:00:00+00:00", "status": "ready",
    }  # fmt: skip
    state = {
        "format_version": 1,
        "serial": 1,
        "lineage": "bench",
        "project": "gwbench",
        "services": {"echo": record},
    }
    (folder / ".taoplan").mkdir(mode=0o700, exist_ok=True)
    (folder / ".taoplan" / "state.json").write_text(json.dumps(state))
    return folder


def start_gateway(folder: Path, port: int, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "taoplan", "gateway"], cwd=folder, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
        )  # fmt: skip
    wait_ready(port, proc)
    return proc


def measure(name: str, port: int, args: argparse.Namespace, scratch: Path) -> dict:
    print(f"-- {name}", file=sys.stderr, flush=True)
    lat = sequential(port, BODY, args.seq)
    ttft = sequential(port, STREAM, max(100, args.seq // 6), first_event=True)
    row = {
        "name": name,
        "p50": pct(lat, 0.5) * 1e3,
        "p99": pct(lat, 0.99) * 1e3,
        "ttft": pct(ttft, 0.5) * 1e3,
    }
    for conns in (16, 64):
        row[f"rps{conns}"], _, row[f"bad{conns}"] = wrk(port, conns, args.duration, scratch)
    return row


def rss_growth(port: int, pid: int, total: int, scratch: Path) -> dict:
    """RSS before and after ``total`` requests, and how far the request store's writer kept up: the
    rows committed when the load stopped, against every row logged by then (a writer that falls
    behind holds the rest in memory, and a kill -9 would lose them)."""
    print(f"-- gateway: {total} requests at 64 connections for RSS", file=sys.stderr, flush=True)
    wrk(port, 64, 2, scratch)  # warm-up
    time.sleep(1)  # the warm-up's rows are committed before the count starts
    db = scratch / "proj" / ".taoplan" / "gateway.db"
    before, done, bad, logged_before = rss_mb(pid), 0, 0, committed(db)
    while done < total:
        _, n, b = wrk(port, 64, 10, scratch)
        done, bad = done + n, bad + b
    behind = max(0, logged_before + done - committed(db))
    return {
        "rss_before": before,
        "rss_after": rss_mb(pid),
        "rss_requests": done,
        "rss_bad": bad,
        "behind": behind,
    }


def committed(db: Path) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])


def print_table(rows: list[dict], keys_row: dict | None) -> None:
    direct = rows[0]
    print(
        "| target | p50 ms | p99 ms | added p50 / p99 ms | req/s c16 (× direct) | req/s c64 (× direct) | TTFT ms (added) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        added = "-" if r is direct else f"{r['p50'] - direct['p50']:+.3f} / {r['p99'] - direct['p99']:+.3f}"
        ttft = f"{r['ttft']:.3f}" + ("" if r is direct else f" ({r['ttft'] - direct['ttft']:+.3f})")
        print(
            f"| {r['name']} | {r['p50']:.3f} | {r['p99']:.3f} | {added} | {r['rps16']:.0f} ({r['rps16'] / direct['rps16']:.2f}) "
            f"| {r['rps64']:.0f} ({r['rps64'] / direct['rps64']:.2f}) | {ttft} |"
        )
    names = {r["name"]: r for r in rows}
    gw, lite = names.get("taoplan gateway"), names.get("LiteLLM 1.80.8")
    if gw and lite:
        print(
            f"\ngateway / LiteLLM req/s: c16 {gw['rps16'] / lite['rps16']:.1f}x, c64 {gw['rps64'] / lite['rps64']:.1f}x"
        )
        print(
            f"LiteLLM added p50 / p99: {lite['p50'] - direct['p50']:.3f} / {lite['p99'] - direct['p99']:.3f} ms"
        )
    if gw and "rss_after" in gw:
        grow = gw["rss_after"] - gw["rss_before"]
        print(
            f"gateway RSS: {gw['rss_before']:.1f} -> {gw['rss_after']:.1f} MB ({grow:+.1f} MB) over "
            f"{gw['rss_requests']} requests ({gw['rss_bad']} non-2xx/errors); when the load stopped, "
            f"{gw['behind']} answered requests were not yet committed to the request store"
        )
    if keys_row:
        print(
            f"gateway with auth: keys, sequential: p50 {keys_row['p50']:.3f} ms ({keys_row['p50'] - direct['p50']:+.3f}), "
            f"p99 {keys_row['p99']:.3f} ms ({keys_row['p99'] - direct['p99']:+.3f})"
        )
    bad = {r["name"]: r["bad16"] + r["bad64"] for r in rows if r["bad16"] + r["bad64"]}
    if bad:
        print(f"non-2xx or socket errors under load: {bad}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seq", type=int, default=3000, help="sequential requests per target")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk throughput point")
    parser.add_argument("--rss-requests", type=int, default=100_000)
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench/gateway.py: wrk is missing (apt-get install -y wrk)", file=sys.stderr)
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="taoplan-gwbench-"))
    procs: list[subprocess.Popen] = []
    try:
        up = free_port()
        with (scratch / "echo.log").open("wb") as out:
            echo = subprocess.Popen(
                [sys.executable, str(HERE / "upstream_echo.py"), "--port", str(up), "--itl-ms", "1"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        procs.append(echo)
        wait_ready(up, echo)
        gw_port = free_port()
        gw = start_gateway(
            gateway_project(scratch / "proj", up, gw_port, "none"), gw_port, scratch / "gw.log"
        )
        procs.append(gw)
        targets = [("direct (upstream_echo)", up), ("taoplan gateway", gw_port)]
        if not args.no_litellm:
            lite_port = free_port()
            procs.append(
                _litellm.start_litellm(f"http://127.0.0.1:{up}/v1", lite_port, log_path=scratch / "lite.log")
            )
            targets.append(("LiteLLM 1.80.8", lite_port))
        rows = [measure(name, port, args, scratch) for name, port in targets]
        rows[1].update(rss_growth(gw_port, gw.pid, args.rss_requests, scratch))
        _litellm.stop(gw, grace=40)
        keys_row = measure_keys(scratch, up, args)
    finally:
        for proc in reversed(procs):
            _litellm.stop(proc, grace=10)
    print(
        f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n"
    )
    print_table(rows, keys_row)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "keys": keys_row}, indent=2))
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def measure_keys(scratch: Path, upstream: int, args: argparse.Namespace) -> dict:
    """The gateway's sequential figures with auth: keys (one key, held in memory only)."""
    sys.path.insert(0, str(ROOT))
    from taoplan.traffic.log import open_store

    port = free_port()
    folder = gateway_project(scratch / "proj-keys", upstream, port, "keys")
    store = open_store(folder / ".taoplan", quiet=True)
    key = store.keys.create("bench", None, None, None)
    store.close()
    with (scratch / "gw-keys.log").open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "taoplan", "gateway"], cwd=folder, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                lat = sequential(port, BODY, args.seq, auth=key)
                break
            except (OSError, SystemExit):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        return {"p50": pct(lat, 0.5) * 1e3, "p99": pct(lat, 0.99) * 1e3}
    finally:
        _litellm.stop(proc, grace=40)


if __name__ == "__main__":
    sys.exit(main())
