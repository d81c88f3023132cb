"""Register key material with Airflow's secrets masker, in the exact encodings that could be printed.

Providers never log key material, but a third-party library, a debug print or an exception from
deep inside an SDK might. So every secret a provider holds is handed to Airflow's masker as the
*strings* that could appear: base64 of data keys (what Vault and KMS return and what a careless
``print`` of a response shows), PEM text of private keys, tokens. Outside Airflow (pure-library use)
this is a no-op.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable


def _mask(value: str) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - used without Airflow
        return
    mask_secret(value)


def mask_strings(values: Iterable[str]) -> None:
    """Mask each string and each of its lines (PEM text is often printed line by line)."""
    for value in values:
        if not value:
            continue
        _mask(value)
        stripped = value.strip()
        if "\n" in stripped:
            for line in stripped.splitlines():
                if len(line) >= 16 and not line.startswith("-----"):
                    _mask(line)


def mask_key_bytes(*raw: bytes) -> None:
    """Mask the standard base64 and hex forms of raw key bytes (data keys)."""
    mask_strings(
        s for r in raw for s in (base64.b64encode(r).decode("ascii"), r.hex())
    )
