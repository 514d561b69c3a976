"""taoplan: declarative plan/apply for NVIDIA TAO inference microservices."""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``from taoplan import client`` keeps working: the client lives in ``taoplan.traffic.client``
    and is imported only when asked for, so ``taoplan --help`` does not pay for it."""
    if name == "client":
        import importlib

        return importlib.import_module("taoplan.traffic.client")
    raise AttributeError(f"module 'taoplan' has no attribute {name!r}")
