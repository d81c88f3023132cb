"""One place that turns hvac/requests failures into this package's errors, without leaking.

hvac exceptions embed the raw response body: for a batch decrypt that body contains the plaintext
of the items that succeeded. So the original exception is never chained or quoted; messages are
rebuilt from the operation, the Vault path and the HTTP class of failure only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from airflow_provider_osscse.exceptions import (
    KeyNotFoundError,
    KeyPermissionError,
    KeyServiceError,
    KeyUnwrapError,
)
from airflow_provider_osscse.keys.retry import RetryPolicy, TransientKeyServiceError, call_key_service

T = TypeVar("T")

SERVICE = "Vault"


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
    so an operator knows which policy line is missing.
    """
    import hvac.exceptions as hx
    import requests

    def attempt() -> T:
        try:
            return fn()
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientKeyServiceError(f"cannot reach Vault ({type(exc).__name__})") from None
        except (hx.InternalServerError, hx.BadGateway, hx.VaultDown, hx.RateLimitExceeded) as exc:
            raise TransientKeyServiceError(f"Vault answered {type(exc).__name__}") from None

    error: Exception
    try:
        return call_key_service(retry, attempt, service=SERVICE, reference=reference)
    except hx.Forbidden:
        error = KeyPermissionError(
            f"permission denied for CMK {reference}: the Vault token lacks the '{capability}' "
            f"capability on '{path}' (or the key does not exist and the token may not create it)"
        )
    except hx.Unauthorized:
        error = KeyPermissionError(f"Vault rejected the token for CMK {reference} (expired or revoked?) on '{path}'")
    except hx.InvalidPath:
        error = KeyNotFoundError(not_found or f"CMK {reference}: nothing at Vault path '{path}'")
    except hx.InvalidRequest as exc:
        text = str(exc.errors[0] if getattr(exc, "errors", None) else "")
        if "not found" in text and "key" in text:
            error = KeyNotFoundError(f"CMK {reference}: the Vault key at '{path}' does not exist")
        elif invalid_means_unwrap_failure:
            error = KeyUnwrapError(
                f"CMK {reference} could not unwrap the data key: wrong key for this object or corrupted wrapped values"
            )
        else:
            error = KeyServiceError(f"Vault rejected the request on '{path}' for CMK {reference}")
    except hx.VaultError:
        error = KeyServiceError(f"Vault failed on '{path}' for CMK {reference}")
    # Raised outside the except blocks so the hvac exception (whose text may hold plaintext of
    # other batch items) is not even kept as __context__.
    raise error
