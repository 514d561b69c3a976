"""Mechanics several platforms share: SSH connections, tunnels and port-forward processes, host
port allocation, the artifact templates, and the one readiness check of a service's endpoint.

Imports: ``taoplan.platforms.base``, ``taoplan.spec``, ``taoplan.store``, ``taoplan.common``.
"""
