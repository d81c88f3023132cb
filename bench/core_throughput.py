"""Throughput and peak memory of the envelope core against raw AES-256-CTR and ``openssl enc``.

Each measurement runs in its own subprocess on the same input file (best of ``--repeat``); peak RSS
is the child's ``ru_maxrss``. Python children time their work only (interpreter start-up and imports
excluded, as they do not scale with the object); ``openssl`` is timed as a whole process. Usage::

    python bench/core_throughput.py --sizes 256M,2G [--dir /tmp]

Rows: ``raw`` (cryptography AES-256-CTR, same buffers), ``core-encrypt`` / ``core-decrypt``
(``envelope.transform_file``, tag off), ``core-tag`` (the HMAC-only integrity pass alone),
``core-encrypt+tag`` (spool_encrypt: encrypt + tag in one pass), ``openssl``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

KEY_HEX = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
IV_HEX = "0102030405060708000000000a0b0c0d"
CHUNK = 1024 * 1024

_CHILD = rf"""
import sys, time
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
mode, src, dst = sys.argv[1:4]
if mode != "raw":
    import airflow_provider_osscse.envelope  # import cost is excluded from the timed work
t0 = time.perf_counter()
key = bytes.fromhex("{KEY_HEX}"); iv = bytes.fromhex("{IV_HEX}")
if mode == "raw":
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    buf = bytearray({CHUNK}); out = bytearray({CHUNK} + 15); mv = memoryview(buf); mo = memoryview(out)
    with open(src, "rb") as f, open(dst, "wb") as g:
        while n := f.readinto(buf):
            w = enc.update_into(mv[:n], out); g.write(mo[:w])
else:
    from airflow_provider_osscse.envelope import DataKey
    from airflow_provider_osscse.envelope.streams import transform_file
    from airflow_provider_osscse.envelope.integrity import IntegrityBuilder, StreamingTagger
    from airflow_provider_osscse.envelope.streams import iter_chunks
    ck = DataKey(key=key, iv=iv)
    if mode in ("core-encrypt", "core-decrypt"):
        transform_file(src, dst, ck, chunk_size={CHUNK})
    elif mode == "core-tag":
        t = StreamingTagger(IntegrityBuilder(ck, "AES/CTR/NoPadding", 8 * 1024 * 1024))
        for c in iter_chunks(src, {CHUNK}):
            t.update(c)
        t.builder.finish(t.close(), binding=None)
    elif mode == "core-encrypt+tag":
        from airflow_provider_osscse.envelope.aes_ctr import CtrCipher
        t = StreamingTagger(IntegrityBuilder(ck, "AES/CTR/NoPadding", 8 * 1024 * 1024))
        c = CtrCipher(key, iv)
        buf = bytearray({CHUNK}); out = bytearray({CHUNK} + 15); mv = memoryview(buf); mo = memoryview(out)
        with open(src, "rb") as f, open(dst, "wb") as g:
            while n := f.readinto(buf):
                t.update(mv[:n]); w = c.update_into(mv[:n], out); g.write(mo[:w])
        t.builder.finish(t.close(), binding=None)
print(time.perf_counter() - t0)
"""


def parse_size(text: str) -> int:
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    text = text.strip().upper()
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def measure(cmd: list[str], repeat: int = 3) -> tuple[float, int]:
    """Best wall seconds over ``repeat`` runs and the highest peak RSS (KiB) of the children.

    ``os.wait4`` returns each child's own rusage (RUSAGE_CHILDREN would aggregate all of them).
    """
    runs = [_measure_once(cmd) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def _measure_once(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if out.strip():  # Python children report the time of the work itself, without interpreter start-up
        elapsed = float(out)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark child failed: {cmd[:3]}")
    return elapsed, usage.ru_maxrss


def make_input(path: str, size: int) -> None:
    block = os.urandom(CHUNK)
    with open(path, "wb") as handle:
        handle.writelines(block[: min(CHUNK, size - written)] for written in range(0, size, CHUNK))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256M", help="comma-separated sizes, e.g. 256M,2G")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode (best time is kept)")
    parser.add_argument("--dir", default=None, help="directory for the temporary files")
    args = parser.parse_args()
    py = sys.executable
    openssl = shutil.which("openssl")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        src, dst, back = (os.path.join(tmp, n) for n in ("in", "out", "back"))
        for size_text in args.sizes.split(","):
            size = parse_size(size_text)
            make_input(src, size)
            rows: dict[str, tuple[float, int]] = {}
            rows["raw"] = measure([py, "-c", _CHILD, "raw", src, dst], args.repeat)
            rows["core-encrypt"] = measure([py, "-c", _CHILD, "core-encrypt", src, dst], args.repeat)
            rows["core-decrypt"] = measure([py, "-c", _CHILD, "core-decrypt", dst, back], args.repeat)
            rows["core-tag"] = measure([py, "-c", _CHILD, "core-tag", src, dst], args.repeat)
            rows["core-encrypt+tag"] = measure([py, "-c", _CHILD, "core-encrypt+tag", src, dst], args.repeat)
            if openssl:
                rows["openssl"] = measure(
                    [openssl, "enc", "-aes-256-ctr", "-K", KEY_HEX, "-iv", IV_HEX, "-in", src, "-out", dst], args.repeat
                )
            raw_rate = size / rows["raw"][0]
            print(f"\n== {size_text} ({size} bytes) ==")
            print(f"{'mode':<18}{'MiB/s':>10}{'vs raw':>9}{'peak RSS MiB':>14}")
            for name, (secs, rss) in rows.items():
                rate = size / secs
                print(f"{name:<18}{rate / 2**20:>10.0f}{rate / raw_rate:>9.2f}{rss / 1024:>14.1f}")


if __name__ == "__main__":
    main()
