"""Register key material with Airflow's secrets masker, in the exact encodings that could be printed.

Providers never log key material, but a third-party library, a debug print or an exception from
deep inside an SDK might. So every secret a provider holds is handed to Airflow's masker as the
*strings* that could appear: base64 of data keys (what Vault and KMS return and what a careless
``print`` of a response shows), PEM text of private keys, tokens. Outside Airflow (pure-library use,
where ``airflow.sdk`` was never imported) this is a no-op and imports nothing: importing Airflow just
to mask would cost seconds and ~90 MiB in a process that has no task log to protect.

Per-object data keys are a safety net only (nothing here logs them), and Airflow's masker recompiles
one regex of *all* registered secrets on every registration, so masking every data key of a task
that touches thousands of objects would cost time quadratic in the object count and slow every log
line. Data keys are therefore masked for the first :data:`DATA_KEY_MASK_LIMIT` objects of a process;
long-lived secrets (PEM text, tokens, passphrases) are always masked.
"""

from __future__ import annotations

import base64
import sys
import threading
from collections.abc import Iterable

#: How many data keys (and IVs) one process registers with the masker; see the module docstring.
DATA_KEY_MASK_LIMIT = 512
_masked_data_keys = 0
_count_lock = threading.Lock()


def _mask(value: str) -> None:
    if "airflow.sdk" not in sys.modules:
        return
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
    """Mask the standard base64 and hex forms of raw key bytes (data keys), up to the process limit."""
    global _masked_data_keys  # noqa: PLW0603 - one per-process budget; tests reset it like a new task process
    with _count_lock:
        if _masked_data_keys >= DATA_KEY_MASK_LIMIT:
            return
        _masked_data_keys += 1
    mask_strings(s for r in raw for s in (base64.b64encode(r).decode("ascii"), r.hex()))
