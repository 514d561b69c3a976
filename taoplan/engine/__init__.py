"""Deciding and converging: the workspace (desired + recorded + observed), the pure planner,
saved plans, the apply engine with its journal steps, rolling or recreate and the drain that
retires a replaced workload without failing a request, the readiness wait, rendering and dry runs,
status and doctor.

Imports: ``taoplan.platforms``, ``taoplan.store``, ``taoplan.spec``, ``taoplan.common``.
Never ``taoplan.traffic`` or ``taoplan.cli``.
"""
