"""Plan multipart uploads whose parts can be encrypted independently, in parallel, in any order.

All parts share the data key and IV; part ``n`` (1-based) starts its counter at
``IV + (n-1) * part_size / 16``, so the finished object equals one continuous encryption. That only
works when every part except the last has the same size and that size is a multiple of 16. OSS also
wants every non-last part ≥ 100 KiB (oss2 checks it) and part numbers 1..10,000; a plan uses at most
9,999 of them, because part 10,000 is this provider's upload marker (``transport.multipart_upload``:
never named in Complete, it identifies an upload a killed run left behind).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from airflow_provider_osscse.envelope.aes_ctr import BLOCK_SIZE
from airflow_provider_osscse.exceptions import PartPlanError

#: OSS refuses non-last parts smaller than this (and oss2 refuses to plan them).
MIN_PART_SIZE = 100 * 1024
#: OSS refuses parts larger than this.
MAX_PART_SIZE = 5 * 1024**3
#: OSS's highest part number (parts are numbered 1..10,000).
MAX_PART_NUMBER = 10_000
#: Data parts a plan may use: part :data:`MAX_PART_NUMBER` is reserved for the upload marker.
MAX_PART_COUNT = MAX_PART_NUMBER - 1
DEFAULT_PART_SIZE = 8 * 1024 * 1024


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Part:
    """One part: ``number`` is 1-based as in OSS; ``offset`` is the plaintext (and ciphertext) offset."""

    number: int
    offset: int
    size: int

    @property
    def byte_range(self) -> tuple[int, int]:
        """Inclusive ``(first, last)`` offsets, as an HTTP Range or UploadPartCopy names them;
        ``(0, -1)`` for the single empty part of an empty object."""
        return self.offset, self.offset + self.size - 1


@dataclass(frozen=True)
class PartPlan:
    """A valid split of ``total_size`` bytes into ``part_count`` parts of ``part_size`` (last may be short)."""

    total_size: int
    part_size: int
    part_count: int

    def part(self, number: int) -> Part:
        """Part ``number`` (1-based)."""
        if not 1 <= number <= self.part_count:
            raise PartPlanError(f"part number {number} is outside 1..{self.part_count}")
        offset = (number - 1) * self.part_size
        return Part(number, offset, min(self.part_size, self.total_size - offset))

    def parts(self) -> Iterator[Part]:
        """All parts in order."""
        return (self.part(n) for n in range(1, self.part_count + 1))

    def byte_ranges(self) -> list[tuple[int, int]]:
        """Every part's inclusive :attr:`Part.byte_range`, in order (what a server-side copy sends)."""
        return [part.byte_range for part in self.parts()]


def split_range(first: int, last: int, piece_size: int) -> list[tuple[int, int]]:
    """``first..last`` (inclusive) cut into consecutive inclusive pieces of ``piece_size`` bytes, the
    last one possibly short; none when ``last < first``.

    The ranges of a parallel download, which (unlike upload parts) have no OSS size rules: the
    caller picks ``piece_size`` (16-aligned, segment-aligned when verifying).
    """
    if piece_size <= 0:
        raise PartPlanError(f"piece size must be > 0, got {piece_size}")
    return [(start, min(start + piece_size, last + 1) - 1) for start in range(first, last + 1, piece_size)]


def plan_parts(total_size: int, part_size: int = DEFAULT_PART_SIZE) -> PartPlan:
    """The plan for ``total_size`` bytes, using ``part_size`` adjusted *upward* where it must be.

    The size is rounded up to a multiple of 16 and to at least 100 KiB, then grown until the object
    fits in :data:`MAX_PART_COUNT` (9,999) parts. Objects beyond 9,999 × 5 GiB cannot be uploaded at all.
    """
    if total_size < 0:
        raise PartPlanError(f"total size must be >= 0, got {total_size}")
    if part_size <= 0:
        raise PartPlanError(f"part size must be > 0, got {part_size}")
    size = max(_round_up(part_size, BLOCK_SIZE), MIN_PART_SIZE)
    if -(-total_size // size) > MAX_PART_COUNT:
        size = _round_up(-(-total_size // MAX_PART_COUNT), BLOCK_SIZE)
    if size > MAX_PART_SIZE:
        raise PartPlanError(f"{total_size} bytes do not fit in {MAX_PART_COUNT} parts of at most {MAX_PART_SIZE} bytes")
    count = max(1, -(-total_size // size))
    return PartPlan(total_size=total_size, part_size=size, part_count=count)
