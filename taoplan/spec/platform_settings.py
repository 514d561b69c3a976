"""The ``platforms:`` section of the services file: one settings model per implemented platform.

These models say what a platform's settings mean and which values are valid; they are part of the
file's language, so the loader validates them (with located errors) without importing a platform.
A platform reads its settings from here; ``CATALOG`` lists the platforms a file may name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Every platform a services file may name.
KNOWN = ("local-docker", "brev", "lepton", "slurm", "kubernetes")


# ------------------------------------------------------------------------------------------ local-docker


class LocalDockerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    docker_host: str | None = None  # default: DOCKER_HOST, then the local socket
    network: str = Field(default="tao_default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    gpus: Literal["nvidia", "none"] = "nvidia"
    shm_size: str = Field(default="8g", pattern=r"^[0-9]+[bkmgBKMG]?$")
    pull: Literal["missing", "always", "never"] = "missing"
    # loopback: ports are published on 127.0.0.1 only (the gateway with keys is the one door);
    # all: on every interface, so anyone who reaches the host can call a service without a key.
    publish: Literal["loopback", "all"] = "loopback"


# ------------------------------------------------------------------------------------------ brev

#: A Brev instance name (brev-cli accepts these; at most 63 characters).
BREV_INSTANCE_RE = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"


class BrevCreate(BaseModel):
    """An instance taoplan creates (`brev create NAME -t TYPE[,FALLBACK...] -d`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    type: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9:._-]*(,[A-Za-z0-9][A-Za-z0-9:._-]*)*$", max_length=200)
    ephemeral: bool = True  # delete it on destroy (when no service of this project is left on it)
    timeout: int = Field(default=900, ge=60, le=7200)  # seconds until its shell is READY and exec answers


class BrevConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    instance: str | None = Field(default=None, max_length=63, pattern=BREV_INSTANCE_RE)  # an existing one
    create: BrevCreate | None = None  # or one taoplan creates, named taoplan-<project>
    access: Literal["tunnel", "public"] = "tunnel"  # ssh -L to 127.0.0.1 | http://<vm address>:<port>
    gpus: Literal["nvidia", "none"] = "nvidia"
    start_stopped: bool = False  # start a STOPPED instance instead of failing
    shm_size: str = Field(default="8g", pattern=r"^[0-9]+[bkmgBKMG]?$")

    @model_validator(mode="after")
    def _one_instance(self) -> BrevConfig:
        if self.instance is None and self.create is None:
            raise ValueError("give instance: (an existing instance) or create: {type: ...}")
        if self.instance is not None and self.create is not None:
            raise ValueError("give instance: or create:, not both")
        return self


# ------------------------------------------------------------------------------------------ slurm

_VAR = r"\$\{[A-Za-z_][A-Za-z0-9_]*\}"
TIME_RE = r"^(\d+-)?\d+(:\d{1,2}){0,2}$"  # minutes | m:s | h:m:s | d-h | d-h:m | d-h:m:s
NAME_RE = re.compile(rf"^([A-Za-z0-9_.,-]|{_VAR})+$")
SBATCH_LINE_RE = re.compile(r"^--([a-z][a-z0-9-]*)(=[^\s'\"\\]+)?$")
#: Options the platform sets itself; extra_sbatch may not override them.
MANAGED_SBATCH = frozenset(
    {
        "job-name", "comment", "output", "error", "input", "open-mode", "nodes", "ntasks",
        "ntasks-per-node", "gres", "gpus", "gpus-per-node", "gpus-per-task", "cpus-per-task",
        "time", "partition", "account", "chdir", "export", "export-file", "wrap", "parsable",
        "array", "requeue", "exclusive", "wait",
    }
)  # fmt: skip
MANAGED_SSH = frozenset({"batchmode", "controlmaster", "controlpath", "controlpersist", "remotecommand"})


class SlurmConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    login: str = "${SLURM_USER}@${SLURM_HOSTNAME}"  # user@host; ${VAR} expands from the environment
    ssh_port: int = Field(default=22, ge=1, le=65535)
    identity_file: str | None = None  # else SSH_KEY_PATH, else the agent
    ssh_options: dict[str, str] = {}  # extra -o options
    partition: str | None = None  # else SLURM_PARTITION, else the cluster's default
    account: str | None = None  # else SLURM_ACCOUNT, else none
    time: str = Field(default="04:00:00", pattern=TIME_RE)
    cpus_per_task: int = Field(default=16, ge=1, le=4096)
    container_runtime: Literal["pyxis", "docker", "none"] = "pyxis"
    container_mounts: list[str] = []
    remote_dir: str = "~/.taoplan"  # scripts, env sidecars and logs on the cluster
    extra_sbatch: list[str] = []  # extra #SBATCH lines: "--mem=0", "--constraint=a100"

    @field_validator("login")
    @classmethod
    def _login(cls, value: str) -> str:
        if not re.fullmatch(r"[^\s@'\"\\-][^\s@'\"\\]*@[^\s@'\"\\]+", value):
            raise ValueError(f"{value!r}: expected user@host")
        return value

    @field_validator("partition", "account")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not NAME_RE.fullmatch(value):
            raise ValueError(f"{value!r}: letters, digits, '_', '.', ',' and '-' only")
        return value

    @field_validator("ssh_options")
    @classmethod
    def _ssh_options(cls, value: dict[str, str]) -> dict[str, str]:
        for key, option in value.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key):
                raise ValueError(f"{key!r} is not an ssh option name")
            if key.lower() in MANAGED_SSH:
                raise ValueError(f"{key} is set by taoplan itself")
            if not option or any(c in option for c in "\r\n\0"):
                raise ValueError(f"{key}: the value must be one non-empty line")
        return value

    @field_validator("container_mounts")
    @classmethod
    def _mounts(cls, value: list[str]) -> list[str]:
        for mount in value:
            if not re.fullmatch(r"[^\s,'\"\\]+", mount):
                raise ValueError(f"{mount!r}: expected SRC:DST[:FLAGS] without spaces or commas")
        return value

    @field_validator("remote_dir")
    @classmethod
    def _remote_dir(cls, value: str) -> str:
        if not re.fullmatch(rf"(~|~/[^\s'\"\\]*|/[^\s'\"\\]*|{_VAR}[^\s'\"\\]*)", value):
            raise ValueError(f"{value!r}: give an absolute path or one under ~/")
        return value

    @field_validator("extra_sbatch")
    @classmethod
    def _extra_sbatch(cls, value: list[str]) -> list[str]:
        for line in value:
            match = SBATCH_LINE_RE.fullmatch(line.removeprefix("#SBATCH").strip())
            if not match:
                raise ValueError(f"{line!r}: expected one long option such as --mem=0 or --constraint=a100")
            if match.group(1) in MANAGED_SBATCH:
                raise ValueError(f"--{match.group(1)} is set by taoplan itself")
        return [line.removeprefix("#SBATCH").strip() for line in value]


# ------------------------------------------------------------------------------------------ kubernetes

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUALIFIED_NAME = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUANTITY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"


class Toleration(BaseModel):
    """A pod toleration, with the Kubernetes field names."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    key: str | None = Field(default=None, pattern=QUALIFIED_NAME)
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = Field(default=None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: int | None = None  # noqa: N815 - the Kubernetes spelling

    def tolerates(self, taint: Mapping[str, Any]) -> bool:
        if self.effect is not None and self.effect != taint.get("effect"):
            return False
        if self.key is None:
            return self.operator == "Exists"
        if self.key != taint.get("key"):
            return False
        return self.operator == "Exists" or (self.value or "") == (taint.get("value") or "")


class KubernetesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kubeconfig: str | None = None  # else KUBECONFIG, else ~/.kube/config, else in-cluster
    context: str | None = None
    namespace: str = Field(default="default", max_length=63, pattern=DNS_LABEL)
    image_pull_secret: str | None = Field(default=None, max_length=253, pattern=DNS_SUBDOMAIN)
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    access: Literal["port-forward", "service"] = "port-forward"
    gpu_resource: str = Field(default="nvidia.com/gpu", pattern=QUALIFIED_NAME)
    node_selector: dict[str, str] = {}
    tolerations: list[Toleration] = []
    shm_size: str = Field(default="16Gi", pattern=QUANTITY)

    @field_validator("node_selector")
    @classmethod
    def _node_selector(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            if not re.fullmatch(QUALIFIED_NAME, key):
                raise ValueError(f"{key!r} is not a valid label key")
            if len(label) > 63 or not LABEL_VALUE.fullmatch(label):
                raise ValueError(f"{key}: {label!r} is not a valid label value")
        return value


# ------------------------------------------------------------------------------------------ lepton

SECRET_NAME = r"^[A-Z_][A-Z0-9_]*$"
SHM_SIZE = re.compile(r"^([0-9]+)(Mi|Gi|Ti)?$")


class LeptonConfig(BaseModel):
    """DGX Cloud Lepton: one Deployment per service. Every credential is named here, never written."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    # else LEPTON_WORKSPACE_ID
    workspace_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    token_secret: str = Field(default="LEPTON_AUTH_TOKEN", pattern=SECRET_NAME)  # or LEPTON_WORKSPACE_TOKEN
    url: str | None = Field(default=None, pattern=r"^https?://[^\s'\"]+$")  # default: the SDK's gateway
    resource_shape: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    node_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # name or id
    image_pull_secret: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    endpoint_token_secret: str | None = Field(default=None, pattern=SECRET_NAME)  # else the generated one
    shared_memory_size: str = "16Gi"  # N (MiB), NMi, NGi or NTi; sent in MiB

    @field_validator("shared_memory_size", mode="before")
    @classmethod
    def _shm(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not SHM_SIZE.fullmatch(value):
            raise ValueError(f"{value!r}: expected a size such as 16Gi, 512Mi or a number of MiB")
        return value

    @property
    def shared_memory_mib(self) -> int:
        match = SHM_SIZE.fullmatch(self.shared_memory_size)
        assert match is not None
        return int(match.group(1)) * {None: 1, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}[match.group(2)]


#: The settings model of each implemented platform. A platform named in KNOWN but not here is
#: declared for later: a file that uses it gets a located "not implemented" error.
CATALOG: dict[str, type[BaseModel]] = {
    "local-docker": LocalDockerConfig,
    "brev": BrevConfig,
    "slurm": SlurmConfig,
    "kubernetes": KubernetesConfig,
    "lepton": LeptonConfig,
}


def is_available(name: str) -> bool:
    return name in CATALOG
