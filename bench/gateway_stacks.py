"""Which HTTP server stack should `taoplan gateway` be built on? Measure minimal reverse proxies side by side.

    python bench/gateway_stacks.py [--stacks uvicorn-aiohttp,granian-rsgi,...] [--duration 5] [--seq 3000]
                                   [--rss-requests 100000] [--rss-max-seconds 150] [--no-litellm] [--katan /path/to/llm-katan]
                                   [--json out.json]

In one run, against bench/upstream_echo.py on loopback: the upstream directly, then each proxy of
bench/_stack_apps.py, then LiteLLM Proxy 1.80.8 (bench/_litellm.py). Figures per target:
- sequential latency p50/p99 over --seq keep-alive requests, and what the proxy adds to the direct figure;
- requests/s at 16 and 64 concurrent connections (wrk -t1, --duration seconds each);
- RSS growth (process tree) over --rss-requests requests at 64 connections, after the rounds (bounded by
  --rss-max-seconds per target: the table gives the count actually sent);
- streaming: time to the first SSE event, p50 over 500 requests, and what the proxy adds.
Everything runs on this machine (2 cores shared by load generator, proxy and upstream); loops are bounded
in count and time and reach only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _litellm  # noqa: E402
from _stack_apps import STACKS  # noqa: E402

BODY = b'{"model":"echo","messages":[{"role":"user","content":"hello big world"}],"max_tokens":16}'
STREAM_BODY = (
    b'{"model":"echo","stream":true,"echo_itl_ms":1,"max_tokens":16,'
    b'"messages":[{"role":"user","content":"one two three four five"}]}'
)


def _request(body: bytes) -> bytes:
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sk-bench\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- a minimal blocking HTTP/1.1 client (the least client overhead for sequential figures) -------------


class Conn:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data

    def _head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exchange(self, data: bytes, first_event: bool = False) -> tuple[int, bytes, float]:
        """Send one request; (status, body, seconds to the first SSE event or to the whole body)."""
        started = time.perf_counter()
        self.sock.sendall(data)
        status, headers = self._head()
        first = 0.0
        if "content-length" in headers:
            body = self._take(int(headers["content-length"]))
            return status, body, time.perf_counter() - started
        parts = []
        while True:  # chunked
            size = int(self._line().split(b";")[0], 16)
            if size == 0:
                self._line()
                break
            parts.append(self._take(size))
            self._take(2)
            if first_event and not first and b"data:" in parts[-1]:
                first = time.perf_counter() - started
        return status, b"".join(parts), first or (time.perf_counter() - started)


def sequential(port: int, body: bytes, n: int, first_event: bool = False) -> list[float]:
    conn = Conn(port)
    data = _request(body)
    try:
        for _ in range(min(200, n)):  # warm-up
            conn.exchange(data, first_event)
        out = []
        for _ in range(n):
            status, payload, seconds = conn.exchange(data, first_event)
            if status != 200:
                raise SystemExit(f"status {status}: {payload[:200]!r}")
            out.append(seconds)
        if first_event and not payload.rstrip().endswith(b"data: [DONE]"):
            raise SystemExit(f"stream did not end with [DONE]: {payload[-120:]!r}")
        return out
    finally:
        conn.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- load: wrk when present -------------------------------------------------------------------------


def _wrk_script(directory: Path, limit: int) -> Path:
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(BODY.decode())}",
        'wrk.headers["Content-Type"] = "application/json"',
        'wrk.headers["Authorization"] = "Bearer sk-bench"',
    ]
    if limit:
        lines += ["local n = 0", "function response(status, headers, body)", "  n = n + 1"]
        lines += [f"  if n >= {limit} then wrk.thread:stop() end", "end"]
    path = directory / f"post-{limit}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk(port: int, conns: int, seconds: float, limit: int, scratch: Path) -> dict:
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, int(seconds))}s", "--timeout", "10s"]
    argv += ["-s", str(_wrk_script(scratch, limit)), f"http://127.0.0.1:{port}/v1/chat/completions"]
    out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True, timeout=seconds + 60).stdout
    figures = {"rps": 0.0, "requests": 0, "bad": 0, "errors": 0}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            figures["rps"] = float(words[1])
        elif " requests in " in line:
            figures["requests"] = int(words[0])
        elif line.strip().startswith("Non-2xx"):
            figures["bad"] = int(words[-1])
        elif line.strip().startswith("Socket errors:"):
            figures["errors"] = sum(int(w.strip(",")) for w in words[3::2])
    return figures


# --- processes ---------------------------------------------------------------------------------------


def wait_http(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process on port {port} exited {proc.returncode}")
        try:
            conn = Conn(port)
            try:
                if conn.exchange(_request(BODY))[0] == 200:
                    return
            finally:
                conn.close()
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing answered on port {port} within {timeout:.0f} s")


def start(argv: list[str], port: int, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(port, proc)
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen) -> None:
    _litellm.stop(proc, grace=5.0)


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants, in MB (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def measure_round(name: str, port: int, args, scratch: Path, seq: int) -> dict:
    print(f"-- {name}: sequential x{seq}, wrk c16/c64 {args.duration:g} s", file=sys.stderr, flush=True)
    lat = sequential(port, BODY, seq)
    ttft = sequential(port, STREAM_BODY, max(50, seq // 6), first_event=True)
    row = {
        "p50_ms": pct(lat, 0.5) * 1000,
        "p99_ms": pct(lat, 0.99) * 1000,
        "ttft_ms": statistics.median(ttft) * 1000,
    }
    for conns in (16, 64):
        figures = wrk(port, conns, args.duration, 0, scratch)
        row[f"rps{conns}"] = figures["rps"]
        row[f"bad{conns}"] = figures["bad"] + figures["errors"]
    return row


def best(name: str, rounds: list[dict]) -> dict:
    """The least-disturbed figure of each kind over the rounds (the machine is shared: other work only
    ever makes a figure worse), plus the spread of the rates."""
    row = {"name": name, "rounds": len(rounds)}
    for key in ("p50_ms", "p99_ms", "ttft_ms"):
        row[key] = min(r[key] for r in rounds)
    for key in ("rps16", "rps64"):
        row[key] = max(r[key] for r in rounds)
        row[key + "_all"] = [round(r[key]) for r in rounds]
    row["bad"] = sum(r["bad16"] + r["bad64"] for r in rounds)
    return row


def measure_rss(
    name: str, port: int, pid: int, rps64: float, rss_requests: int, scratch: Path, budget: float
) -> dict:
    """RSS before and after ``rss_requests`` requests at 64 connections, or as many as ``budget`` seconds
    allow (the row says how many were sent)."""
    print(f"-- {name}: {rss_requests} requests for RSS", file=sys.stderr, flush=True)
    deadline = time.monotonic() + budget
    # wrk stops its thread at the count but still waits out -d, so -d is sized from the c64 rate;
    # a shortfall is sent in up to 3 more rounds.
    before = tree_rss_mb(pid)
    done, bad = 0, 0
    for _ in range(4):
        left = rss_requests - done
        remaining = deadline - time.monotonic()
        if left <= 0 or remaining < 1:
            break
        seconds = min(remaining, left / max(rps64, 50.0) * 1.1 + 1)
        figures = wrk(port, 64, seconds, left, scratch)
        done += figures["requests"]
        bad += figures["bad"] + figures["errors"]
    after = tree_rss_mb(pid)
    return {"rss_before": before, "rss_after": after, "rss_requests": done, "bad_rss": bad}


def table(rows: list[dict]) -> str:
    direct = rows[0]
    head = (
        "| target | p50 ms | p99 ms | added p50 / p99 ms | rps c16 (x direct) | rps c64 (x direct) "
        "| RSS MB before → after (requests) | TTFT ms (added) | non-2xx/errors |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        added = f"{r['p50_ms'] - direct['p50_ms']:+.3f} / {r['p99_ms'] - direct['p99_ms']:+.3f}"
        if r is direct:
            added = "-"
        rss = "-"
        if "rss_after" in r:
            grow = r["rss_after"] - r["rss_before"]
            rss = f"{r['rss_before']:.1f} → {r['rss_after']:.1f} ({grow:+.1f}; {r['rss_requests']})"
        bad = r["bad"] + r.get("bad_rss", 0)
        cells = [
            r["name"],
            f"{r['p50_ms']:.3f}",
            f"{r['p99_ms']:.3f}",
            added,
            f"{r['rps16']:.0f} ({r['rps16'] / direct['rps16']:.2f})",
            f"{r['rps64']:.0f} ({r['rps64'] / direct['rps64']:.2f})",
            rss,
            f"{r['ttft_ms']:.3f} ({r['ttft_ms'] - direct['ttft_ms']:+.3f})"
            if r is not direct
            else f"{r['ttft_ms']:.3f}",
            str(bad),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stacks", default=",".join(STACKS))
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk throughput point")
    parser.add_argument("--seq", type=int, default=3000, help="sequential requests per target")
    parser.add_argument("--rss-requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best figure is kept")
    parser.add_argument("--rss-max-seconds", type=float, default=150.0, help="time bound of each RSS run")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument(
        "--katan", help="an llm-katan executable: measure it directly as an upstream candidate"
    )
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("gateway_stacks: wrk is missing (apt-get install wrk)", file=sys.stderr)
        return 1
    stacks = [s for s in args.stacks.split(",") if s]
    unknown = [s for s in stacks if s not in STACKS]
    if unknown:
        print(
            f"gateway_stacks: --stacks: unknown {', '.join(unknown)} (known: {', '.join(STACKS)})",
            file=sys.stderr,
        )
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="taoplan-bench-"))
    load_before = os.getloadavg()
    started = time.monotonic()
    up_port = free_port()
    upstream = start(
        [sys.executable, str(HERE / "upstream_echo.py"), "--port", str(up_port)], up_port, scratch / "up.log"
    )
    procs = [upstream]
    targets = [("direct (upstream_echo)", up_port, upstream, args.seq, False)]
    try:
        for stack in stacks:
            port = free_port()
            argv2 = [sys.executable, str(HERE / "_stack_apps.py"), stack, "--port", str(port)]
            argv2 += ["--upstream", f"http://127.0.0.1:{up_port}"]
            proc = start(argv2, port, scratch / f"{stack}.log")
            procs.append(proc)
            targets.append((stack, port, proc, args.seq, True))
        if not args.no_litellm:
            port = free_port()
            print("-- litellm: starting (venv via bench/litellm_venv.sh)", file=sys.stderr, flush=True)
            proc = _litellm.start_litellm(
                f"http://127.0.0.1:{up_port}/v1", port, log_path=scratch / "litellm.log"
            )
            procs.append(proc)
            targets.append(("litellm-proxy 1.80.8", port, proc, min(args.seq, 500), False))
        if args.katan:
            port = free_port()
            argv2 = [args.katan, "-m", "echo", "--backend", "echo", "-p", str(port), "-h", "127.0.0.1"]
            argv2 += ["--stats-file", str(scratch / "katan.json"), "--log-level", "error"]
            proc = start(argv2, port, scratch / "katan.log")
            procs.append(proc)
            targets.append(("direct (llm-katan echo)", port, proc, min(args.seq, 500), False))
        per_target: dict[str, list[dict]] = {t[0]: [] for t in targets}
        for number in range(
            args.rounds
        ):  # interleaved, so that a burst of other work hits every target alike
            print(f"-- round {number + 1}/{args.rounds}", file=sys.stderr, flush=True)
            for name, port, _proc, seq, _rss in targets:
                per_target[name].append(measure_round(name, port, args, scratch, seq))
        rows = [best(t[0], per_target[t[0]]) for t in targets]
        for row, (name, port, proc, _seq, rss) in zip(rows, targets, strict=True):
            if rss and args.rss_requests:
                budget = args.rss_max_seconds
                row.update(
                    measure_rss(name, port, proc.pid, row["rps64"], args.rss_requests, scratch, budget)
                )
    finally:
        for proc in procs:
            stop(proc)
    load_after = os.getloadavg()
    print(
        f"\ngateway stacks, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"python {sys.version.split()[0]}, {time.monotonic() - started:.0f} s, best of {args.rounds} interleaved rounds, "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n"
    )
    print(table(rows))
    print(
        "\nrps per round: "
        + "; ".join(f"{r['name']}: c16 {r['rps16_all']} c64 {r['rps64_all']}" for r in rows)
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
