"""Issue 9 through the real ``osscse`` process: tampering never passes by default.

Observed defects (before the change): with the default ``--integrity if-present``, an object whose
``x-oss-meta-osscse-integrity`` header was removed and whose ciphertext bits were flipped (AES-CTR
is malleable) was decrypted by ``osscse get`` / ``osscse cat`` to the altered plaintext with exit 0;
``osscse cat`` of a tampered *tagged* object wrote every plaintext byte but the last chunk to stdout
before failing; and an object swapped under another name verified. Now the default policy is the
OSS connection's ``integrity`` extra, else ``require``; a refused read names ``--integrity
if-present``; ``cat`` writes no byte of an object whose tag does not verify; ``get`` leaves no file;
every read that was not verified says so on stderr, and success output names the integrity status.

Each attack runs as a subprocess (``python -m airflow_provider_osscse.cli``, ~15 s each because
Airflow is imported) against the local OSS server; option and output checks call ``main()`` in
process. Tampering is done at rest (``LocalOSSServer.overwrite_stored``), as an attacker with write
access to the bucket would.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.cli import main
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

from .conftest import BUCKET

INTEGRITY_HEADER = "x-oss-meta-osscse-integrity"
#: Larger than any stream chunk (1 MiB) and the in-memory spool, so a reader that released
#: plaintext before verifying would have written bytes to stdout before the error.
BIG = 3 * 1024 * 1024 + 123


def osscse(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """The CLI as a shell user runs it, with the session's Airflow connections in the environment."""
    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_osscse.cli", *argv],
        env=dict(os.environ),
        capture_output=True,
        timeout=timeout,
        check=False,  # callers assert on the exit status
    )


def err_of(run: subprocess.CompletedProcess[bytes]) -> str:
    return run.stderr.decode("utf-8", "replace")


def osscse_lines(run: subprocess.CompletedProcess[bytes]) -> list[str]:
    """The CLI's own stderr lines (Airflow may log its start-up there too, e.g. in unit-test mode)."""
    return [line for line in err_of(run).splitlines() if line.startswith("osscse:")]


def in_process(capfd: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, bytes, str]:
    """``main(argv)`` with its exit code, stdout bytes and stderr text."""
    capfd.readouterr()
    code = main(list(argv))
    captured = capfd.readouterr()
    return code, captured.out, captured.err.decode("utf-8", "replace")


@pytest.fixture
def key() -> str:
    return f"cli-integrity/{uuid.uuid4().hex}"


@pytest.fixture
def upload(oss_env: Any, rsa_ref: str) -> Callable[..., bytes]:
    """Upload random bytes under the session's RSA CMK with the hook's defaults (a bound v2 tag)."""

    def put(key: str, size: int = 5000, **hook_kwargs: Any) -> bytes:
        data = os.urandom(size)
        EncryptedOSSHook("oss_v4", cmk=rsa_ref, **hook_kwargs).upload(io.BytesIO(data), key, size=size)
        return data

    return put


def flip_bit(server: Any, key: str, offset: int) -> None:
    stored = bytearray(server.stored_object(BUCKET, key).data)
    stored[offset] ^= 0x01
    server.overwrite_stored(BUCKET, key, bytes(stored))


def strip_tag(server: Any, key: str) -> None:
    metadata = dict(server.stored_object(BUCKET, key).metadata)
    assert metadata.pop(INTEGRITY_HEADER), "the upload wrote no integrity tag"
    server.overwrite_stored(BUCKET, key, metadata=metadata)


def no_file_left(directory: Path, name: str) -> bool:
    """Neither the destination nor a partial next to it (``.NAME.*``)."""
    return not (directory / name).exists() and not [p for p in directory.iterdir() if name in p.name]


# ------------------------------------------------------------------ strip the tag + flip bits
def test_stripped_tag_and_flipped_bits_fail_get_and_cat_by_default_naming_the_cli_flag(
    oss_env: Any,
    rsa_ref: str,
    upload: Callable[..., bytes],
    key: str,
    tmp_path: Path,
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    upload(key)
    strip_tag(oss_env, key)
    flip_bit(oss_env, key, 100)
    uri = f"oss://{BUCKET}/{key}"

    cat = osscse("cat", uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4")
    assert cat.returncode == 1 and cat.stdout == b"", err_of(cat)
    assert "Traceback" not in err_of(cat) and len(osscse_lines(cat)) == 1
    assert osscse_lines(cat)[0].startswith("osscse: UnauthenticatedObjectError: ")
    assert "--integrity if-present" in osscse_lines(cat)[0]

    code, _, err = in_process(
        capfdbinary, "get", uri, str(tmp_path / "out.bin"), "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"
    )
    assert code == 1 and err.startswith("osscse: UnauthenticatedObjectError: ") and "--integrity if-present" in err
    assert len(err.strip().splitlines()) == 1
    assert no_file_left(tmp_path, "out.bin")


def test_if_present_reads_the_untagged_object_only_with_a_warning_on_stderr(
    oss_env: Any,
    rsa_ref: str,
    upload: Callable[..., bytes],
    key: str,
    tmp_path: Path,
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    data = upload(key)
    strip_tag(oss_env, key)
    uri = f"oss://{BUCKET}/{key}"
    common = ("--cmk", rsa_ref, "--oss-conn-id", "oss_v4", "--integrity", "if-present")

    code, out, err = in_process(capfdbinary, "get", uri, str(tmp_path / "out.bin"), *common)
    assert code == 0 and (tmp_path / "out.bin").read_bytes() == data, err
    assert "osscse: warning:" in err and "UNAUTHENTICATED" in err and b"integrity unauthenticated" in out

    code, out, err = in_process(capfdbinary, "cat", uri, *common)
    assert code == 0 and out == data, err
    assert "osscse: warning:" in err and "UNAUTHENTICATED" in err and "integrity unauthenticated" in err

    code, out, err = in_process(
        capfdbinary, "cat", uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4", "--integrity", "off"
    )
    assert code == 0 and out == data
    assert "UNAUTHENTICATED" in err and "integrity skipped" in err


# ------------------------------------------------------------------ tampered tagged object via cat
def test_cat_of_a_tampered_tagged_object_writes_no_byte_to_stdout_and_get_leaves_no_file(
    oss_env: Any,
    rsa_ref: str,
    upload: Callable[..., bytes],
    key: str,
    tmp_path: Path,
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    upload(key, BIG)
    flip_bit(oss_env, key, BIG - 10)  # in the last chunk: every earlier chunk is intact
    uri = f"oss://{BUCKET}/{key}"

    cat = osscse("cat", uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4")
    assert cat.returncode == 1, err_of(cat)
    assert cat.stdout == b"", f"{len(cat.stdout)} plaintext bytes of a tampered object reached stdout"
    assert "Traceback" not in err_of(cat) and len(osscse_lines(cat)) == 1
    assert osscse_lines(cat)[0].startswith("osscse: IntegrityError: ")

    code, _, err = in_process(
        capfdbinary, "get", uri, str(tmp_path / "out.bin"), "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"
    )
    assert code == 1 and err.startswith("osscse: IntegrityError: ")
    assert no_file_left(tmp_path, "out.bin")


def test_success_output_of_get_and_cat_reports_the_integrity_status(
    oss_env: Any,
    rsa_ref: str,
    upload: Callable[..., bytes],
    key: str,
    tmp_path: Path,
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    data = upload(key, BIG)
    uri = f"oss://{BUCKET}/{key}"
    code, out, err = in_process(capfdbinary, "cat", uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4")
    assert code == 0 and out == data, err
    assert f"osscse: {uri}: {BIG} bytes, integrity verified" in err and "warning" not in err
    code, out, err = in_process(
        capfdbinary, "get", uri, str(tmp_path / "out.bin"), "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"
    )
    assert code == 0 and (tmp_path / "out.bin").read_bytes() == data
    assert f"({BIG} bytes, integrity verified)".encode() in out and "warning" not in err
    code, out, err = in_process(capfdbinary, "cat", uri, "--range", "-6", "--cmk", rsa_ref, "--oss-conn-id", "oss_v4")
    assert code == 0 and out == data[-6:] and "6 bytes, integrity verified" in err  # whole object verified first


# ------------------------------------------------------------------ an object swapped under another name
def test_object_swapped_under_another_name_fails_get_and_cat(
    oss_env: Any,
    rsa_ref: str,
    upload: Callable[..., bytes],
    key: str,
    tmp_path: Path,
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    upload(f"{key}/invoice-a")
    upload(f"{key}/invoice-b")
    a = oss_env.stored_object(BUCKET, f"{key}/invoice-a")
    oss_env.overwrite_stored(BUCKET, f"{key}/invoice-b", a.data, metadata=dict(a.metadata))  # replay a as b
    uri = f"oss://{BUCKET}/{key}/invoice-b"

    cat = osscse("cat", uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4")
    assert cat.returncode == 1 and cat.stdout == b"", err_of(cat)
    assert "IntegrityError" in err_of(cat) and "bound" in err_of(cat)
    code, _, err = in_process(
        capfdbinary, "get", uri, str(tmp_path / "b.bin"), "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"
    )
    assert code == 1 and "IntegrityError" in err
    assert no_file_left(tmp_path, "b.bin")


def test_put_unbound_tag_gives_up_swap_detection_as_its_help_says(
    oss_env: Any,
    rsa_ref: str,
    key: str,
    tmp_path: Path,
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    capfdbinary.readouterr()
    with pytest.raises(SystemExit):
        main(["put", "--help"])
    help_text = " ".join(capfdbinary.readouterr().out.decode().split())
    assert "--unbound-tag" in help_text and "NOT bound to this bucket and key" in help_text
    assert "Gives up detection" in help_text

    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(4000))
    code, _, err = in_process(
        capfdbinary,
        "put",
        str(src),
        f"oss://{BUCKET}/{key}/a",
        "--cmk",
        rsa_ref,
        "--oss-conn-id",
        "oss_v4",
        "--unbound-tag",
    )
    assert code == 0, err
    a = oss_env.stored_object(BUCKET, f"{key}/a")
    assert ";bind=" not in a.metadata[INTEGRITY_HEADER]
    oss_env.overwrite_stored(BUCKET, f"{key}/b", a.data, metadata=dict(a.metadata))
    code, out, err = in_process(
        capfdbinary, "cat", f"oss://{BUCKET}/{key}/b", "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"
    )
    assert code == 0 and out == src.read_bytes(), err  # the swap goes unnoticed: what the option gives up

    assert main(["put", str(src), f"oss://{BUCKET}/{key}/bound", "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]) == 0
    assert ";bind=" in oss_env.stored_object(BUCKET, f"{key}/bound").metadata[INTEGRITY_HEADER]


# ------------------------------------------------------------------ options and defaults
def test_integrity_and_matdesc_options_document_their_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("get", "cat"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "Default: the OSS connection's 'integrity' extra, else require" in text
    with pytest.raises(SystemExit):
        main(["put", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--matdesc K=V" in text and "Default: the OSS connection's 'matdesc' extra, else none" in text


def test_put_matdesc_entries_are_written_compact_and_a_malformed_one_is_a_usage_error(
    oss_env: Any,
    rsa_ref: str,
    key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"described")
    uri = f"oss://{BUCKET}/{key}"
    argv = ["put", str(src), uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]
    assert main([*argv, "--matdesc", "team=etl", "--matdesc", "env=prod"]) == 0
    stored = oss_env.stored_object(BUCKET, key).metadata
    assert stored["x-oss-meta-client-side-encryption-matdesc"] == '{"env":"prod","team":"etl"}'
    assert main(["get", uri, str(tmp_path / "out"), "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]) == 0
    assert (tmp_path / "out").read_bytes() == b"described"
    capsys.readouterr()
    assert main([*argv, "--matdesc", "no-equals-sign"]) == 2
    assert "--matdesc expects K=V" in capsys.readouterr().err


@pytest.fixture
def lenient_conn(oss_env: Any) -> Iterator[str]:
    """Connection ``oss_lenient``: the test bucket with extra ``integrity: if-present`` (a deployment default)."""
    from tests.transfer_fixtures import oss_conn

    os.environ["AIRFLOW_CONN_OSS_LENIENT"] = oss_conn(oss_env, integrity="if-present")
    try:
        yield "oss_lenient"
    finally:
        os.environ.pop("AIRFLOW_CONN_OSS_LENIENT", None)


def test_default_integrity_follows_the_connection_extra_and_the_flag_overrides_it(
    oss_env: Any,
    rsa_ref: str,
    upload: Callable[..., bytes],
    key: str,
    lenient_conn: str,
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    data = upload(key)
    strip_tag(oss_env, key)
    uri = f"oss://{BUCKET}/{key}"
    lenient = osscse("cat", uri, "--cmk", rsa_ref, "--oss-conn-id", lenient_conn)
    assert lenient.returncode == 0 and lenient.stdout == data, err_of(lenient)
    assert "UNAUTHENTICATED" in err_of(lenient)
    code, out, err = in_process(
        capfdbinary, "cat", uri, "--cmk", rsa_ref, "--oss-conn-id", lenient_conn, "--integrity", "require"
    )
    assert code == 1 and out == b"" and "--integrity if-present" in err


def test_an_unauthenticated_read_is_announced_once_in_the_cli_words_even_when_quiet(
    oss_env: Any, rsa_ref: str, key: str, upload: Callable[..., bytes]
) -> None:
    """The reader's WARNING record (Python wording, ``integrity='if-present'``) is the CLI's own
    ``warning:`` line said twice; the CLI keeps its line, also under ``-q``, and drops the record."""
    from tests.cli.cli_process import osscse

    data = upload(key)
    strip_tag(oss_env, key)
    for quiet in ((), ("-q",)):
        done = osscse(
            "cat",
            f"oss://{BUCKET}/{key}",
            "--cmk",
            rsa_ref,
            "--oss-conn-id",
            "oss_v4",
            "--integrity",
            "if-present",
            *quiet,
        )
        assert done.returncode == 0 and done.stdout == data
        warnings = [line for line in done.stderr.decode().splitlines() if "UNAUTHENTICATED" in line]
        assert len(warnings) == 1 and warnings[0].startswith("osscse: warning: "), done.stderr
        assert "integrity='if-present'" not in done.stderr.decode()
