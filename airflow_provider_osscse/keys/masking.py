"""Register long-lived secrets with Airflow's secrets masker, in the exact strings that could be printed.

Providers never log key material, but a third-party library, a debug print or an exception from
deep inside an SDK might. So every *long-lived* secret a provider holds (PEM text of private keys,
tokens, passphrases, access-key secrets) is handed to Airflow's masker as the strings that could
appear. Outside Airflow (pure-library use, where ``airflow.sdk`` was never imported) this is a no-op
and imports nothing: importing Airflow just to mask would cost seconds and ~90 MiB in a process that
has no task log to protect.

Per-object data keys are deliberately **not** registered. Airflow's masker recompiles one regex of
every registered secret on each registration and runs every log line through it, so registering a
data key per object made a task's cost grow with the number of objects it had touched (70x slower
downloads after a few thousand objects). Data keys are kept out of logs by construction instead:
``DataKey`` (and every object that holds one) hides its bytes from ``repr``/``str`` and refuses to be
pickled, no provider logs a key-service response, and the key-service SDKs log no bodies
(``tests/security/test_debug_logging_leaks.py`` logs at DEBUG through every path to prove it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable


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
