"""The gateway's web dashboard and chat page, served at ``/`` by ``taoplan gateway`` (same server,
port and keys). Server-rendered HTML (Jinja2), one stylesheet and a little vanilla JavaScript; the
pages hold no data: they fetch it from JSON endpoints under ``/ui/api/`` that take the gateway's
keys (``auth: keys``) and show a key only the services it may use.

- ``routes``: the paths, the key check and the one error shape (the gateway's ``GatewayError``).
- ``live``: the services table: the platforms' observation (``Workspace.refresh``, off the event
  loop, at most every ``Observer.MIN_AGE`` s and only while a page asks) joined with the gateway
  watcher's readiness, judged by ``engine.status`` as ``taoplan status`` judges it.
- ``activity``: one service's last hour from the request store (its own read connection), the
  cost view through ``traffic.usage.report`` (the numbers of ``taoplan stats``), and the chat form
  from references/request.yaml. ``chart``: the SVG chart. ``pages``: templates and static files.

Nothing here runs on the chat path: the app consults this package only for paths it does not serve.
"""

from __future__ import annotations
