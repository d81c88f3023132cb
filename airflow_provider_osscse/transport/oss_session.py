"""The HTTP session under every oss2 client: the process environment is read once per endpoint,
not once per request.

``requests`` consults the environment on every request of a session that trusts it: the proxy
variables (``getproxies_environment`` walks all of ``os.environ`` twice, since the decision to
bypass a proxy reads it again), ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, and ``~/.netrc``. In an
Airflow worker, whose environment holds dozens of variables, that is about a millisecond per
request, as much as OSS's own answer to a small GET on a LAN, and it is paid for every small object.

This session gives the same answers from the same variables, read once:

- proxies (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) are resolved on the first request to
  each ``scheme://host[:port]`` and remembered for the session's life, so a bucket host that
  ``NO_PROXY`` excludes is still reached directly;
- the CA bundle is the one named when the session was made (for ``https`` endpoints: a plain
  ``http`` endpoint, such as a local test server, has no certificate to verify);
- ``~/.netrc`` is never read: every OSS request carries its own signed ``Authorization`` header,
  and a netrc entry for the endpoint would replace it with Basic credentials.

A process that changes its proxy variables afterwards must build a new client (a new hook), as
with any long-lived HTTP client. The session keeps oss2's connection pools (one per scheme).
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlsplit

import oss2
import requests
from requests.utils import get_environ_proxies


class EnvironmentOnceSession(requests.Session):
    """A ``requests.Session`` that applies the environment's proxies and CA bundle as ``requests``
    would, from a per-origin memo instead of a per-request read (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # no per-request environment or netrc reads: merged below instead
        self._ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self._proxies_by_origin: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def merge_environment_settings(
        self,
        url: Any,
        proxies: dict[str, str] | None,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> dict[str, Any]:
        proxies = {} if proxies is None else proxies
        for scheme, proxy in self._environment_proxies(str(url), proxies.get("no_proxy")).items():
            proxies.setdefault(scheme, proxy)
        if (verify is True or verify is None) and str(url).startswith("https:"):
            verify = self._ca_bundle or verify  # (a path costs requests a stat per request: https only)
        merged: dict[str, Any] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        return merged

    def _environment_proxies(self, url: str, no_proxy: str | None) -> dict[str, str]:
        """What ``requests`` would take from the environment for ``url``, remembered per origin."""
        if no_proxy is not None:  # an explicit per-request bypass list: not the environment's answer
            return dict(get_environ_proxies(url, no_proxy=no_proxy))
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        found = self._proxies_by_origin.get(origin)
        if found is None:
            found = dict(get_environ_proxies(url))
            with self._lock:
                self._proxies_by_origin[origin] = found
        return found


def oss_session(pool_size: int) -> oss2.Session:
    """An ``oss2.Session`` (its connection pools sized for ``pool_size`` threads) over an
    :class:`EnvironmentOnceSession`."""
    session = oss2.Session(pool_size=pool_size)
    environment_once = EnvironmentOnceSession()
    for prefix, adapter in session.session.adapters.items():  # oss2's pools, as it mounted them
        environment_once.mount(prefix, adapter)
    session.session = environment_once
    return session
