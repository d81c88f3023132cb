"""The material description (``client-side-encryption-matdesc``): a JSON object of string→string.

SDKs disagree on spelling: oss2 and the v2 SDK write ``json.dumps`` defaults (``{"a": "b"}``), Go,
Java and C++ write compact JSON (``{"a":"b"}``). Readers that compare the exact string pick the wrong
CMK for the other spelling, so this module *writes* one canonical form (compact, key-sorted, ASCII)
and *reads* into a dict, so that matching is always done on parsed maps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from airflow_provider_osscse.exceptions import EnvelopeFormatError

MATDESC_HEADER = "x-oss-meta-client-side-encryption-matdesc"

#: Where earlier versions of this package wrote the CMK identity and version: *inside* the matdesc,
#: which made oss2 refuse the objects (it matches the whole matdesc). Read only; new objects carry
#: them in ``x-oss-meta-osscse-cmk`` / ``-cmk-version`` (``envelope.headers``).
LEGACY_MATDESC_CMK = "osscse-cmk"
LEGACY_MATDESC_CMK_VERSION = "osscse-cmk-version"


def dump_matdesc(matdesc: Mapping[str, str]) -> str:
    """Canonical compact, key-sorted, ASCII-only JSON; every SDK parses it, Go/Java match it byte for byte."""
    # Callers may be untyped (DAG code, connection extras): check the types at run time.
    entries: Iterable[tuple[object, object]] = matdesc.items()
    for key, value in entries:
        if not isinstance(key, str) or not isinstance(value, str):
            raise EnvelopeFormatError(
                f"matdesc entries must be str -> str, got {type(key).__name__} -> "
                f"{type(value).__name__} for entry {key!r}"
            )
    return json.dumps(dict(matdesc), separators=(",", ":"), sort_keys=True, ensure_ascii=True)


def parse_matdesc(text: str, *, object_name: str) -> dict[str, str]:
    """Parse either spelling into a dict; anything but a JSON object of strings is a format error."""
    try:
        value = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or a number over Python's int-string digit limit
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise EnvelopeFormatError(
            f"header {MATDESC_HEADER} is not valid JSON ({reason})",
            object_name=object_name,
        ) from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise EnvelopeFormatError(
            f"header {MATDESC_HEADER} must be a JSON object of string to string",
            object_name=object_name,
        )
    return dict(sorted(value.items()))
