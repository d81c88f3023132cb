"""An RSA CMK under 2048 bits never wraps a data key: hook and CLI refuse it before anything is uploaded.

Observed before: a 512- or 1024-bit ``rsa-file://`` key wrapped data keys without complaint, so every
object written with it was as weak as the key (a 512-bit modulus is factored in hours).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.cli import main
from airflow_provider_osscse.keys.local_rsa import WeakRsaKeyError
from tests.keys.weak_rsa import weak_private_pem

from .conftest import BUCKET, THRESHOLD


@pytest.fixture(scope="module", params=[512, 1024])
def weak_ref(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str]:
    path = tmp_path_factory.mktemp("weak-rsa") / f"weak-{request.param}.pem"
    path.write_bytes(weak_private_pem(request.param))
    return request.param, f"rsa-file://{path}"


def _nothing_stored(oss_env: Any, key: str) -> bool:
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

    return not EncryptedOSSHook("oss_v4").exists(key) and not [
        u for u in oss_env.list_multipart_uploads(BUCKET) if u.key == key
    ]


@pytest.mark.parametrize("size", [1000, 3 * THRESHOLD])
def test_hook_upload_with_a_weak_rsa_file_key_fails_before_reading_or_uploading_anything(
    size: int, weak_ref: tuple[int, str], oss_env: Any, make_hook: Callable[..., Any]
) -> None:
    bits, ref = weak_ref
    key = f"weak/{bits}-{size}"
    consumed: list[int] = []

    def source() -> Iterator[bytes]:
        consumed.append(1)
        yield b"x" * size

    hook = make_hook(cmk=ref)
    with pytest.raises(WeakRsaKeyError) as info:
        hook.upload(source(), key)
    text = str(info.value)
    assert ref in text and f"{bits}-bit" in text and "2048" in text and "allow_weak_key_for_unwrap" in text
    assert consumed == [], "the source was read: the CMK was checked too late"
    assert _nothing_stored(oss_env, key)


def test_hook_upload_from_a_file_with_a_weak_key_stores_nothing(
    weak_ref: tuple[int, str], oss_env: Any, make_hook: Callable[..., Any], tmp_path: Path
) -> None:
    bits, ref = weak_ref
    src = tmp_path / "data.csv"
    src.write_bytes(b"a,b\n" * 1000)
    with pytest.raises(WeakRsaKeyError):
        make_hook(cmk=ref).upload(str(src), f"weak/file-{bits}")
    with pytest.raises(WeakRsaKeyError):
        make_hook(cmk=ref).upload(io.BytesIO(b"payload"), f"weak/bytes-{bits}")
    assert _nothing_stored(oss_env, f"weak/file-{bits}") and _nothing_stored(oss_env, f"weak/bytes-{bits}")


def test_cli_put_with_a_weak_key_exits_non_zero_with_one_line_naming_the_fix(
    weak_ref: tuple[int, str], oss_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bits, ref = weak_ref
    src = tmp_path / "data.csv"
    src.write_bytes(b"a,b\n")
    capsys.readouterr()
    code = main(["put", str(src), f"oss://{BUCKET}/weak/cli-{bits}", "--cmk", ref, "--oss-conn-id", "oss_v4"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("osscse: WeakRsaKeyError: ") and len(err.splitlines()) == 1
    assert f"{bits}-bit" in err and "2048" in err and "PRIVATE" not in err
    assert _nothing_stored(oss_env, f"weak/cli-{bits}")
