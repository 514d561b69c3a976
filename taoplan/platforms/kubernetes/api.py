"""One platform instance's connection to the API server: the client made once, requests and their errors.

Why a module of its own: every other module talks to the cluster through `Session` (``call``, ``ok``,
``items``), so the client library is loaded in one place and only when a request is made (`taoplan
--help` and the pure parts never import it), and timeouts and error wording are the same everywhere.
The session also carries what the requests are about: the settings (namespace, kubeconfig) and the
platform context (project, references, state folder).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from taoplan.errors import PlatformError
from taoplan.platforms.base import PlatformContext
from taoplan.spec.platform_settings import KubernetesConfig

from .names import selector_text

API_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds for one API call
#: Accept headers that ask for metadata only (names, labels, UIDs), not whole objects.
METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


def api_message(status: int, data: Any) -> str:
    if isinstance(data, dict) and data.get("message"):
        return f"{data['message']} (HTTP {status})"
    return f"HTTP {status}"


def short(exc: BaseException) -> str:
    """The first line of an exception's text (client errors carry whole responses)."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def new_api_client(kubeconfig: str | None, context: str | None) -> Any:
    """A ``kubernetes.client.ApiClient``: from the kubeconfig named, else KUBECONFIG, else ~/.kube/config,
    else the in-cluster service account."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    default = os.path.expanduser("~/.kube/config")
    try:
        # the client reads KUBECONFIG once, when it is imported: name the file(s) explicitly
        chosen = kubeconfig or os.environ.get("KUBECONFIG") or (default if os.path.exists(default) else None)
        if chosen or context:
            return config.new_client_from_config(
                config_file=chosen or default, context=context, persist_config=False
            )
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    except (ConfigException, OSError, ValueError) as exc:
        where = kubeconfig or os.environ.get("KUBECONFIG") or default
        raise PlatformError(f"kubernetes: cannot load a client configuration from {where}: {exc}") from None


class Session:
    """The settings, the context and a lazily made API client, shared by every request of one platform."""

    def __init__(self, config: KubernetesConfig, ctx: PlatformContext) -> None:
        self.config = config
        self.ctx = ctx
        self._api: Any = None
        self._lock = threading.Lock()

    @property
    def namespace(self) -> str:
        return self.config.namespace

    @property
    def kubeconfig(self) -> str | None:
        return os.path.expanduser(self.config.kubeconfig) if self.config.kubeconfig else None

    def where(self) -> str:
        where = self.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        return where + (f" (context {self.config.context})" if self.config.context else "")

    @property
    def api(self) -> Any:
        with self._lock:
            if self._api is None:
                self._api = new_api_client(self.kubeconfig, self.config.context)
            return self._api

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: Any = API_TIMEOUT,
        stream: bool = False,
    ) -> tuple[int, Any]:
        """One API request: (HTTP status, decoded JSON or the raw response when ``stream``)."""
        import urllib3

        api = self.api
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            m, url, hdrs, data, post = api.param_serialize(
                method=method,
                resource_path=path,
                query_params=list(query),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = api.call_api(m, url, hdrs, data, post, _request_timeout=timeout)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise PlatformError(
                f"kubernetes: cannot reach the API server ({self.where()}): {short(exc)}"
            ) from None
        if stream and 200 <= response.status < 300:
            return response.status, response.response
        raw = response.read()
        try:
            return response.status, json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            return response.status, {"message": raw.decode("utf-8", "replace")[:500]}

    def ok(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """``call``, with any status but 2xx raised as ``kubernetes: <what>: <message>``."""
        status, data = self.call(method, path, **kwargs)
        if not 200 <= status < 300:
            raise PlatformError(f"kubernetes: {what}: {api_message(status, data)}")
        return data

    def items(
        self, path: str, selector: Mapping[str, str] | None = None, metadata_only: bool = False
    ) -> list[Any]:
        """The items of a collection, by label ``selector``; names, labels and UIDs only if ``metadata_only``."""
        query = [("labelSelector", selector_text(selector))] if selector else []
        accept = METADATA_LIST if metadata_only else "application/json"
        data = self.ok("GET", path, f"list {path}", query=query, accept=accept)
        return list((data or {}).get("items") or [])

    def paths(self, ns: str | None = None) -> dict[str, str]:
        """The collection path of each kind taoplan uses, in namespace ``ns`` (default: the platform's)."""
        ns = ns or self.namespace
        return {
            "Deployment": f"/apis/apps/v1/namespaces/{ns}/deployments",
            "Service": f"/api/v1/namespaces/{ns}/services",
            "Secret": f"/api/v1/namespaces/{ns}/secrets",
            "Pod": f"/api/v1/namespaces/{ns}/pods",
            "ReplicaSet": f"/apis/apps/v1/namespaces/{ns}/replicasets",
        }

    def object_path(self, obj: Mapping[str, Any]) -> str:
        meta = obj["metadata"]
        return f"{self.paths(meta.get('namespace') or self.namespace)[obj['kind']]}/{meta['name']}"
