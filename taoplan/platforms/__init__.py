"""Running services: one small interface (``base``) and one package per platform behind it, plus
the mechanics they share (``common``). Platforms execute; they never decide.

This module is the registry: a platform name in services.yaml -> the package that implements it.
Packages are imported on first use, so naming a platform costs nothing until it is needed; each
imports its heavy client library (docker, kubernetes, leptonai) only inside its methods.

Imports: ``taoplan.spec``, ``taoplan.store``, ``taoplan.common``. Never ``taoplan.engine``,
``taoplan.traffic`` or ``taoplan.cli``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from taoplan.spec.platform_settings import KNOWN, is_available

if TYPE_CHECKING:
    from taoplan.platforms.base import PlatformClass

__all__ = ["IMPLEMENTED", "KNOWN", "is_available", "platform_class"]

#: The platforms this version implements, and where (the same names as spec.platform_settings.CATALOG).
IMPLEMENTED = {
    "local-docker": "taoplan.platforms.local_docker.platform",
    "brev": "taoplan.platforms.brev.platform",
    "slurm": "taoplan.platforms.slurm.platform",
    "kubernetes": "taoplan.platforms.kubernetes.platform",
    "lepton": "taoplan.platforms.lepton.platform",
}


def platform_class(name: str) -> PlatformClass:
    module = importlib.import_module(IMPLEMENTED[name])
    cls: PlatformClass = module.PLATFORM
    return cls
