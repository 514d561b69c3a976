"""`taoplan gateway`: one OpenAI-compatible HTTP endpoint in front of every service of a project.

A raw ASGI app (``app``) on uvicorn with uvloop and httptools, and one pooled aiohttp client to the
upstreams (``upstream``); the stack was chosen by measuring (bench/gateway_stacks.py, bench/gateway.py).
The pieces, each small:

- ``table``: which workloads exist (state.json, followed while running; a service's replicas and a
  rollout's retiring workloads, by job id), where each one answers and what it has in flight;
  ``model`` -> the least busy routable workload of that service, with the same "never a silent
  latest" rule as ``taoplan request`` for an arch.
- ``watcher``: every service's readiness endpoint, polled on the readiness contract.
- ``checks``: the incoming body, checked with the arch's rules from references/request.yaml
  (the same functions ``taoplan request`` uses) before anything is sent.
- ``auth``: callers: keys (401/403/429) or the OS user on loopback.
- ``streaming``: SSE out of a whole answer, or a streaming upstream passed through chunk by chunk.
- ``reports``: what this gateway routes and has in flight, in the state directory, for rollouts.
- ``metrics``: Prometheus text; ``openapi``: the served OpenAPI document; ``errors``: the one error shape.
- ``server``: uvicorn, signals, the drain, the request log's flush on the way out.
"""

from __future__ import annotations
