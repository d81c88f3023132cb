"""Regression: listing prefixes with query-special characters, signed v1 and v4 (oss2) and by the v2 SDK.

oss2 sends its query through ``requests``, which form-encodes a space as ``+`` while the v4
signature covers ``%20``; the server used to percent-decode only, so a v4 ``prefix="a b"`` failed
with ``SignatureDoesNotMatch`` and a v1 listing looked for a literal ``+``. Each prefix below has a
look-alike key (space vs ``+``, ``%`` vs its decoded form) that must *not* be listed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest

from airflow_provider_osscse.testing.oss_server import LocalOSSServer

PREFIXES = ["a b", "a+b", "a%b", "a%20b", "a&b=c", "x=y", "ünï cødé/ß", "sp ace+plus%25&amp=/"]
#: Every prefix's listing must contain exactly its own key: they are look-alikes of each other.
LOOKALIKES = [*PREFIXES, "a", "ab", "a-b"]


@pytest.fixture(scope="module")
def bucket_name(osscse_oss_server: LocalOSSServer) -> str:
    name = f"sig-extra-{uuid.uuid4().hex[:8]}"
    osscse_oss_server.create_bucket(name)
    writer = oss2.Bucket(
        oss2.AuthV4(osscse_oss_server.access_key_id, osscse_oss_server.access_key_secret),
        osscse_oss_server.endpoint,
        name,
        region=osscse_oss_server.region,
    )
    for prefix in LOOKALIKES:
        writer.put_object(f"{prefix}#key", b"x")
    return name


def _oss2_lister(server: LocalOSSServer, bucket: str, auth_class: type) -> Callable[[str], list[str]]:
    client = oss2.Bucket(
        auth_class(server.access_key_id, server.access_key_secret), server.endpoint, bucket, region=server.region
    )

    def list_v2(prefix: str) -> list[str]:
        return [o.key for o in client.list_objects_v2(prefix=prefix).object_list]

    return list_v2


def _v2_sdk_lister(server: LocalOSSServer, bucket: str) -> Callable[[str], list[str]]:
    config = oss_v2.config.load_default()
    config.credentials_provider = oss_v2.credentials.StaticCredentialsProvider(
        server.access_key_id, server.access_key_secret
    )
    config.region = server.region
    config.endpoint = server.endpoint
    config.use_path_style = True
    client = oss_v2.Client(config)

    def list_v2(prefix: str) -> list[str]:
        result = client.list_objects_v2(oss_v2.ListObjectsV2Request(bucket=bucket, prefix=prefix))
        return [o.key for o in result.contents or []]

    return list_v2


@pytest.fixture(params=["oss2-v1", "oss2-v4", "v2-sdk"])
def list_v2(
    request: pytest.FixtureRequest, osscse_oss_server: LocalOSSServer, bucket_name: str
) -> Callable[[str], list[str]]:
    if request.param == "v2-sdk":
        return _v2_sdk_lister(osscse_oss_server, bucket_name)
    auth = oss2.Auth if request.param == "oss2-v1" else oss2.AuthV4
    return _oss2_lister(osscse_oss_server, bucket_name, auth)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_list_objects_v2_prefix_with_special_characters_is_signed_and_matched(
    list_v2: Callable[[str], list[str]], prefix: str
) -> None:
    assert list_v2(prefix) == [f"{prefix}#key"]


def test_oss2_v1_list_objects_v1_prefix_with_space_is_matched(
    osscse_oss_server: LocalOSSServer, bucket_name: str
) -> None:
    client = oss2.Bucket(
        oss2.Auth(osscse_oss_server.access_key_id, osscse_oss_server.access_key_secret),
        osscse_oss_server.endpoint,
        bucket_name,
    )
    assert [o.key for o in client.list_objects(prefix="a b").object_list] == ["a b#key"]


def test_v4_query_value_with_literal_plus_still_means_plus(osscse_oss_server: LocalOSSServer, bucket_name: str) -> None:
    """``%2B`` on the wire is a plus, ``+`` a space: both SDKs encode a literal plus as ``%2B``."""
    lister = _oss2_lister(osscse_oss_server, bucket_name, oss2.AuthV4)
    assert lister("a+") == ["a+b#key"] and lister("a ") == ["a b#key"]
