"""The files under examples/ are valid, and render what their comments say."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT, taoplan

MIXED = ROOT / "examples" / "mixed.services.yaml"
SLURM_ENV = {"SLURM_USER": "alice", "SLURM_HOSTNAME": "login.example.org"}


def test_the_mixed_example_validates_and_renders_tao_vllm_on_slurm_and_llamacpp_on_docker(
    tmp_path: Path,
) -> None:
    valid = taoplan("validate", "-f", str(MIXED), cwd=tmp_path, env=SLURM_ENV)
    assert valid.code == 0, valid.text
    assert "3 service(s)" in valid.out

    out = tmp_path / "rendered"
    run = taoplan("render", "-f", str(MIXED), "--out", str(out), cwd=tmp_path, env=SLURM_ENV)
    assert run.code == 0, run.text
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "captions/run.sh",
        "gemma/run.sh",
        "llama-8b/sbatch.sh",
    ]
    tao = (out / "captions" / "run.sh").read_text()
    assert "huggingface_inference_microservice_server" in tao and "--docker_env_vars" in tao
    vllm = (out / "llama-8b" / "sbatch.sh").read_text()
    assert "--container-image=vllm/vllm-openai:" in vllm and "#SBATCH --gres=gpu:2" in vllm
    assert (
        "exec vllm serve meta-llama/Llama-3.1-8B-Instruct --host 0.0.0.0 --port " in vllm
        and "--served-model-name llama-8b --tensor-parallel-size 2 --max-model-len 8192'" in vllm
    )
    llama = (out / "gemma" / "run.sh").read_text()
    assert "localhost/taoplan/llamacpp-test:1" in llama and "--entrypoint ''" in llama
    assert (
        "exec llama-server --model /models/gemma-3-270m-q4_k_m.gguf --host 0.0.0.0 --port 8080 "
        "--alias gemma -c 4096'" in llama
    )
