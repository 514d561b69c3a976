"""taoplan: declarative plan/apply for NVIDIA TAO inference microservices."""

from __future__ import annotations

__version__ = "0.1.0"
