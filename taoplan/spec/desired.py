"""Desired state: the services file resolved into what each service should be (pure; env passed in)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taoplan.common import hashing
from taoplan.common.perf import paused_gc
from taoplan.labels import instance_key, service_of
from taoplan.spec.config import ServicesConfig, ServiceSpec
from taoplan.spec.references import References, ResolvedImage, resolve_image, resolve_server_image


@dataclass(frozen=True)
class Desired:
    """One instance (replica) of a service as it should run."""

    name: str  # the instance key (``labels.instance_key``)
    spec: ServiceSpec
    spec_dict: dict[str, Any]
    spec_hash: str
    image: str
    image_rule: str
    platform_config: dict[str, Any]
    replica: int = 0

    @property
    def service(self) -> str:
        return service_of(self.name)

    @property
    def platform(self) -> str:
        return self.spec.platform

    def comparable(self) -> dict[str, Any]:
        """What a replace reason is computed from: the spec, the image and the platform settings."""
        return {**self.spec_dict, "image": self.image, "platform_settings": self.platform_config}


def build_desired(config: ServicesConfig, refs: References, environ: Mapping[str, str]) -> dict[str, Desired]:
    with paused_gc():
        return _build(config, refs, environ)


def _build(config: ServicesConfig, refs: References, environ: Mapping[str, str]) -> dict[str, Desired]:
    out: dict[str, Desired] = {}
    platform_dicts = {name: cfg.model_dump(mode="json") for name, cfg in config.platforms.items()}
    platform_texts = {name: hashing.canonical(d) for name, d in platform_dicts.items()}
    images: dict[tuple[str, str | None], ResolvedImage] = {}  # resolve once per (arch, image)
    for name, spec in config.services.items():
        image_key = (spec.kind, spec.image)
        if image_key not in images:
            images[image_key] = (
                resolve_server_image(spec.server.type, spec.image, refs, environ)
                if spec.server is not None
                else resolve_image(str(spec.network_arch), spec.image, refs, environ)
            )
        resolved = images[image_key]
        spec_dict = spec.model_dump(mode="json")
        platform_config = platform_dicts[spec.platform]
        spec_hash = hashing.spec_hash(spec_dict, resolved.image, platform_texts[spec.platform])
        for replica in range(spec.replicas):
            key = instance_key(name, replica)
            out[key] = Desired(
                name=key,
                spec=spec,
                spec_dict=spec_dict,
                spec_hash=spec_hash,
                image=resolved.image,
                image_rule=resolved.rule,
                platform_config=platform_config,
                replica=replica,
            )
    return out
