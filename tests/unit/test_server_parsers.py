"""The vLLM and SGLang flags taoplan renders, parsed by the servers' REAL argument parsers.

The parsers come from PyPI in a throwaway venv (scripts/server-parser-venv.sh: vLLM pulls torch and the
CUDA libraries, several GB, so scripts/test.sh does not make it). Without that venv this test skips;
with it, it takes about 15 s (importing vLLM and SGLang). The versions are the default images' tags.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from taoplan.spec import payload
from taoplan.spec.config import load_services
from taoplan.spec.desired import build_desired
from taoplan.spec.references import load_references
from tests.conftest import ROOT

VENV_PYTHON = (
    Path(os.environ.get("TAOPLAN_CACHE", "/var/cache/taoplan")) / "server-parsers" / "venv" / "bin" / "python"
)
pytestmark = pytest.mark.skipif(
    not VENV_PYTHON.exists(), reason="no parser venv (bash scripts/server-parser-venv.sh: several GB)"
)
REFS = load_references()
SERVICES = """\
version: 1
platforms:
  slurm: {login: u@h}
services:
  vllm:
    server: {type: vllm, model: meta-llama/Llama-3.1-8B-Instruct, served_name: llama-8b,
             args: ["--max-model-len", "8192"]}
    num_gpus: 2
  vllm-2n:
    server: {type: vllm, model: /models/llama-70b}
    num_gpus: 4
    num_nodes: 2
    platform: slurm
  sglang:
    server: {type: sglang, model: Qwen/Qwen2.5-7B-Instruct, args: ["--mem-fraction-static", "0.8"]}
    num_gpus: 2
  sglang-2n:
    server: {type: sglang, model: Qwen/Qwen2.5-72B-Instruct}
    num_gpus: 8
    num_nodes: 2
    platform: slurm
"""
#: what the shell gives the rank flags of a multi-node SGLang job on its first node
SLURM = {"$SLURM_NNODES": "2", "$SLURM_NODEID": "0", "$TAOPLAN_HEAD_NODE:50000": "node1:50000"}


def rendered(tmp_path: Path) -> dict[str, list[str]]:
    """Each service's server command line as its container runs it (the inner command, split)."""
    path = tmp_path / "services.yaml"
    path.write_text(SERVICES)
    out = {}
    for name, want in build_desired(load_services(path, REFS), REFS, {}).items():
        words = shlex.split(payload.inner_command(want.spec, "job-1", want.platform, REFS, port=18082))
        assert words[0] == "exec"
        out[name] = [SLURM.get(w, w) for w in words[1:]]
    return out


def parsed(lines: dict[str, list[str]]) -> dict[str, dict]:
    proc = subprocess.run(
        [str(VENV_PYTHON), str(ROOT / "scripts" / "server_parsers.py")],
        input=json.dumps(lines),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, dict] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_rendered_vllm_and_sglang_flags_parse_with_the_real_parsers(tmp_path: Path) -> None:
    result = parsed(rendered(tmp_path))
    for name, answer in result.items():
        assert answer["ok"], f"{name}: {answer.get('error')}"
    vllm, vllm_2n = result["vllm"]["args"], result["vllm-2n"]["args"]
    assert (vllm["model_tag"], vllm["host"], vllm["port"]) == (
        "meta-llama/Llama-3.1-8B-Instruct",
        "0.0.0.0",
        18082,
    )
    assert vllm["served_model_name"] == ["llama-8b"] and vllm["tensor_parallel_size"] == 2
    assert vllm["max_model_len"] == 8192
    assert vllm_2n["tensor_parallel_size"] == 8 and vllm_2n["served_model_name"] == ["vllm-2n"]
    sglang, sglang_2n = result["sglang"]["args"], result["sglang-2n"]["args"]
    assert (sglang["model_path"], sglang["port"], sglang["served_model_name"]) == (
        "Qwen/Qwen2.5-7B-Instruct",
        18082,
        "sglang",
    )
    assert sglang["tensor_parallel_size"] == 2 and sglang["mem_fraction_static"] == 0.8
    assert (sglang_2n["tensor_parallel_size"], sglang_2n["nnodes"], sglang_2n["node_rank"]) == (16, 2, 0)
    assert sglang_2n["dist_init_addr"] == "node1:50000"


def test_the_real_parsers_refuse_a_flag_they_do_not_have(tmp_path: Path) -> None:
    """The check can fail: a misspelt flag and an abbreviation are refused, by name."""
    lines = rendered(tmp_path)
    result = parsed(
        {
            "vllm": [*lines["vllm"], "--tensor-parallel", "2"],
            "sglang": [*lines["sglang"], "--tp", "2"],
        }
    )
    assert not result["vllm"]["ok"] and "--tensor-parallel" in result["vllm"]["error"]
    assert not result["sglang"]["ok"] and "--tp" in result["sglang"]["error"]
