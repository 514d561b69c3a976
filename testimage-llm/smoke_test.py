#!/usr/bin/env python3
"""End-to-end check of the taoplan LLM test image (stdlib only; needs docker and the built image).

    python3 testimage-llm/smoke_test.py [--image TAG] [--port 18080]

Runs the official llama.cpp server command line, as a user would:
    docker run -d -p 127.0.0.1:PORT:8080 IMAGE llama-server --model /models/gemma-3-270m-q4_k_m.gguf \
        --host 0.0.0.0 --port 8080 --alias gemma
then checks GET /health (503 "Loading model" or refused, then 200), GET /v1/models (the alias), two chat
completions (real text, different for the two prompts), a streamed one (SSE chunks, then [DONE]), and
that `docker stop` (SIGTERM to the launcher as PID 1, no --init) exits 0 quickly. Then the bad inputs
(unknown flag, missing model file: exit 2 at once) and LLAMA_TEST_START_DELAY (503 "Loading model"
first). Prints the measured figures; every container it starts is removed. Ports: PORT, PORT+1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

MODEL = "/models/gemma-3-270m-q4_k_m.gguf"
STARTED: list[str] = []
FAILURES: list[str] = []


def check(cond: bool, what: str) -> bool:
    print(("  ok   " if cond else "  FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)
    return cond


def docker(*args: str, check_rc: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check_rc and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} ...: {proc.stderr.strip()}")
    return proc


def start(image: str, port: int, env: dict[str, str] | None = None, extra: list[str] | None = None) -> str:
    name = f"taoplan-llm-smoke-{uuid.uuid4().hex[:8]}"
    args = ["run", "-d", "--name", name, "--label", "taoplan.smoke=1", "-p", f"127.0.0.1:{port}:8080"]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    args += [
        image,
        "llama-server",
        "--model",
        MODEL,
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "--alias",
        "gemma",
    ]
    docker(*args, *(extra or []))
    STARTED.append(name)
    return name


def http(method: str, url: str, body: object = None, timeout: float = 120) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        return 0, str(exc).encode()


def wait_health(base: str, limit: float = 120) -> tuple[float, list[str]]:
    t0 = time.monotonic()
    seen: list[str] = []
    while time.monotonic() - t0 < limit:
        code, body = http("GET", f"{base}/health", timeout=2)
        state = f"{code} {body[:60].decode(errors='replace')}" if code else "no answer"
        if not seen or seen[-1] != state:
            seen.append(state)
        if code == 200:
            return time.monotonic() - t0, seen
        time.sleep(0.1)
    return -1.0, seen


def chat(base: str, prompt: str, max_tokens: int = 20) -> tuple[float, dict]:
    body = {
        "model": "gemma",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    t0 = time.monotonic()
    code, raw = http("POST", f"{base}/v1/chat/completions", body)
    took = time.monotonic() - t0
    return took, (
        json.loads(raw) if code == 200 else {"status": code, "raw": raw[:200].decode(errors="replace")}
    )


def stream(base: str, prompt: str) -> tuple[list[str], bool, float]:
    body = {
        "model": "gemma",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 16,
        "temperature": 0,
        "stream": True,
    }
    req = urllib.request.Request(
        f"{base}/v1/chat/completions",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    pieces: list[str] = []
    done = False
    t0 = time.monotonic()
    first = -1.0
    with urllib.request.urlopen(req, timeout=120) as resp:
        for line in resp:
            text = line.decode().strip()
            if not text.startswith("data: "):
                continue
            payload = text[6:]
            if payload == "[DONE]":
                done = True
                break
            for choice in json.loads(payload).get("choices", []):
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    if first < 0:
                        first = time.monotonic() - t0
                    pieces.append(piece)
    return pieces, done, first


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="localhost/taoplan/llamacpp-test:1")
    ap.add_argument("--port", type=int, default=18080)
    opts = ap.parse_args()
    base = f"http://127.0.0.1:{opts.port}"
    try:
        print("== official command line")
        t0 = time.monotonic()
        name = start(opts.image, opts.port)
        took, seen = wait_health(base)
        total = time.monotonic() - t0
        check(took >= 0, f"/health 200 {total:.2f}s from docker run ({took:.2f}s after it returned); {seen}")
        code, raw = http("GET", f"{base}/v1/models")
        ids = [m.get("id") for m in json.loads(raw).get("data", [])] if code == 200 else []
        check(ids == ["gemma"], f"/v1/models ids {ids}")
        replies = []
        for prompt in ("What is the capital of France?", "Write a short poem about the sea."):
            took, answer = chat(base, prompt)
            text = (
                answer.get("choices", [{}])[0].get("message", {}).get("content", "")
                if "choices" in answer
                else ""
            )
            usage = answer.get("usage", {})
            check(bool(text.strip()), f"chat {took:.2f}s, {usage.get('completion_tokens')} tokens: {text!r}")
            check(answer.get("model") == "gemma", f"reply model {answer.get('model')!r}")
            replies.append(text)
        check(replies[0] != replies[1], "two prompts give two different replies")
        pieces, done, first = stream(base, "Tell me about the moon.")
        check(
            len(pieces) > 1 and done,
            f"stream: {len(pieces)} chunks, first after {first:.2f}s, [DONE]={done}: {''.join(pieces)!r}",
        )
        t1 = time.monotonic()
        docker("stop", name)
        stop_s = time.monotonic() - t1
        rc = docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip()
        check(rc == "0" and stop_s < 5, f"docker stop (SIGTERM to PID 1) {stop_s:.2f}s, exit code {rc}")
        logs = docker("logs", name).stderr
        check("llama-server: stopped" in logs, "launcher logged a clean stop")

        print("== bad inputs")
        for extra, want in ((["--bogus-flag"], "unrecognized arguments: --bogus-flag"),):
            proc = docker("run", "--rm", opts.image, "llama-server", "-m", MODEL, *extra, check_rc=False)
            check(
                proc.returncode == 2 and want in proc.stderr,
                f"unknown flag: rc {proc.returncode}, {proc.stderr.strip()!r}",
            )
        proc = docker("run", "--rm", opts.image, "llama-server", "-m", "/models/nope.gguf", check_rc=False)
        check(
            proc.returncode == 2 and "model file not found" in proc.stderr,
            f"missing model: rc {proc.returncode}, {proc.stderr.strip()!r}",
        )
        proc = docker(
            "run", "--rm", opts.image, "llama-server", "-m", "/etc/hostname", "--port", "8080", check_rc=False
        )
        ours = [line for line in proc.stderr.splitlines() if line.startswith("llama-server: error:")]
        check(
            proc.returncode == 1 and len(ours) == 1 and "model failed to load" in ours[0],
            f"not a GGUF: rc {proc.returncode}, {ours}",
        )

        print("== LLAMA_TEST_START_DELAY=3")
        port2 = opts.port + 1
        t0 = time.monotonic()
        name2 = start(opts.image, port2, env={"LLAMA_TEST_START_DELAY": "3"})
        took, seen = wait_health(f"http://127.0.0.1:{port2}")
        check(
            took >= 3 and any("Loading model" in s for s in seen),
            f"/health 200 after {took:.2f}s; states: {seen}",
        )
        t1 = time.monotonic()
        docker("stop", name2)
        check(time.monotonic() - t1 < 5, f"stopped in {time.monotonic() - t1:.2f}s")
    finally:
        for name in STARTED:
            docker("rm", "-f", name, check_rc=False)
    print(f"smoke_test: {'FAILED: ' + '; '.join(FAILURES) if FAILURES else 'all checks passed'}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
