#!/usr/bin/env python3
"""End-to-end check of the taoplan TAO test image (stdlib only; needs docker and the built image).

    python3 testimage/smoke_test.py [--image TAG] [--port-base 18010]

For each arch it runs the exact production command line
    docker run -d --init -p PORT:8080 IMAGE /bin/bash -c "umask 0 && <inner>"
polls readiness to 200, checks the received record and a chat reply, then checks the failure knobs
(model_load_failed / initialization_failed, container keeps running) and that `docker stop` is fast.
Every container it starts is removed at the end. Ports used: port-base .. port-base+9.
"""

import argparse
import base64
import json
import shlex
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib

STARTED = []
FAILURES = []


def q(obj):
    return shlex.quote(json.dumps(obj, separators=(",", ":")))


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        FAILURES.append(what)
    return cond


def docker(*args, check_rc=True):
    proc = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check_rc and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} ...: {proc.stderr.strip()}")
    return proc.stdout.strip()


def run(image, port, inner, env=None, name_hint="x"):
    name = f"taoplan-smoke-{name_hint}-{uuid.uuid4().hex[:8]}"
    args = ["run", "-d", "--init", "--name", name, "--label", "taoplan.smoke=1", "-p", f"{port}:8080"]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    args += [image, "/bin/bash", "-c", f"umask 0 && {inner}"]
    docker(*args)
    STARTED.append(name)
    return name


def http(method, url, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def poll_readiness(port, until, timeout=30.0):
    """Poll until the status is `until` (200) or the reason is in `until` (a set); return (status, body, seen, secs)."""
    t0 = time.monotonic()
    seen = []
    while time.monotonic() - t0 < timeout:
        try:
            status, body = http("GET", f"http://127.0.0.1:{port}/api/v1/health/readiness", timeout=2)
            reason = body.get("reason") if isinstance(body, dict) else None
            label = reason or str(status)
            if not seen or seen[-1] != label:
                seen.append(label)
            if status == until or (isinstance(until, set) and reason in until):
                return status, body, seen, time.monotonic() - t0
        except (urllib.error.URLError, ConnectionError, OSError):
            if not seen or seen[-1] != "conn":
                seen.append("conn")
        time.sleep(0.1)
    return None, None, seen, time.monotonic() - t0


def tiny_png():
    raw = b"\x00" + b"\x76\xb9\x00" * 2  # one filter byte + 2 RGB pixels

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def received(name):
    return json.loads(docker("exec", name, "cat", "/tmp/taoplan-fake-received.json"))


def running(name):
    return docker("inspect", "--format", "{{.State.Status}}", name) == "running"


def stop_time(name):
    t0 = time.monotonic()
    docker("stop", name)
    secs = time.monotonic() - t0
    code = docker("inspect", "--format", "{{.State.ExitCode}}", name)
    return secs, code


def job_payloads(arch, model_path):
    job_id = str(uuid.uuid4())
    job = {"job_id": job_id, "specs": {"model_path": model_path}, "neural_network_name": arch}
    env = {"TAO_EXECUTION_BACKEND": "local-docker", "TAO_API_JOB_ID": job_id, "CLOUD_BASED": "False"}
    return job, env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="localhost/taoplan/tao-test:7.3.0")
    ap.add_argument("--port-base", type=int, default=18010)
    opts = ap.parse_args()
    image, port = opts.image, opts.port_base
    png = tiny_png()
    png_uri = "data:image/png;base64," + base64.b64encode(png).decode()

    archs = []
    job, env = job_payloads("cosmos-rl", "hf_model://nvidia/Cosmos-Reason2-8B")
    archs.append(
        (
            "cosmos-rl",
            job,
            env,
            f"cosmos-rl-inference-microservice --job {q(job)} --docker_env_vars {q(env)}",
            [
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "text", "text": "Describe it."},
            ],
        )
    )
    job, env = job_payloads("tao-dataservices", "Qwen/Qwen3-VL-8B-Instruct")
    archs.append(
        (
            "tao-dataservices",
            job,
            env,
            "python -m nvidia_tao_core.microservices.handlers.huggingface_inference_microservice_server"
            f" --port 8080 --job {q(job)} --docker_env_vars {q(env)}",
            [{"type": "image_url", "image_url": {"url": png_uri}}, {"type": "text", "text": "What colour?"}],
        )
    )
    archs.append(
        (
            "cosmos-predict2.5",
            None,
            None,
            "cosmos_predict inference_microservice start --model base-2b"
            f" --output-dir {shlex.quote('/tmp/cosmos-predict2.5/outputs')} --port 8080",
            "A robot arm picks up a cube.",
        )
    )

    try:
        for index, (arch, job, env, inner, content) in enumerate(archs):
            p = port + index
            print(f"== {arch}  (port {p})")
            t0 = time.monotonic()
            name = run(image, p, inner, name_hint=arch.replace(".", ""))
            status, body, seen, secs = poll_readiness(p, 200)
            check(status == 200, f"readiness 200 after {time.monotonic() - t0:.2f}s (sequence {seen})")
            rec = received(name)
            if job is not None:
                check(
                    rec["job"] == job and rec["docker_env_vars"] == env, "received job/env equal the payloads"
                )
                check(
                    rec["argv"][-4:]
                    == [
                        "--job",
                        json.dumps(job, separators=(",", ":")),
                        "--docker_env_vars",
                        json.dumps(env, separators=(",", ":")),
                    ],
                    "argv carries the compact JSON byte for byte",
                )
            else:
                check(
                    rec["predict"]["model"] == "base-2b" and rec["predict"]["port"] == 8080,
                    "received predict flags",
                )
            check(rec["umask"] == "0000", f"umask 0 applied (received umask {rec['umask']})")
            chat = {
                "model": "ignored",
                "max_tokens": 64,
                "temperature": 0.2,
                "top_p": 0.8,
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": content},
                ],
            }
            status, body = http("POST", f"http://127.0.0.1:{p}/v1/chat/completions", chat, timeout=30)
            reply = body["choices"][0]["message"]["content"] if status == 200 else body
            if arch == "cosmos-predict2.5":
                ok = status == 200 and reply.startswith("data:video/mp4;base64,")
                check(
                    ok, f"chat 200, content data:video/mp4;base64,... ({len(reply) if ok else reply} chars)"
                )
                if ok:
                    mp4 = base64.b64decode(reply.split(",", 1)[1])
                    echo = json.loads(mp4[36:-8])
                    check(
                        mp4[4:8] == b"ftyp" and echo["predict_params"]["num_output_frames"] == 64,
                        "mp4 = ftyp + free(echo), num_output_frames from max_tokens",
                    )
            else:
                check(status == 200, f"chat 200 (got {status})")
                echo = json.loads(reply) if status == 200 else {}
                print(
                    "       echo:",
                    json.dumps(
                        {k: echo.get(k) for k in ("model_path", "prompt", "system", "media", "sampling")}
                    ),
                )
                want_media = (
                    ["https://example.com/cat.jpg"]
                    if arch == "cosmos-rl"
                    else [f"data:image/png;{len(png)} bytes"]
                )
                check(
                    echo.get("media") == want_media
                    and echo.get("system") == "Be brief."
                    and echo.get("sampling", {}).get("max_new_tokens") == 64
                    and echo.get("model_path") == job["specs"]["model_path"],
                    "echo matches the request",
                )
            secs, code = stop_time(name)
            check(secs < 1.0, f"docker stop took {secs:.2f}s (exit code {code})")

        print("== failure knobs")
        fail_cases = [
            (
                "cosmos-rl",
                archs[0][3],
                {"TAO_FAKE_LOAD_SECONDS": "0.5", "TAO_FAKE_LOAD_FAIL": "weights corrupt"},
                "model_load_failed",
                "Model failed to load: weights corrupt",
            ),
            (
                "tao-dataservices",
                archs[1][3],
                {"TAO_FAKE_LOAD_FAIL": "weights corrupt"},
                "model_load_failed",
                "Model failed to load: Model loading failed",
            ),
            (
                "cosmos-predict2.5",
                archs[2][3],
                {"TAO_FAKE_LOAD_FAIL": "weights corrupt"},
                "model_load_failed",
                "Model failed to load: weights corrupt",
            ),
            (
                "cosmos-rl",
                archs[0][3],
                {"TAO_FAKE_INIT_SECONDS": "0.5", "TAO_FAKE_INIT_FAIL": "no disk"},
                "initialization_failed",
                "Server initialization failed: no disk",
            ),
            (
                "tao-dataservices",
                archs[1][3],
                {"TAO_FAKE_INIT_FAIL": "no disk"},
                "initialization_failed",
                "Server initialization failed: no disk",
            ),
        ]
        job, env = job_payloads("tao-dataservices", "hf_model://Qwen/Qwen3-VL-8B-Instruct")
        fail_cases.append(
            (
                "tao-dataservices hf_model://",
                "python -m nvidia_tao_core.microservices.handlers."
                f"huggingface_inference_microservice_server --port 8080 --job {q(job)} --docker_env_vars {q(env)}",
                {},
                "model_load_failed",
                "Model failed to load: Model loading failed",
            )
        )
        for index, (label, inner, env_vars, reason, message) in enumerate(fail_cases):
            p = port + 3 + index
            name = run(image, p, inner, env=env_vars, name_hint="fail")
            status, body, seen, secs = poll_readiness(p, {reason})
            check(
                status == 503 and body.get("message") == message,
                f"{label} {env_vars}: 503 {reason} '{(body or {}).get('message')}' (sequence {seen})",
            )
            time.sleep(1.5)
            check(running(name), f"{label}: container still running after the failure")
        return 0 if not FAILURES else 1
    finally:
        for name in STARTED:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        print(f"removed {len(STARTED)} containers; {len(FAILURES)} failure(s)")


if __name__ == "__main__":
    sys.exit(main())
