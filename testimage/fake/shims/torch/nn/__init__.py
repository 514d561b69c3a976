"""Stand-in for ``torch.nn`` (taoplan test image only)."""

from . import functional  # noqa: F401
