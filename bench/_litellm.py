"""LiteLLM Proxy as a side-by-side anchor for the gateway benchmarks.

``start_litellm(upstream_base, port)`` starts LiteLLM Proxy (from the separate venv that bench/litellm_venv.sh
creates) on 127.0.0.1:port in front of an OpenAI-compatible upstream, with one model (``echo`` by default)
routed to it, no database and no master key, and returns once it answers a chat completion.
Stop it with ``stop(proc)``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def litellm_bin() -> str:
    """The venv's litellm executable (creating the venv the first time; cached after)."""
    out = subprocess.run(
        ["bash", str(HERE / "litellm_venv.sh")], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    return out.strip().splitlines()[-1]


def write_config(upstream_base: str, model: str, directory: Path) -> Path:
    """A LiteLLM config with one model routed to ``upstream_base`` (e.g. http://127.0.0.1:8199/v1).
    JSON is valid YAML, so no YAML library is needed here."""
    config = {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"openai/{model}",
                    "api_base": upstream_base,
                    "api_key": "sk-echo",
                },
            }
        ],
        "litellm_settings": {"telemetry": False, "drop_params": True, "set_verbose": False},
        "general_settings": {},
    }
    path = directory / "litellm-config.yaml"
    path.write_text(json.dumps(config, indent=2))
    return path


def _post(url: str, body: dict, timeout: float = 5.0) -> int:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as reply:  # noqa: S310 - loopback only
        reply.read()
        return reply.status


def start_litellm(
    upstream_base: str,
    port: int,
    model: str = "echo",
    workers: int = 1,
    timeout: float = 120.0,
    log_path: Path | None = None,
) -> subprocess.Popen:
    """Start LiteLLM Proxy on 127.0.0.1:port and wait until a chat completion through it succeeds."""
    exe = litellm_bin()
    workdir = Path(tempfile.mkdtemp(prefix="taoplan-litellm-"))
    config = write_config(upstream_base, model, workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "LITELLM_MASTER_KEY"))}
    env.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the cost map from the network
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_ADMIN_UI": "True",
            "NO_DOCS": "True",
            "HOME": str(workdir),
        }
    )
    log = open(log_path or workdir / "litellm.log", "wb")  # noqa: SIM115 - lives as long as the process
    argv = [exe, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--num_workers", str(workers)]
    proc = subprocess.Popen(
        argv, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    body = {"model": model, "messages": [{"role": "user", "content": "ready?"}], "max_tokens": 4}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"litellm exited {proc.returncode}; log: {log.name}")
        try:
            if _post(url, body) == 200:
                return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.3)
    stop(proc)
    raise RuntimeError(f"litellm not ready on port {port} after {timeout:.0f} s; log: {log.name}")


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the proxy's process group (its workers too), SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
