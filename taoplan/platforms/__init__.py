"""The platform registry: a name in services.yaml -> the module that implements it.

Modules are imported on first use, so naming a platform costs nothing until it is needed;
each module imports its heavy client library (docker, kubernetes) only inside its methods.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from taoplan.platforms.base import PlatformClass

#: Every platform a services file may name.
KNOWN = ("local-docker", "brev", "lepton", "slurm", "kubernetes")

#: The ones this version implements, and where.
IMPLEMENTED = {
    "local-docker": "taoplan.platforms.local_docker",
    "slurm": "taoplan.platforms.slurm",
    "kubernetes": "taoplan.platforms.kubernetes",
}


def is_available(name: str) -> bool:
    return name in IMPLEMENTED


def platform_class(name: str) -> PlatformClass:
    module = importlib.import_module(IMPLEMENTED[name])
    cls: PlatformClass = module.PLATFORM
    return cls
