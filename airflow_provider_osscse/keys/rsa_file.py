"""``rsa-file:///absolute/path/key.pem``: a local RSA key (a public key alone is encrypt-only).

The key names itself by its public key's fingerprint (``LocalRsaKey.identity``), not by the file's
path, and writes only the user's matdesc: the same key file on another host reads the objects, and
so does oss2's ``RsaProvider`` built without a matdesc.
"""

from __future__ import annotations

from collections.abc import Mapping

from airflow_provider_osscse.envelope.keywrap import Cmk
from airflow_provider_osscse.exceptions import KeyNotFoundError
from airflow_provider_osscse.keys.rsa_pem import normalize_rsa_pem, split_pem_file


def load_rsa_file_key(
    path: str,
    *,
    reference: str | None = None,
    matdesc: Mapping[str, str] | None = None,
    allow_weak_key_for_unwrap: bool = False,
) -> Cmk:
    """Read ``path`` (PKCS#1, PKCS#8 or X.509 PEM) into a ``LocalRsaKey``.

    ``allow_weak_key_for_unwrap``: see :class:`~airflow_provider_osscse.keys.local_rsa.LocalRsaKey`
    (a key under 2048 bits is otherwise refused here, before anything is read or written with it).
    """
    from airflow_provider_osscse.keys.local_rsa import LocalRsaKey

    reference = reference or f"rsa-file://{path}"
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise KeyNotFoundError(f"CMK {reference}: no key file at {path}") from None
    except OSError as exc:
        raise KeyNotFoundError(f"CMK {reference}: cannot read {path} ({exc.strerror})") from None
    private, public = split_pem_file(data)
    pair = normalize_rsa_pem(private, public, source=f"CMK {reference}")
    return LocalRsaKey(
        keys=pair.keys,  # already parsed and validated: not a second time
        reference=reference,
        matdesc=matdesc,
        allow_weak_key_for_unwrap=allow_weak_key_for_unwrap,
    )
