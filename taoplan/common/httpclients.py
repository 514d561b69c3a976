"""httpx clients that share one TLS context.

Every new httpx client builds an SSL context and loads the CA bundle into it: 30 ms of CPU, even
for plain http://. Readiness waits and status checks make one client per service, so ten services
starting at once paid a third of a CPU-second for it, taken from the servers that were loading.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

    import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()


def client(**options: Any) -> httpx.Client:
    import httpx

    return httpx.Client(verify=tls_context(), trust_env=False, **options)


def async_client(**options: Any) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(verify=tls_context(), trust_env=False, **options)
