"""One place that turns hvac/requests failures into this package's errors, without leaking.

hvac exceptions embed the raw response body: for a batch decrypt that body contains the plaintext
of the items that succeeded. So the original exception is never chained or quoted; messages are
rebuilt from the operation, the Vault path and the HTTP class of failure only, plus where the
request went: the Vault address (scheme, host and port of the failed request's URL, never its path
or query) and the Airflow connection the CMK reference names, and the likely fix (the policy line
of ``docs/key-custody.md``, the connection's host and port).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from airflow_provider_osscse.exceptions import (
    KeyNotFoundError,
    KeyPermissionError,
    KeyServiceError,
    KeyUnwrapError,
)
from airflow_provider_osscse.keys.retry import RetryPolicy, TransientKeyServiceError, call_key_service

T = TypeVar("T")

SERVICE = "Vault"
#: Where the policies a token needs are written down, per role.
POLICY_DOCS = "docs/key-custody.md, least privilege: policies per role"
#: Words of a network failure (matched in the lower-cased exception text, itself never shown).
_NETWORK = (
    ("connection refused", "connection refused"),
    ("name or service not known", "host not found"),
    ("failed to resolve", "host not found"),
    ("name resolution", "host not found"),
    ("timed out", "timed out"),
    ("timeout", "timed out"),
    ("certificate", "TLS certificate not accepted"),
    ("ssl", "TLS failure"),
)


def network_reason(error: BaseException) -> str:
    """What kind of network failure ``error`` is, in a few fixed words (never its text, which may
    quote the request)."""
    text = repr(error).lower()
    return next((words for needle, words in _NETWORK if needle in text), "network error")


def service_address(url: Any) -> str | None:
    """``scheme://host:port`` of a request URL (no path, no query: they may name more than the service)."""
    if not isinstance(url, str) or "://" not in url:
        return None
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # never user information
    return f"{parts.scheme}://{host}" if host else None


def connection_of(reference: str) -> str | None:
    """The Airflow connection id a ``scheme://<conn>/...`` CMK reference names, if it names one."""
    parts = urlsplit(reference)
    return (parts.netloc or None) if parts.scheme else None


def vault_call(
    fn: Callable[[], T],
    *,
    reference: str,
    path: str,
    capability: str,
    retry: RetryPolicy,
    not_found: str | None = None,
    invalid_means_unwrap_failure: bool = False,
) -> T:
    """Call Vault through ``retry``; map failures to clear errors naming ``path`` and ``capability``.

    ``capability`` is what the token needs on ``path`` (e.g. ``update``), said in a permission error
    so an operator knows which policy line is missing. Every message names the Vault address (from
    the failed request) and the connection of ``reference``.
    """
    import hvac.exceptions as hx
    import requests

    conn = connection_of(reference)
    of_conn = f" of connection '{conn}'" if conn else ""

    def attempt() -> T:
        try:
            return fn()
        except (requests.ConnectionError, requests.Timeout) as exc:
            address = service_address(getattr(getattr(exc, "request", None), "url", None))
            raise TransientKeyServiceError(
                f"cannot reach Vault{' at ' + address if address else ''} ({network_reason(exc)}): check the host "
                f"and port{of_conn}, and that Vault is up"
            ) from None
        except (hx.InternalServerError, hx.BadGateway, hx.VaultDown, hx.RateLimitExceeded) as exc:
            address = service_address(getattr(exc, "url", None))
            raise TransientKeyServiceError(
                f"Vault{' at ' + address if address else ''} answered {type(exc).__name__}"
            ) from None

    error: Exception
    try:
        return call_key_service(retry, attempt, service=SERVICE, reference=reference)
    except hx.VaultError as exc:
        address = service_address(exc.url)
        vault = f"Vault at {address}" if address else "Vault"
        where = f"{vault}, connection '{conn}'" if conn else vault
        if isinstance(exc, hx.Forbidden):
            error = KeyPermissionError(
                f"permission denied for CMK {reference}: the Vault token{of_conn} lacks the '{capability}' "
                f"capability on '{path}' ({vault}; or the token is not valid, or the key does not exist and the "
                "token may not create it); "
                f'add `path "{path}" {{ capabilities = ["{capability}"] }}` to its policy ({POLICY_DOCS})'
            )
        elif isinstance(exc, hx.Unauthorized):
            error = KeyPermissionError(
                f"{vault} rejected the token{of_conn} for CMK {reference} on '{path}' (expired or revoked?): "
                "renew the token, or fix the connection's credentials"
            )
        elif isinstance(exc, hx.InvalidPath):
            missing = not_found or f"CMK {reference}: nothing at Vault path '{path}'; check the CMK reference"
            error = KeyNotFoundError(f"{missing} ({where})")
        elif isinstance(exc, hx.InvalidRequest):
            error = _invalid_request(exc, reference, path, where, invalid_means_unwrap_failure)
        else:
            error = KeyServiceError(f"{vault} failed on '{path}' for CMK {reference} ({type(exc).__name__})")
    # Raised outside the except blocks so the hvac exception (whose text may hold plaintext of
    # other batch items) is not even kept as __context__.
    raise error


def _invalid_request(exc: Any, reference: str, path: str, where: str, unwrap_failure: bool) -> Exception:
    """A 400 answer: a missing key, a value this key cannot unwrap, or another refused request."""
    text = str(exc.errors[0] if getattr(exc, "errors", None) else "")  # Vault's own words, not echoed
    if "not found" in text and "key" in text:
        return KeyNotFoundError(
            f"CMK {reference}: the Vault key at '{path}' does not exist ({where}): check the key name in the "
            "CMK reference, and that the connection points at the Vault holding it"
        )
    if unwrap_failure:
        return KeyUnwrapError(
            f"CMK {reference} could not unwrap the data key: wrong key for this object or corrupted wrapped values"
        )
    return KeyServiceError(f"Vault rejected the request on '{path}' for CMK {reference} ({where})")
