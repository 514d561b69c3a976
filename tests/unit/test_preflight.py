"""The doctor's GPU host preflight, on recorded outputs of real nvidia-smi, nvidia-container-cli, nvidia-ctk,
/etc/nv_tegra_release and docker info (tests/unit/data/gpuhost/README.md says where each comes from).

These machines have no GPU: the no-driver path is tested for real in tests/e2e/test_doctor_host.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from taoplan.platforms.base import Check, Deployment
from taoplan.platforms.common import preflight
from taoplan.platforms.common.ssh import Reply
from taoplan.spec.references import load_references
from tests.unit.test_render import deployment

DATA = Path(__file__).parent / "data" / "gpuhost"
REFS = load_references().service.gpu_host


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def docker_info(nvidia: bool) -> dict[str, Any]:
    info = json.loads(recorded("docker-info.no-nvidia.json"))
    if nvidia:  # what `nvidia-ctk runtime configure --runtime=docker` registers
        info["Runtimes"]["nvidia"] = {"path": "nvidia-container-runtime"}
    return info


@dataclass
class RecordedHost:
    """A GPU host that answers with recorded outputs: (exit status, output) per probe."""

    probes: dict[str, tuple[int, str]]
    info: Mapping[str, Any] = field(default_factory=lambda: docker_info(True))
    container: Reply = Reply(0, "GPU 0: NVIDIA GeForce RTX 3080 (UUID: GPU-1)\n", "")
    where: str = "host-a"
    ran: list[str] = field(default_factory=list)

    def run_script(self, script: str) -> Reply:
        out = "".join(
            f"{preflight.MARK} {name}\n{text}\n{preflight.MARK}-rc {code}\n"
            for name, (code, text) in self.probes.items()
        )
        return Reply(0, out, "")

    def docker_info(self) -> Mapping[str, Any]:
        return self.info

    def gpu_container(self, image: str) -> Reply:
        self.ran.append(image)
        return self.container


NOT_FOUND = (127, "sh: 1: nvidia-smi: not found")
NO_TEGRA = (1, "cat: /etc/nv_tegra_release: No such file or directory")


def host(smi: str | tuple[int, str], toolkit: str | tuple[int, str], **kw: Any) -> RecordedHost:
    probes = {
        "smi": (0, recorded(smi)) if isinstance(smi, str) else smi,
        "toolkit": (0, recorded(toolkit)) if isinstance(toolkit, str) else toolkit,
        "tegra": kw.pop("tegra", NO_TEGRA),
    }
    return RecordedHost(probes, **kw)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def tao(gpus: int = 1) -> Deployment:
    return deployment(gpus)  # cosmos-rl: the toolkit minimum is 1.19.1


def test_parses_driver_cuda_and_each_gpus_own_memory_not_its_mig_instances() -> None:
    a100 = preflight.parse_smi_xml(recorded("nvidia-smi-q-x.a100-mig-535.xml"))
    assert (a100.driver, a100.cuda) == ("535.54.03", "12.2")
    assert [(g.name, g.total_mib, g.free_mib) for g in a100.gpus][0] == (
        "NVIDIA A100-SXM4-80GB",
        81920,
        80999,
    )
    t4 = preflight.parse_smi_xml(recorded("nvidia-smi-q-x.t4-515.xml"))
    assert (t4.driver, t4.cuda, len(t4.gpus)) == ("515.105.01", "11.7", 1)
    assert (t4.gpus[0].total_mib, t4.gpus[0].free_mib) == (15360, 13939)


def test_parses_toolkit_versions_from_both_clis_and_the_jetson_release() -> None:
    assert preflight.toolkit_version(recorded("nvidia-container-cli-version.1.17.5.txt")) == "1.17.5"
    assert preflight.toolkit_version(recorded("nvidia-ctk-version.1.17.8.txt")) == "1.17.8"
    assert preflight.toolkit_version(recorded("nvidia-ctk-version.1.19.1.txt")) == "1.19.1"
    assert preflight.l4t_release(recorded("nv_tegra_release.r36.3.txt")) == "R36.3.0"
    assert preflight.docker_runtimes(docker_info(False)) == (
        ["io.containerd.runc.v2", "io.containerd.runtime.v1.linux", "runc"],
        False,
    )


def test_version_comparison_is_numeric_and_pads() -> None:
    assert preflight.at_least("580.65.06", "580") and preflight.at_least("13.0", "13.0")
    assert preflight.at_least("595.58.03", "580") and not preflight.at_least("575.57.08", "580")
    assert preflight.at_least("1.19.10", "1.19.1") and not preflight.at_least("1.9.0", "1.19.0")


def test_a_good_host_passes_every_check() -> None:
    good = host("nvidia-smi-q-x.rtx3080-595.xml", "nvidia-ctk-version.1.19.1.txt")
    good.probes["smi"] = (
        0,
        good.probes["smi"][1].replace("<free>660 MiB</free>", "<free>10000 MiB</free>", 1),
    )
    checks = preflight.preflight(good, [tao()], REFS)
    assert all(c.ok for c in checks), checks
    found = by_name(checks)
    assert found["NVIDIA driver"].detail == "595.58.03 on host-a (≥ 580)"
    assert found["CUDA"].detail == "13.2 on host-a (≥ 13.0)"
    assert found["Container Toolkit"].detail == "1.19.1 on host-a (≥ 1.19.1)"
    assert found["GPU runtime"].detail == "nvidia runtime registered with Docker on host-a"
    assert found["GPU container nvcr.io/nvidia/tao/x:1"].detail.endswith("sees 1 GPU(s)")
    assert good.ran == ["nvcr.io/nvidia/tao/x:1"]


def test_old_driver_cuda_and_toolkit_each_name_the_fix() -> None:
    old = host("nvidia-smi-q-x.a100-mig-535.xml", "nvidia-container-cli-version.1.17.5.txt")
    found = by_name(preflight.preflight(old, [tao()], REFS))
    assert not found["NVIDIA driver"].ok
    assert found["NVIDIA driver"].detail.startswith(
        "535.54.03 on host-a; the TAO 7.x containers need ≥ 580: upgrade the NVIDIA driver"
    )
    assert (
        not found["CUDA"].ok and "12.2 on host-a; the TAO 7.x containers need ≥ 13.0" in found["CUDA"].detail
    )
    toolkit = found["Container Toolkit"]
    assert not toolkit.ok
    assert toolkit.detail.startswith(
        "1.17.5 on host-a; cosmos-rl needs ≥ 1.19.1: upgrade the NVIDIA Container Toolkit"
    )


def test_a_generic_server_gets_no_tao_minimums() -> None:
    server = replace(tao(), registry=False, network_arch="vllm")
    old = host("nvidia-smi-q-x.t4-515.xml", "nvidia-container-cli-version.1.17.5.txt")
    found = by_name(preflight.preflight(old, [server], REFS))
    assert found["NVIDIA driver"] == Check("NVIDIA driver", True, "515.105.01 on host-a")
    assert found["Container Toolkit"] == Check("Container Toolkit", True, "1.17.5 on host-a")


def test_busy_or_too_few_gpus_fail_the_memory_check() -> None:
    busy = host("nvidia-smi-q-x.rtx3080-595.xml", "nvidia-ctk-version.1.19.1.txt")
    memory = by_name(preflight.preflight(busy, [tao(1)], REFS))["GPU memory"]
    assert not memory.ok
    assert "1 GPU(s) on host-a (NVIDIA GeForce RTX 3080), 0 with ≥ 90% of their memory free" in memory.detail
    assert "GPU 0 NVIDIA GeForce RTX 3080: 660 of 10240 MiB free" in memory.detail
    assert memory.detail.endswith("or lower num_gpus")
    t4 = host("nvidia-smi-q-x.t4-515.xml", "nvidia-ctk-version.1.19.1.txt")
    assert by_name(preflight.preflight(t4, [tao(1)], REFS))["GPU memory"].ok  # 13939 of 15360 MiB: 91%
    two = by_name(preflight.preflight(t4, [tao(1), tao(2)], REFS))["GPU memory"]
    assert not two.ok and two.detail.endswith(
        "a service asks for up to 2: lower num_gpus, or use a host with more GPUs"
    )


def test_no_driver_is_one_clear_verdict_and_skips_what_needs_it() -> None:
    bare = host(NOT_FOUND, (127, "sh: 1: nvidia-ctk: not found"), info=docker_info(False))
    checks = preflight.preflight(bare, [tao()], REFS)
    assert [c.name for c in checks] == ["NVIDIA driver", "Container Toolkit", "GPU runtime"]
    assert not any(c.ok for c in checks)
    assert checks[0].detail.startswith(
        "no NVIDIA driver found on host-a (nvidia-smi is not installed): install"
    )
    assert "no nvidia runtime on host-a (Docker has io.containerd.runc.v2, " in checks[2].detail
    assert bare.ran == []  # no GPU container without a driver


def test_jetson_is_reported_as_such_and_its_shared_memory_is_not_judged() -> None:
    jetson = host(
        "nvidia-smi-q-x.rtx3080-595.xml",
        "nvidia-ctk-version.1.19.1.txt",
        tegra=(0, recorded("nv_tegra_release.r36.3.txt")),
    )
    found = by_name(preflight.preflight(jetson, [tao()], REFS))
    assert found["Jetson"].ok and found["Jetson"].detail.startswith("host-a: L4T R36.3.0 (Jetson")
    assert "GPU memory" not in found
    no_smi = host(
        NOT_FOUND, "nvidia-ctk-version.1.19.1.txt", tegra=(0, recorded("nv_tegra_release.r36.3.txt"))
    )
    driver = by_name(preflight.preflight(no_smi, [tao()], REFS))["NVIDIA driver"]
    assert not driver.ok and "install a JetPack whose driver is ≥ 580 with CUDA ≥ 13.0" in driver.detail


def test_the_gpu_container_is_skipped_for_an_image_not_pulled_and_fails_with_the_fix() -> None:
    missing = host(
        "nvidia-smi-q-x.t4-515.xml",
        "nvidia-ctk-version.1.19.1.txt",
        container=Reply(
            125, "", "docker: Error response from daemon: No such image: nvcr.io/nvidia/tao/x:1."
        ),
    )
    check = by_name(preflight.preflight(missing, [tao()], REFS))["GPU container nvcr.io/nvidia/tao/x:1"]
    assert check.ok and check.detail.startswith("skipped: the image is not on host-a yet")
    broken = host(
        "nvidia-smi-q-x.t4-515.xml",
        "nvidia-ctk-version.1.19.1.txt",
        container=Reply(
            125,
            "",
            'docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].',
        ),
    )
    check = by_name(preflight.preflight(broken, [tao()], REFS))["GPU container nvcr.io/nvidia/tao/x:1"]
    assert not check.ok and "then sudo nvidia-ctk runtime configure --runtime=docker" in check.detail


def test_a_host_where_commands_cannot_run_still_checks_docker() -> None:
    class Remote(RecordedHost):
        def run_script(self, script: str) -> Reply:
            raise preflight.NotReachable(
                "the Docker daemon is remote: run taoplan doctor on that host", docker=True
            )

    remote = Remote({}, info=docker_info(False))
    checks = preflight.preflight(remote, [tao()], REFS)
    assert checks[0] == Check(
        "GPU host",
        True,
        "host-a: driver, toolkit and GPU memory not checked: the Docker daemon is remote: run taoplan doctor on that host",
    )
    assert [c.name for c in checks] == ["GPU host", "GPU runtime", "GPU container nvcr.io/nvidia/tao/x:1"]

    class Busy(RecordedHost):  # a Slurm partition whose GPUs are all held: nothing runs, one note
        def run_script(self, script: str) -> Reply:
            raise preflight.NotReachable("srun could not run them now (Requested nodes are busy)")

    [note] = preflight.preflight(Busy({}), [tao()], REFS)
    assert note.ok and note.detail.endswith(
        "not checked: srun could not run them now (Requested nodes are busy)"
    )


def test_the_probe_script_round_trips() -> None:
    text = f"{preflight.MARK} smi\nline 1\nline 2\n{preflight.MARK}-rc 0\n{preflight.MARK} tegra\n{preflight.MARK}-rc 1\n"
    assert preflight.split_probes(text) == {"smi": (0, "line 1\nline 2"), "tegra": (1, "")}
    assert set(preflight.PROBES) <= set(preflight.probe_script().replace('"', " ").split())
