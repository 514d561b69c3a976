"""Reaching the Lepton workspace through the real leptonai SDK: settings resolved, one client, errors
as one line.

Why a module of its own: every call to the workspace goes through ``Session.call``, so a refused token,
an unknown deployment or an unreachable gateway reads the same everywhere, and no SDK message (which
can hold part of the token) reaches the user. The SDK is imported here, inside functions only: it
takes seconds to import (it pulls fastapi and ray's client), and `taoplan --help` must stay fast.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from taoplan.errors import ConfigError, PlatformError
from taoplan.platforms.base import PlatformContext
from taoplan.spec.platform_settings import LeptonConfig

T = TypeVar("T")
WORKSPACE_ENV = "LEPTON_WORKSPACE_ID"
DEFAULT_TOKEN = "LEPTON_AUTH_TOKEN"
OTHER_TOKEN = "LEPTON_WORKSPACE_TOKEN"
URL_ENV = "LEPTON_WORKSPACE_URL"
#: Seconds for one API call (the SDK's own default is 120 s).
CALL_TIMEOUT = 30.0


class Session:
    """The settings of one services file and the SDK client built from them (once per process)."""

    def __init__(self, config: LeptonConfig, ctx: PlatformContext) -> None:
        self.config, self.ctx = config, ctx
        self._client: Any = None
        self._lock = threading.Lock()
        self._node_group: tuple[str, str] | None = None
        self._shape: Any = None

    # ----------------------------------------------------------------------------- settings

    def where(self, field: str) -> str:
        return self.ctx.where(("platforms", "lepton", field))

    @property
    def workspace_id(self) -> str:
        ws = self.config.workspace_id or os.environ.get(WORKSPACE_ENV, "")
        if not ws:
            raise ConfigError(
                f"{self.where('workspace_id')}: no Lepton workspace: set it here or export {WORKSPACE_ENV}"
            )
        return ws

    @property
    def token_name(self) -> str:
        name = self.config.token_secret
        if name == DEFAULT_TOKEN and not os.environ.get(name) and os.environ.get(OTHER_TOKEN):
            return OTHER_TOKEN
        return name

    def token(self) -> str:
        value = os.environ.get(self.token_name)
        if not value:
            raise ConfigError(
                f"{self.where('token_secret')}: {self.token_name} is not set in the environment "
                "(the Lepton workspace token; taoplan never stores it)"
            )
        return value

    @property
    def url(self) -> str | None:
        return self.config.url or os.environ.get(URL_ENV) or None

    def shown_url(self) -> str:
        return self.url or f"the Lepton gateway (workspace {self.workspace_id})"

    # ----------------------------------------------------------------------------- the client

    def client(self) -> Any:
        """The SDK client, after one GET /workspace that checks the token and the route family."""
        with self._lock:
            if self._client is None:
                from leptonai.api.v2 import APIClient

                ws, token = self.workspace_id, self.token()
                client = APIClient(ws, token, url=self.url)
                client._timeout = CALL_TIMEOUT
                info = self.call("GET /workspace", client.info, timeout=CALL_TIMEOUT)
                features = getattr(info, "features", None)
                if features is not None and features.enable_new_deployment_api is True:
                    raise PlatformError(
                        f"lepton: workspace {ws} serves deployments through the new /endpoints API "
                        "(features.enable_new_deployment_api); taoplan supports the /deployments API only"
                    )
                self._client = client
            return self._client

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``; any failure of the SDK or the network becomes one PlatformError line."""
        try:
            return fn(*args, **kwargs)
        except (ConfigError, PlatformError):
            raise
        except Exception as exc:  # noqa: BLE001 - the SDK raises RuntimeError subclasses and requests' errors
            raise PlatformError(self.message(what, exc)) from None

    def message(self, what: str, exc: BaseException) -> str:
        from leptonai.api.v2 import ClientError, ServerError
        from leptonai.api.v2.client import WorkspaceNotFoundError, WorkspaceUnauthorizedError

        ws = self.config.workspace_id or os.environ.get(WORKSPACE_ENV, "?")
        refused = (
            f"lepton: workspace {ws} refused the token in {self.token_name} (401 Unauthorized): "
            f"check {self.token_name} and the workspace id"
        )
        if isinstance(exc, WorkspaceUnauthorizedError):
            return refused
        if isinstance(exc, WorkspaceNotFoundError):
            return f"lepton: workspace {ws} not found at {self.shown_url()} (404)"
        if isinstance(exc, (ClientError, ServerError)):
            status, body = exc.response.status_code, _json(exc.response)
            if status == 401:
                return refused
            code = body.get("code") if isinstance(body, dict) else None
            text = body.get("message") if isinstance(body, dict) else None
            detail = f"{code}: {text}" if code and text else str(text or code or exc.response.reason or "")
            return self.scrub(f"lepton: {what}: HTTP {status} {detail}".rstrip())
        import requests

        if isinstance(exc, requests.exceptions.RequestException):
            return f"lepton: {what}: cannot reach {self.shown_url()}: {type(exc).__name__}"
        return self.scrub(f"lepton: {what}: {type(exc).__name__}: {exc}")

    def scrub(self, text: str) -> str:
        """The workspace token never appears in a message, whatever the SDK put there."""
        token = os.environ.get(self.token_name)
        return text.replace(token, "[REDACTED]") if token else text

    # ----------------------------------------------------------------------------- the node group

    def node_group(self) -> tuple[str, str]:
        """(id, name) of the configured dedicated node group, looked up by name or id."""
        if self._node_group is None:
            wanted = self.config.node_group
            if not wanted:
                raise ConfigError(
                    f"{self.where('node_group')}: required: the dedicated node group (name or id) "
                    "the deployments run on"
                )
            groups = self.call("GET /dedicated-node-groups", self.client().nodegroup.list_all)
            for group in groups:
                if wanted in (group.metadata.id_, group.metadata.name):
                    self._node_group = (
                        str(group.metadata.id_),
                        str(group.metadata.name or group.metadata.id_),
                    )
                    break
            else:
                have = ", ".join(sorted(str(g.metadata.name or g.metadata.id_) for g in groups)) or "none"
                raise ConfigError(
                    f"{self.where('node_group')}: node group {wanted!r} not found in workspace "
                    f"{self.workspace_id} (it has: {have})"
                )
        return self._node_group

    def shape(self) -> Any:
        """The configured resource shape, as the node group lists it for deployments."""
        if self._shape is None:
            wanted = self.config.resource_shape
            if not wanted:
                raise ConfigError(
                    f"{self.where('resource_shape')}: required: the resource shape (gpu.1xh200...)"
                )
            ng_id, ng_name = self.node_group()
            shapes = self.call(
                "GET /shapes", self.client().shapes.list_shapes, node_group=ng_id, purpose="deployment"
            )
            for shape in shapes:
                if wanted in (shape.metadata.name, shape.metadata.id_, getattr(shape.spec, "name", None)):
                    self._shape = shape
                    break
            else:
                have = ", ".join(sorted(str(s.metadata.name) for s in shapes)) or "none"
                raise ConfigError(
                    f"{self.where('resource_shape')}: shape {wanted!r} is not offered for deployments "
                    f"on node group {ng_name} (offered: {have})"
                )
        return self._shape


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
