"""A local stand-in for the DGX Cloud Lepton control plane (legacy /deployments API), for tests only."""

from tests.lepton_double.server import Double, start_double

__all__ = ["Double", "start_double"]
