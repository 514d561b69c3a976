"""Slurm settings are validated where they are written, and Slurm's answers are read exactly."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from taoplan.errors import ConfigError
from taoplan.platforms.common import tunnel
from taoplan.platforms.common.ports import first_free
from taoplan.platforms.slurm.doctor import gpus_per_node
from taoplan.platforms.slurm.jobs import (
    Job,
    decode_comment,
    encode_comment,
    parse_duration,
    parse_exit_code,
    parse_sacct,
    parse_squeue,
)
from taoplan.platforms.slurm.settings import remote_path
from taoplan.spec.config import load_services
from taoplan.spec.platform_settings import SlurmConfig
from taoplan.spec.references import load_references

REFS = load_references()


def test_defaults_are_the_issue_defaults() -> None:
    config = SlurmConfig()
    assert config.login == "${SLURM_USER}@${SLURM_HOSTNAME}"
    assert (config.ssh_port, config.time, config.cpus_per_task) == (22, "04:00:00", 16)
    assert (config.container_runtime, config.remote_dir) == ("pyxis", "~/.taoplan")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"extra_sbatch": ["--time=01:00:00"]}, "--time is set by taoplan itself"),
        ({"extra_sbatch": ["--mem=0; rm -rf ~"]}, "expected one long option"),
        ({"extra_sbatch": ["-J x"]}, "expected one long option"),
        ({"extra_sbatch": ["--mem=0\n#SBATCH --time=1"]}, "expected one long option"),
        ({"ssh_options": {"ControlPath": "/tmp/x"}}, "ControlPath is set by taoplan itself"),
        ({"ssh_options": {"ProxyCommand": "a\nb"}}, "one non-empty line"),
        ({"remote_dir": "relative/dir"}, "absolute path or one under ~/"),
        ({"time": "four hours"}, "String should match pattern"),
        ({"partition": "gpu; rm"}, "letters, digits"),
        ({"login": "no-at-sign"}, "expected user@host"),
        ({"container_runtime": "singularity"}, "Input should be 'pyxis', 'docker' or 'none'"),
        ({"container_mounts": ["/a:/b,/c:/d"]}, "without spaces or commas"),
        ({"gpus": 2}, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        SlurmConfig.model_validate(settings)
    assert message in str(info.value)


def test_extra_sbatch_accepts_both_spellings() -> None:
    config = SlurmConfig.model_validate(
        {"extra_sbatch": ["--mem=0", "#SBATCH --constraint=a100", "--no-requeue"]}
    )
    assert config.extra_sbatch == ["--mem=0", "--constraint=a100", "--no-requeue"]


def test_a_bad_setting_is_located_in_the_services_file(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            platforms:
              slurm:
                extra_sbatch: ["--gres=gpu:8"]
            services:
              a: {network_arch: cosmos-rl, model_path: /m, platform: slurm}
            """
        )
    )
    with pytest.raises(ConfigError) as info:
        load_services(path, REFS)
    assert info.value.lines == [f"{path}:4:5: platforms.slurm.extra_sbatch: --gres is set by taoplan itself"]


def test_squeue_lines_become_jobs_in_the_core_vocabulary() -> None:
    text = (
        "41|job-a|RUNNING|None|node7|1-02:03:04|taoplan.project=p;taoplan.service=a;taoplan.spec-hash=h\n"
        "42|job-b|PENDING|Resources||4:00:00|taoplan.project=p;taoplan.service=b\n"
        "43|wrap|COMPLETED|None|node7|UNLIMITED|(null)\n"
        "44|job-c|COMPLETING|None|node7|3:59|taoplan.project=p;taoplan.service=c\n"
    )
    a, b, c, d = parse_squeue(text)
    assert (a.status, a.detail, a.time_left) == ("running", "RUNNING on node7", 93784.0)
    assert a.labels == {"taoplan.project": "p", "taoplan.service": "a", "taoplan.spec-hash": "h"}
    assert (b.status, b.detail) == ("pending", "PENDING (Resources)")
    assert (c.status, c.labels, c.time_left) == ("exited", {}, None)
    assert d.status == "exited"  # COMPLETING: the service is going away


def test_sacct_final_states_and_exit_codes() -> None:
    [cancelled, failed] = parse_sacct("7|job|CANCELLED by 0|0:15|n1\n8|job|FAILED|1:0|n1\n")
    assert (cancelled.base_state, cancelled.status, cancelled.exit_code) == ("CANCELLED", "exited", 143)
    assert (failed.status, failed.exit_code) == ("exited", 1)
    assert parse_exit_code("garbage") is None
    assert Job("1", "x", "REQUEUED").status == "pending"
    assert Job("1", "x", "SUSPENDED").status == "running"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("59", 3540.0), ("3:59", 239.0), ("1:00:00", 3600.0), ("2-00", 172800.0), ("UNLIMITED", None)],
)
def test_slurm_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_comments_round_trip_and_foreign_comments_are_ignored() -> None:
    values = {"taoplan.project": "p", "taoplan.lineage": "l", "taoplan.node-port": "18080"}
    assert decode_comment(encode_comment(values)) == values
    assert decode_comment("nightly training run") == {}
    assert decode_comment("taoplan.service=a") == {}  # no project: not ours


def test_remote_paths_keep_tilde_and_quote_the_rest() -> None:
    assert remote_path("~/.taoplan") == "~/.taoplan"
    assert remote_path("~/my dir") == "~/'my dir'"
    assert remote_path("/scratch/$USER") == "'/scratch/$USER'"


def test_gres_counts() -> None:
    assert gpus_per_node("gpu:2") == 2
    assert gpus_per_node("gpu:a100:8(S:0-1)") == 8
    assert gpus_per_node("(null)") == 0


def test_a_recorded_pid_is_only_trusted_if_it_is_that_ssh_tunnel() -> None:
    assert not tunnel.is_ours(os.getpid(), "8080:node:18080")  # pytest is not ssh
    assert not tunnel.is_ours(None, "8080:node:18080")
    assert not tunnel.close_tunnel(os.getpid(), "8080:node:18080")  # never signals a stranger


def test_first_free_skips_taken_ports() -> None:
    assert first_free({18080, 18081}, 18080, free=lambda p: True) == 18082
