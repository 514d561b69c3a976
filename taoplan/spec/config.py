"""The services file: pydantic models, and a loader whose every error names FILE:LINE:COL and the field."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, ValidationError, field_validator

from taoplan.common.perf import paused_gc
from taoplan.errors import ConfigError
from taoplan.spec import imageref, platform_settings, servers, yamlsrc
from taoplan.spec.blocks import Pricing, Readiness, Smoke, Strict  # noqa: F401 - Smoke re-exported
from taoplan.spec.gateway_settings import GatewaySettings
from taoplan.spec.references import References
from taoplan.spec.servers import ServerBlock

SERVICE_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
SERVICE_NAME_MAX = 40
PROJECT_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SECRET_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]*")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]+")
PLATFORM_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ServiceSpec(Strict):
    """One service as declared (defaults already merged in): a TAO arch or a generic ``server``."""

    network_arch: str | None = None
    model_path: str | None = None
    server: ServerBlock | None = None
    num_nodes: Annotated[StrictInt, Field(ge=1, le=256)] = 1
    model_key: str | None = None
    output_dir: str | None = None
    num_gpus: Annotated[StrictInt, Field(ge=1, le=1024)] = 1
    platform: str = "local-docker"
    image: str | None = None
    host_port: Annotated[StrictInt, Field(ge=1, le=65535)] | None = None
    env: dict[str, str] = Field(default_factory=dict)  # factories: no deepcopy of a default per service
    secrets: list[str] = Field(default_factory=list)
    readiness: Readiness = Field(default_factory=Readiness)
    protect: StrictBool = False
    #: identical workloads behind the gateway; changing it alone scales in place
    replicas: Annotated[StrictInt, Field(ge=1, le=64)] = 1
    #: how a replace runs: rolling (new first, then drain the old) or recreate (old first);
    #: unset: rolling when the GPUs can be held twice (engine/rollout.py)
    rollout: Literal["rolling", "recreate"] | None = None
    #: how long a replaced or removed workload may finish its in-flight requests (seconds)
    drain_timeout: Annotated[float, Field(ge=0, le=24 * 3600)] = 60

    @field_validator("network_arch")
    @classmethod
    def _arch(cls, value: str | None, info: Any) -> str | None:
        refs: References = info.context["refs"]
        if value is not None and value not in refs.service.valid_archs:
            raise ValueError(f"unknown arch {value!r}; valid: {', '.join(refs.service.valid_archs)}")
        return value

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str) -> str:
        if value not in platform_settings.KNOWN:
            raise ValueError(f"unknown platform {value!r}; valid: {', '.join(platform_settings.KNOWN)}")
        if not platform_settings.is_available(value):
            available = ", ".join(platform_settings.CATALOG)
            raise ValueError(
                f"platform {value!r} is not implemented in this version (available: {available})"
            )
        return value

    @field_validator("model_path")
    @classmethod
    def _model_path(cls, value: str | None, info: Any) -> str | None:
        if value is None:
            return value
        refs: References = info.context["refs"]
        rules = refs.service.model_path
        lowered = value.lower()
        if lowered.startswith(rules.rejected_prefixes):
            prefix = next(p for p in rules.rejected_prefixes if lowered.startswith(p))
            hint = " (use hf_model://org/model)" if prefix == "hf://" else ""
            raise ValueError(
                f"{prefix} model paths are not supported{hint}; use hf_model://org/model or an absolute path"
            )
        for placeholder in rules.placeholders:
            if placeholder in value:
                raise ValueError(
                    f"{value!r} looks like a placeholder; give a real hf_model://org/model or absolute path"
                )
        if value.startswith("hf_model://"):
            repo = value[len("hf_model://") :]
            if not re.fullmatch(r"[^/\s]+/[^/\s]+", repo):
                raise ValueError(f"{value!r}: expected hf_model://org/model")
            return value
        if "://" in value:
            raise ValueError(f"{value!r}: unsupported scheme; use hf_model://org/model or an absolute path")
        if not value.startswith("/"):
            raise ValueError(
                f"{value!r} is relative; give an absolute path inside the container or hf_model://org/model"
            )
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        why = imageref.check(value) if value is not None else None
        if why is not None:
            raise ValueError(f"{value!r} is not a valid image reference: {why}")
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _env_scalars(cls, value: Any) -> Any:
        """Numbers and booleans are fine as env values (as in Compose); nested data is not."""
        if isinstance(value, dict):
            return {k: _env_text(v) if isinstance(v, (bool, int, float)) else v for k, v in value.items()}
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str], info: Any) -> dict[str, str]:
        refs: References = info.context["refs"]
        rules = refs.service.env
        for name in value:
            if not isinstance(name, str) or not ENV_NAME_RE.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
            if name in refs.service.secret_names:
                raise ValueError(
                    f"{name} is a secret: list its name under secrets: and set it in the environment"
                )
            if name in rules.forbidden or name.startswith(rules.forbidden_prefixes):
                raise ValueError(f"{name} is forbidden for TAO inference services")
            if name in rules.reserved:
                raise ValueError(f"{name} is set by taoplan itself")
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str], info: Any) -> list[str]:
        refs: References = info.context["refs"]
        seen: set[str] = set()
        for name in value:
            if not SECRET_NAME_RE.fullmatch(name):
                raise ValueError(
                    "secrets: holds environment variable NAMES only (like HF_TOKEN), never values"
                    if len(name) > 12 or not name.isupper()
                    else f"{name!r} is not a valid secret name ([A-Z_][A-Z0-9_]*)"
                )
            if name in seen:
                raise ValueError(f"secret {name} is listed twice")
            if name in refs.service.env.forbidden:
                raise ValueError(f"{name} is forbidden for TAO inference services")
            seen.add(name)
        return value

    @property
    def kind(self) -> str:
        """The network_arch of a TAO service, or the type of a server."""
        return self.server.type if self.server is not None else str(self.network_arch)

    @property
    def is_tao(self) -> bool:
        return self.server is None

    def check_arch_fields(self, refs: References) -> list[tuple[str, str]]:
        """Cross-field rules, as (field, message)."""
        if self.server is not None and self.network_arch is not None:
            return [("server", "a service has either network_arch (TAO) or server, not both")]
        if self.server is None and self.network_arch is None:
            return [("network_arch", "required (or a server: block)")]
        if self.server is not None:
            return servers.check(self, refs) + self._common_checks()
        if self.model_path is None:
            return [("model_path", "required")]
        if self.num_nodes > 1:
            return [
                ("num_nodes", f"{self.network_arch} runs on one node; num_nodes > 1 is for vllm and sglang")
            ]
        arch = refs.service.archs[str(self.network_arch)]
        problems = []
        if arch.command_style != "predict_flags":
            for name in ("model_key", "output_dir"):
                if getattr(self, name) is not None:
                    problems.append(
                        (name, f"{name} applies only to cosmos-predict2.5, not {self.network_arch}")
                    )
        elif self.model_path.startswith("hf_model://") and not self.model_key:
            keys = ", ".join(arch.model_keys)
            problems.append(
                ("model_key", f"cosmos-predict2.5 with hf_model:// needs model_key (one of {keys})")
            )
        if self.output_dir is not None and not self.output_dir.startswith("/"):
            problems.append(("output_dir", f"{self.output_dir!r} is relative; give an absolute path"))
        return problems + self._common_checks()

    def _common_checks(self) -> list[tuple[str, str]]:
        overlap = set(self.secrets) & set(self.env)
        if overlap:
            return [("secrets", f"{', '.join(sorted(overlap))} is both in env and in secrets")]
        if self.replicas > 1 and self.host_port is not None:
            return [
                (
                    "replicas",
                    f"{self.replicas} replicas cannot share host_port {self.host_port}; remove host_port",
                )
            ]
        if self.rollout == "rolling" and self.host_port is not None:
            return [
                (
                    "rollout",
                    f"rolling needs a second port while both run; host_port {self.host_port} is fixed",
                )
            ]
        return []


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class FileModel(Strict):
    version: Literal[1]
    project: str | None = None
    defaults: dict[str, Any] = {}
    platforms: dict[str, dict[str, Any] | None] = {}
    services: dict[str, dict[str, Any] | None]
    pricing: dict[str, Pricing] = {}
    gateway: dict[str, Any] | None = None
    secrets_file: Annotated[str, Field(min_length=1, pattern=r"^[^\n\r\x00]+$")] | None = None


@dataclass(frozen=True)
class ServicesConfig:
    path: Path
    project: str
    services: dict[str, ServiceSpec]
    platforms: dict[str, BaseModel]
    pricing: dict[str, Pricing]
    source: yamlsrc.Source
    gateway: GatewaySettings = GatewaySettings()
    #: the file has a ``gateway:`` section: its services are served behind the gateway
    gateway_declared: bool = False
    #: a credentials file apply takes secrets from (after the environment), as written: ~ allowed
    secrets_file: str | None = None

    def platform_config(self, name: str) -> BaseModel:
        return self.platforms[name]


# ------------------------------------------------------------------------------------------------ loading


class _Errors:
    """Collects one line per problem, each located in the file."""

    def __init__(self, source: yamlsrc.Source) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, loc: Sequence[str | int], message: str, *, at: Sequence[str | int] | None = None) -> None:
        field = ".".join(p if isinstance(p, str) and _PLAIN_KEY.fullmatch(p) else repr(p) for p in loc)
        self.lines.append(f"{self.source.where(at if at is not None else loc)}: {field}: {message}")

    def raise_if_any(self) -> None:
        if self.lines:
            raise ConfigError(self.lines[0], lines=self.lines)


def _message(err: Any, allowed: Iterable[str] = ()) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        close = difflib.get_close_matches(key, list(allowed), n=1)
        return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing":
        return "required"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind not in ("value_error",) and "input" in err and not isinstance(err["input"], (dict, list)):
        msg = f"{msg} (got {err['input']!r})"
    return msg


def _default_project(path: Path) -> str:
    name = re.sub(r"[^a-z0-9_.-]+", "-", path.resolve().parent.name.lower()).strip("-._")
    return name[:63] or "default"


def load_services(path: Path, refs: References) -> ServicesConfig:
    """Load and validate a services file. Raises ConfigError listing every problem, located."""
    with paused_gc():
        return _load_services(path, refs)


def _load_services(path: Path, refs: References) -> ServicesConfig:
    source = yamlsrc.load(path)
    errors = _Errors(source)
    data = source.data
    if data is None:
        raise ConfigError(f"{path}:1:1: the file is empty; expected 'version: 1' and 'services:'")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source.where([])}: expected a mapping with 'version' and 'services', got {type(data).__name__}"
        )
    _scan_for_secret_values(source, refs, errors)
    errors.raise_if_any()

    try:
        top = FileModel.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = err["loc"]
            errors.add(loc, _message(err, FileModel.model_fields))
        errors.raise_if_any()
        raise  # pragma: no cover

    project = top.project if top.project is not None else _default_project(path)
    if not PROJECT_RE.fullmatch(project):
        errors.add(
            ("project",), f"{project!r} must be lowercase letters, digits, '-', '_' or '.' (at most 63)"
        )

    defaults = top.defaults
    fields = ServiceSpec.model_fields
    for key in defaults:
        if key not in fields:
            errors.add(
                ("defaults", key),
                _message({"type": "extra_forbidden", "loc": (key,), "msg": ""}, fields),
            )
    known_defaults = {k: v for k, v in defaults.items() if k in fields}
    default_env = defaults.get("env")

    if not top.services:
        errors.add(("services",), "no services declared")
    services: dict[str, ServiceSpec] = {}
    for name, raw in top.services.items():
        base = ("services", name)
        if not isinstance(name, str) or not SERVICE_NAME_RE.fullmatch(name) or len(name) > SERVICE_NAME_MAX:
            errors.add(
                base,
                f"service name {name!r} must be a DNS-1123 label: lowercase letters, digits and '-', "
                f"starting and ending alphanumeric, at most {SERVICE_NAME_MAX} characters",
            )
            continue
        if raw is None:
            errors.add(base, "empty service: it needs network_arch and model_path, or a server: block")
            continue
        merged = {**known_defaults, **raw}
        if isinstance(default_env, dict) and isinstance(raw.get("env"), dict):
            merged["env"] = {**default_env, **raw["env"]}
        try:
            spec = ServiceSpec.model_validate(merged, context={"refs": refs})
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(err["loc"])
                at = _origin(raw, defaults, base, loc)
                errors.add(base + loc, _message(err, fields), at=at)
            continue
        problems = spec.check_arch_fields(refs)
        for field_name, message in problems:
            loc = tuple(field_name.split("."))
            errors.add(base + loc, message, at=_origin(raw, defaults, base, loc))
        if spec.server is not None and not problems:
            block = spec.server.model_copy(
                update={"served_name": servers.served_name(spec.server, name, refs)}
            )
            spec = spec.model_copy(update={"server": block})
        services[name] = spec

    _check_ports(services, top.services, errors)
    platform_configs = _load_platform_configs(top, services, errors)
    gateway = _load_gateway(top, errors)
    errors.raise_if_any()
    return ServicesConfig(
        path=path,
        project=project,
        services=services,
        platforms=platform_configs,
        pricing=top.pricing,
        source=source,
        gateway=gateway,
        gateway_declared=top.gateway is not None,
        secrets_file=top.secrets_file,
    )


def _origin(
    raw: dict[str, Any], defaults: dict[str, Any], base: tuple[str, str], loc: tuple[Any, ...]
) -> tuple[Any, ...]:
    """Where a merged value came from: the service itself, or defaults:."""
    if not loc or loc[0] in raw:
        return base + loc
    if loc[0] in defaults:
        return ("defaults",) + loc
    return base


def _check_ports(services: dict[str, ServiceSpec], raw: dict[str, Any], errors: _Errors) -> None:
    seen: dict[tuple[str, int], str] = {}
    for name, spec in services.items():
        if spec.host_port is None:
            continue
        key = (spec.platform, spec.host_port)
        if key in seen:
            errors.add(
                ("services", name, "host_port"),
                f"port {spec.host_port} is also used by service {seen[key]!r}",
            )
        seen[key] = name


def _load_platform_configs(
    top: FileModel, services: dict[str, ServiceSpec], errors: _Errors
) -> dict[str, BaseModel]:
    configs: dict[str, BaseModel] = {}
    for name, raw in top.platforms.items():
        if name not in platform_settings.KNOWN:
            errors.add(
                ("platforms", name), f"unknown platform {name!r}; valid: {', '.join(platform_settings.KNOWN)}"
            )
            continue
        if not platform_settings.is_available(name):
            continue  # declared for later; reported only if a service uses it
        model = platform_settings.CATALOG[name]
        try:
            configs[name] = model.model_validate(raw or {})
        except ValidationError as exc:
            for err in exc.errors():
                errors.add(("platforms", name, *err["loc"]), _message(err, model.model_fields))
    for name, spec in services.items():
        if spec.platform not in configs and platform_settings.is_available(spec.platform):
            try:
                configs[spec.platform] = platform_settings.CATALOG[spec.platform]()
            except ValidationError as exc:  # a platform without usable defaults (brev needs an instance)
                if spec.platform not in top.platforms:
                    message = _message(exc.errors()[0])
                    errors.add(("services", name, "platform"), f"{message} under platforms.{spec.platform}")
    return configs


def _load_gateway(top: FileModel, errors: _Errors) -> GatewaySettings:
    try:
        return GatewaySettings.model_validate(top.gateway or {})
    except ValidationError as exc:
        for err in exc.errors():
            loc = err["loc"] or ("listen",)  # the one cross-field rule: listen with auth: none
            errors.add(("gateway", *loc), _message(err, GatewaySettings.model_fields))
        return GatewaySettings()


def _scan_for_secret_values(source: yamlsrc.Source, refs: References, errors: _Errors) -> None:
    """A credential written inline anywhere in the file is an error (one regex pass over the text)."""
    combined = re.compile("|".join(f"(?:{p})" for p in refs.service.secret_value_patterns))
    for match in combined.finditer(source.text):
        before = source.text[: match.start()]
        line = before.count("\n") + 1
        col = match.start() - (before.rfind("\n") + 1) + 1
        errors.lines.append(
            f"{source.display}:{line}:{col}: inline secret value ({match.group()[:4]}…): "
            "list the variable's NAME under secrets: and set its value in the environment"
        )


def expand_env(text: str, environ: dict[str, str], where: str) -> str:
    """${VAR} expansion for platform settings such as slurm's login; a missing VAR is an error."""

    def sub(match: re.Match[str]) -> str:
        var = match.group(1)
        if var not in environ:
            raise ConfigError(f"{where}: ${{{var}}} is not set in the environment")
        return environ[var]

    return PLATFORM_ENV_RE.sub(sub, text)
