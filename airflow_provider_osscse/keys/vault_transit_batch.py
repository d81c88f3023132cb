"""Many objects in one Vault Transit ``batch_input`` call, each object's outcome its own.

An object is two batch items (its wrapped data key and its wrapped IV, the official format's two
values), so an object's result is made from two consecutive item results. Vault answers a batch in
input order with an ``error`` per failed item; a whole call that fails (unreachable, permission)
becomes the result of every object it carried, so no object's failure hides another's.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from airflow_provider_osscse.envelope.keywrap import DataKey, WrappedDataKey
from airflow_provider_osscse.exceptions import KeyUnwrapError, OSSCSEError

R = TypeVar("R")

#: Objects per ``batch_input`` call (two items each: data key and IV). Bounded because OpenBao (and
#: Vault) refuse a JSON body of more than about 1000 strings ("refused JSON input due to high
#: complexity": ~495 items), and so that one failed call touches few objects. At 128 a fleet
#: operation makes 1/128 ≈ 0.008 key-service calls per object.
TRANSIT_BATCH_OBJECTS = 128

#: One item result of a batch answer (``plaintext``/``ciphertext``, or ``error``).
ItemResult = Mapping[str, Any]


def per_object(
    wrapped: Sequence[WrappedDataKey],
    send: Callable[[list[dict[str, str]]], list[ItemResult]],
    build: Callable[[WrappedDataKey, list[ItemResult]], R],
    *,
    items_of: Callable[[WrappedDataKey], list[dict[str, str]]],
    op: str,
    reference: str,
) -> list[R | OSSCSEError]:
    """Send the objects' item pairs (``items_of``) in calls of :data:`TRANSIT_BATCH_OBJECTS`;
    ``build`` makes an object's result from its two item results; every error is that object's result."""
    outcomes: list[R | OSSCSEError] = []
    for start in range(0, len(wrapped), TRANSIT_BATCH_OBJECTS):
        chunk = wrapped[start : start + TRANSIT_BATCH_OBJECTS]
        results: list[R | OSSCSEError | None] = [None] * len(chunk)
        items: list[dict[str, str]] = []
        sent: list[int] = []
        for index, item in enumerate(chunk):
            try:
                items.extend(items_of(item))
                sent.append(index)
            except OSSCSEError as exc:  # not a Transit ciphertext: this object alone fails
                results[index] = exc
        if items:
            try:
                answers: list[ItemResult] | None = send(items)
            except OSSCSEError as exc:  # the whole call failed: each object it carried says so
                answers = None
                for index in sent:
                    results[index] = exc
            if answers is not None:
                for position, index in enumerate(sent):
                    results[index] = _one(chunk[index], answers[2 * position : 2 * position + 2], build, op, reference)
        outcomes.extend(r for r in results if r is not None)
    return outcomes


def _one(
    wrapped: WrappedDataKey,
    pair: list[ItemResult],
    build: Callable[[WrappedDataKey, list[ItemResult]], R],
    op: str,
    reference: str,
) -> R | OSSCSEError:
    try:
        if len(pair) != 2 or any(r.get("error") for r in pair):
            verb = "unwrap" if op == "decrypt" else op
            raise KeyUnwrapError(f"CMK {reference} could not {verb} the data key: wrong key or corrupted values")
        return build(wrapped, pair)
    except OSSCSEError as exc:
        return exc


def data_key_of(pair: list[ItemResult], reference: str) -> DataKey:
    """The data key and IV from a decrypt answer's two items (base64 plaintexts)."""
    try:
        key = base64.b64decode(pair[0]["plaintext"], validate=True)
        iv = base64.b64decode(pair[1]["plaintext"], validate=True)
        return DataKey(key=key, iv=iv)
    except (ValueError, KeyError, TypeError):
        raise KeyUnwrapError(f"CMK {reference} could not unwrap the data key: wrong key or corrupted values") from None
