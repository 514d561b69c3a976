"""Talking to running services: request routing, bodies, sampling and replies, the Python client,
the request log and stats with cost attribution.

Imports: ``taoplan.engine``, ``taoplan.platforms``, ``taoplan.store``, ``taoplan.spec``,
``taoplan.common``. Never ``taoplan.cli``.
"""
