"""Plan ranged reads of encrypted objects.

A plaintext byte range ``[s, e]`` of a CTR object is read by requesting ciphertext from the block
boundary ``s' = s - s % 16`` (so the decryptor can start at counter ``IV + s'/16``), dropping the
first ``s - s'`` decrypted bytes and keeping ``e - s + 1``. Suffix ranges (``bytes=-N``) need the
object size first; the v2 SDK and Go return wrong bytes for them and oss2/Java refuse them, this
planner resolves them to an absolute range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_provider_osscse.envelope.aes_ctr import BLOCK_SIZE
from airflow_provider_osscse.exceptions import InvalidRangeError, RangeNotSatisfiableError

_RANGE_RE = re.compile(r"^\s*(?:bytes\s*=\s*)?(\d*)\s*-\s*(\d*)\s*$")


@dataclass(frozen=True)
class RangePlan:
    """How to fetch and decrypt one plaintext range.

    ``request_start``/``request_end`` are the inclusive ciphertext bytes to ask OSS for
    (``request_end`` None = to the end); ``counter_offset`` (== ``request_start``, 16-aligned) is the
    object offset to start the cipher at; drop ``discard`` decrypted bytes, then keep ``length``
    bytes (None = everything until the end of the object).
    """

    start: int
    end: int | None
    request_start: int
    request_end: int | None
    discard: int
    length: int | None

    @property
    def counter_offset(self) -> int:
        """Object offset of the first requested byte: start the cipher at ``IV + counter_offset/16``."""
        return self.request_start

    @property
    def http_range(self) -> str:
        """The ``Range`` header value for the aligned request."""
        end = "" if self.request_end is None else str(self.request_end)
        return f"bytes={self.request_start}-{end}"

    def oss2_byte_range(self) -> tuple[int, int | None]:
        """The aligned request as oss2's ``byte_range=(start, end)`` argument."""
        return (self.request_start, self.request_end)


def parse_range(spec: str) -> tuple[int | None, int | None]:
    """``"bytes=a-b"``/``"a-b"``/``"a-"``/``"-n"`` → ``(a, b)``, ``(a, None)`` or ``(None, n)``."""
    match = _RANGE_RE.match(spec)
    if match is None or (not match.group(1) and not match.group(2)):
        raise InvalidRangeError(f"malformed byte range {spec!r}: expected 'a-b', 'a-' or '-n'")
    first = int(match.group(1)) if match.group(1) else None
    second = int(match.group(2)) if match.group(2) else None
    return first, second


def plan_range(spec: str | tuple[int | None, int | None], object_size: int | None = None) -> RangePlan:
    """Turn a range (string, or ``(start, end)`` / ``(None, suffix_length)``) into a :class:`RangePlan`.

    With ``object_size`` the range is clamped to the object (``end`` past the end is allowed, as in
    HTTP) and an unsatisfiable one (start at/after the end, empty suffix) raises
    :class:`RangeNotSatisfiableError`. Without it, suffix ranges raise :class:`InvalidRangeError`.
    """
    first, second = parse_range(spec) if isinstance(spec, str) else spec
    start: int
    end: int | None  # None: to the end of an object of unknown size
    if object_size is not None and object_size < 0:
        raise InvalidRangeError(f"object size must be >= 0, got {object_size}")
    if first is None:
        if second is None:
            raise InvalidRangeError("a byte range needs a start or a suffix length")
        if object_size is None:
            raise InvalidRangeError(f"suffix range -{second} needs the object size (HEAD the object first)")
        if second <= 0 or object_size == 0:
            raise RangeNotSatisfiableError(
                f"suffix range -{second} is not satisfiable for an object of {object_size} bytes"
            )
        start, end = max(0, object_size - second), object_size - 1
    else:
        start, end = first, second
        if start < 0 or (end is not None and end < start):
            raise InvalidRangeError(f"invalid byte range {start}-{'' if end is None else end}")
        if object_size is not None:
            if start >= object_size:
                raise RangeNotSatisfiableError(
                    f"range starting at {start} is not satisfiable for an object of {object_size} bytes"
                )
            end = object_size - 1 if end is None else min(end, object_size - 1)
    request_start = start - start % BLOCK_SIZE
    return RangePlan(
        start=start,
        end=end,
        request_start=request_start,
        request_end=end,
        discard=start - request_start,
        length=None if end is None else end - start + 1,
    )
