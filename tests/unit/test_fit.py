"""The fit model (engine.fit) on hand-made capacities, and each platform's reading of recorded outputs.

tests/unit/data/capacity/slurm-lab-one-held.txt is what the capacity command line of
platforms/slurm/capacity.py printed on the Slurm lab (slurm 22.05.8, Gres=gpu:2) while one
`--gres=gpu:1` job of another name ran.
"""

from __future__ import annotations

from pathlib import Path

from taoplan.engine import fit
from taoplan.engine.fit import CANNOT_FIT, FITS, QUEUES, UNKNOWN, Ask, check_apply, decide
from taoplan.errors import TaoplanError
from taoplan.platforms.capacity import Capacity, Hold, Place, capacity_of
from taoplan.platforms.kubernetes.capacity import capacity as k8s_capacity
from taoplan.platforms.local_docker import gpus as docker_gpus
from taoplan.platforms.slurm import capacity as slurm
from taoplan.spec.platform_settings import KubernetesConfig
from taoplan.store.state import ServiceRecord, State

DATA = Path(__file__).parent / "data" / "capacity"


def state_with(name: str, job_id: str) -> State:
    state = State.new()
    state.services[name] = ServiceRecord(
        name=name, job_id=job_id, platform="slurm", network_arch="cosmos-rl", spec={}, spec_hash="h",
        image="i", image_rule="r",
    )  # fmt: skip
    return state


TWO_NODES = Capacity(places=(Place("n1", 4, 4), Place("n2", 4, 1)), holds=(Hold("n2", 3, job_id="j-old"),))


def test_fits_on_the_tightest_place_that_has_room() -> None:
    verdicts, warnings = decide([Ask("a", "k", 1), Ask("b", "k", 4)], {"k": TWO_NODES}, State.new())
    assert verdicts["a"] == fit.Verdict(FITS, "1 GPU on n2 (1 of 4 free)")
    assert verdicts["b"].verdict == FITS and "n1" in verdicts["b"].detail
    assert warnings == []


def test_cannot_fit_when_the_largest_place_is_too_small_or_nothing_matches() -> None:
    verdicts, _ = decide([Ask("a", "k", 5)], {"k": TWO_NODES}, State.new())
    assert verdicts["a"].verdict == CANNOT_FIT
    assert verdicts["a"].detail == "needs 5 GPUs on one place; the largest place (n2) has 4"
    empty = Capacity(no_place="no Ready, schedulable node matches node_selector gpu=h100")
    verdicts, _ = decide([Ask("a", "k", 1)], {"k": empty}, State.new())
    assert verdicts["a"] == fit.Verdict(CANNOT_FIT, empty.no_place)


def test_queues_naming_the_holder_and_the_estimate() -> None:
    full = Capacity(
        places=(Place("vm", 2, 0),),
        holds=(Hold("vm", 1, job_id="j1"), Hold("vm", 1, who="slurm job 7 (bob: train)")),
        estimates={1: "Slurm estimates a start at 2026-12-02T09:00:00 on vm (sbatch --test-only)"},
    )
    verdicts, _ = decide([Ask("c", "slurm", 1)], {"slurm": full}, state_with("first", "j1"))
    assert verdicts["c"].verdict == QUEUES
    detail = verdicts["c"].detail
    assert "needs 1 GPU, 0 free now" in detail
    assert "1 GPU held by service first (j1)" in detail and "slurm job 7 (bob: train)" in detail
    assert detail.endswith("(sbatch --test-only)")


def test_fit_one_by_one_but_not_together_is_reported() -> None:
    cap = Capacity(places=(Place("vm", 2, 2),))
    asks = [Ask("a", "slurm", 1), Ask("b", "slurm", 1), Ask("c", "slurm", 1)]
    verdicts, warnings = decide(asks, {"slurm": cap}, State.new())
    assert [verdicts[n].verdict for n in "abc"] == [FITS, FITS, QUEUES]
    assert verdicts["c"].detail.startswith("fits alone but not together with a, b")
    assert warnings == ["slurm: c fit one by one but not together with a, b (2 GPUs free in all)"]
    docker = Capacity(places=(Place("this host", 2, 2),), queues=False)
    on_docker = [Ask(a.service, "local-docker", 1) for a in asks]
    verdicts, _ = decide(on_docker, {"local-docker": docker}, State.new())
    assert verdicts["c"].verdict == CANNOT_FIT and "does not queue" in verdicts["c"].detail


def test_what_apply_stops_first_gives_its_gpus_back() -> None:
    busy = Capacity(places=(Place("vm", 2, 0),), holds=(Hold("vm", 2, job_id="old"),))
    replace, _ = decide([Ask("a", "slurm", 2, frees="old")], {"slurm": busy}, State.new())
    assert replace["a"].verdict == FITS
    delete, _ = decide([Ask("b", "slurm", 2)], {"slurm": busy}, State.new(), stopped_first=["old"])
    assert delete["b"].verdict == FITS
    kept, _ = decide([Ask("b", "slurm", 2)], {"slurm": busy}, State.new())
    assert kept["b"].verdict == QUEUES


def test_unknown_says_why_and_apply_only_refuses_what_cannot_fit_or_queues() -> None:
    verdicts, _ = decide([Ask("a", "x", 1)], {"x": Capacity.not_known("no NVIDIA driver found")}, State.new())
    assert verdicts["a"] == fit.Verdict(UNKNOWN, "no NVIDIA driver found")
    assert capacity_of(object(), (1,)).unknown.startswith("platform object does not report GPU capacity")

    class C:
        def __init__(self, verdict: str) -> None:
            self.service, self.fit, self.fit_detail = "s", verdict, "why"

    check_apply([C(UNKNOWN), C(FITS), C("")], allow_queue=False)
    check_apply([C(QUEUES)], allow_queue=True)
    for verdict, allow in ((QUEUES, False), (CANNOT_FIT, True)):
        try:
            check_apply([C(verdict)], allow_queue=allow)
        except TaoplanError as exc:
            assert exc.exit_code == 1 and exc.lines[-1] == "nothing was started"
        else:
            raise AssertionError("apply should refuse")


def test_slurm_capacity_from_the_lab_outputs() -> None:
    text = (DATA / "slurm-lab-one-held.txt").read_text()
    cap = slurm.parse(text, "gpu", (1, 3))
    assert cap.places == (Place("vm", 2, 1, group="gpu"),)
    assert cap.holds == (Hold("vm", 1, who="slurm job 42 (root: h15hold)"),)
    assert cap.estimates[1].startswith("Slurm estimates a start at 2026-12-02T07:48:31 on vm")
    assert (
        cap.estimates[3]
        == "sbatch --test-only: allocation failure: Requested node configuration is not available"
    )
    assert [slurm.gpu_count(g) for g in ("gpu:2", "gpu:a100:4(S:0-1)", "gpu:1(IDX:0)", "gres:gpu:1", "gres/gpu:2", "(null)")] == [2, 4, 1, 1, 2, 0]  # fmt: skip


def test_slurm_nodes_that_cannot_run_jobs_and_partitions_that_match_nothing() -> None:
    places, unusable = slurm.parse_nodes(
        "n1|gpu*|gpu:4|gpu:0|drained|\nn2|gpu*|gpu:4|gpu:4|allocated|\n", None
    )
    assert places == [Place("n2", 4, 0, group="gpu")] and unusable == ["n1: drained"]
    assert slurm.parse("--- taoplan capacity ---\n", "nope", ()).no_place == "partition nope matches no node (sinfo lists none)"  # fmt: skip
    ours = "9|alice|job-1|vm|gres:gpu:2|taoplan.project=p;taoplan.service=web|\n"
    assert slurm.parse_holds(ours, {"vm"}) == [
        Hold("vm", 2, job_id="job-1", who="service web of project p (slurm job 9)")
    ]


def test_docker_device_requests_count_what_containers_hold() -> None:
    gpu = [["gpu"]]
    assert docker_gpus.requested_gpus({"DeviceRequests": [{"Count": 2, "Capabilities": gpu}]}, 4) == 2
    assert docker_gpus.requested_gpus({"DeviceRequests": [{"Count": -1, "Capabilities": gpu}]}, 4) == 4
    assert docker_gpus.requested_gpus({"DeviceRequests": [{"DeviceIDs": ["0", "3"], "Capabilities": gpu}]}, 4) == 2  # fmt: skip
    assert docker_gpus.requested_gpus({"DeviceRequests": None}, 4) == 0
    from taoplan.platforms.common.gpuhost import Gpu

    inspected = [
        {
            "Name": "/other",
            "HostConfig": {"DeviceRequests": [{"Count": 1, "Capabilities": gpu}]},
            "Config": {},
        },
        {"Name": "/web", "HostConfig": {}, "Config": {}},
    ]
    host = [Gpu(0, "NVIDIA H100", "GPU-0", 81559, 81000), Gpu(1, "NVIDIA H100", "GPU-1", 81559, 81000)]
    cap = docker_gpus.capacity(host, "", lambda: inspected, "nvidia")
    assert cap.places[0].gpus == 2 and cap.places[0].free == 1 and not cap.queues
    assert cap.holds[0].who == "container other"
    none = docker_gpus.capacity(None, "", lambda: [], "none")
    assert none.unknown == "platforms.local-docker.gpus is none: containers get no GPU to count"


def test_kubernetes_capacity_names_pods_that_hold_gpus() -> None:
    cfg = KubernetesConfig()
    node = {
        "metadata": {"name": "kwok-0", "labels": {}},
        "spec": {},
        "status": {
            "allocatable": {cfg.gpu_resource: "4"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    pod = {
        "metadata": {
            "name": "tao-a",
            "namespace": "ns",
            "labels": {"taoplan.io/job-id": "j1", "taoplan.io/service": "a", "taoplan.io/project": "p"},
        },  # fmt: skip
        "spec": {"nodeName": "kwok-0", "containers": [{"resources": {"limits": {cfg.gpu_resource: "3"}}}]},
        "status": {"phase": "Running"},
    }
    shared = k8s_capacity([node], [pod], cfg).shared(cfg)
    assert shared.places == (Place("kwok-0", 4, 1),)
    assert shared.holds == (Hold("kwok-0", 3, job_id="j1", who="service a of project p (pod ns/tao-a)"),)
    picky = KubernetesConfig(node_selector={"gpu": "h100"})
    none = k8s_capacity([node], [], picky).shared(picky)
    assert none.places == () and none.no_place == "no Ready, schedulable node matches node_selector gpu=h100"
