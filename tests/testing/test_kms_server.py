"""The local KMS server through the real SDKs: Tea (ACS3 and RPC v1), aliyun-python-sdk-kms, oss2."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable

import pytest
from alibabacloud_kms20160120 import models as kms_models
from alibabacloud_kms20160120.client import Client as TeaKmsClient
from alibabacloud_tea_openapi.exceptions import ClientException as TeaClientException
from alibabacloud_tea_openapi.models import Config
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import RpcRequest
from aliyunsdkkms.request.v20160120 import (
    DecryptRequest,
    DescribeKeyRequest,
    EncryptRequest,
    GenerateDataKeyRequest,
    ReEncryptRequest,
)
from oss2.crypto import AliKMSProvider

from airflow_provider_osscse.testing.kms_server import LocalKMSServer

SIGNATURE_STYLES = pytest.mark.parametrize("signature_algorithm", [None, "v2"], ids=["acs3", "rpc-v1"])


def _alias() -> str:
    return f"alias/test-{uuid.uuid4().hex[:12]}"


def tea_client(
    server: LocalKMSServer,
    signature_algorithm: str | None = None,
    *,
    access_key_id: str | None = None,
    access_key_secret: str | None = None,
    security_token: str | None = None,
) -> TeaKmsClient:
    return TeaKmsClient(
        Config(
            access_key_id=access_key_id or server.access_key_id,
            access_key_secret=access_key_secret or server.access_key_secret,
            security_token=security_token,
            endpoint=server.endpoint,
            protocol="http",
            region_id=server.region,
            signature_algorithm=signature_algorithm,
        )
    )


def tea_error(call: Callable[[], object]) -> TeaClientException:
    with pytest.raises(TeaClientException) as caught:
        call()
    return caught.value


def core_call(server: LocalKMSServer, request: RpcRequest, *, secret: str | None = None) -> dict[str, object]:
    """Run an aliyun-python-sdk-kms request against the local server over plain HTTP."""
    request.set_protocol_type("http")
    request.set_endpoint(server.endpoint)
    client = AcsClient(server.access_key_id, secret or server.access_key_secret, server.region)
    return json.loads(client.do_action_with_exception(request))


# -- Tea SDK, both signature styles ------------------------------------------------------------


@SIGNATURE_STYLES
def test_generate_data_key_blob_decrypts_to_the_same_plaintext(
    osscse_kms_server: LocalKMSServer, signature_algorithm: str | None
) -> None:
    key_id = osscse_kms_server.create_key()
    client = tea_client(osscse_kms_server, signature_algorithm)
    generated = client.generate_data_key(kms_models.GenerateDataKeyRequest(key_id=key_id)).body
    assert generated.key_id == key_id
    assert len(base64.b64decode(generated.plaintext)) == 32
    decrypted = client.decrypt(kms_models.DecryptRequest(ciphertext_blob=generated.ciphertext_blob)).body
    assert (decrypted.plaintext, decrypted.key_id, decrypted.key_version_id) == (
        generated.plaintext,
        key_id,
        generated.key_version_id,
    )


@SIGNATURE_STYLES
def test_encrypt_wraps_the_base64_text_and_decrypt_returns_it(
    osscse_kms_server: LocalKMSServer, signature_algorithm: str | None
) -> None:
    alias = _alias()
    osscse_kms_server.create_key(alias=alias)
    client = tea_client(osscse_kms_server, signature_algorithm)
    plaintext = base64.b64encode(bytes(range(32))).decode()  # contains "+" and "/"
    encrypted = client.encrypt(kms_models.EncryptRequest(key_id=alias, plaintext=plaintext)).body
    assert encrypted.key_id.startswith("key-")
    decrypted = client.decrypt(kms_models.DecryptRequest(ciphertext_blob=encrypted.ciphertext_blob)).body
    assert decrypted.plaintext == plaintext


@SIGNATURE_STYLES
def test_re_encrypt_moves_a_blob_to_the_destination_key_and_context(
    osscse_kms_server: LocalKMSServer, signature_algorithm: str | None
) -> None:
    source, destination = osscse_kms_server.create_key(), osscse_kms_server.create_key()
    client = tea_client(osscse_kms_server, signature_algorithm)
    encrypted = client.encrypt(
        kms_models.EncryptRequest(key_id=source, plaintext="c2VjcmV0", encryption_context={"purpose": "a"})
    ).body
    moved = client.re_encrypt(
        kms_models.ReEncryptRequest(
            ciphertext_blob=encrypted.ciphertext_blob,
            destination_key_id=destination,
            source_encryption_context={"purpose": "a"},
            destination_encryption_context={"purpose": "b"},
        )
    ).body
    assert moved.key_id == destination
    decrypted = client.decrypt(
        kms_models.DecryptRequest(ciphertext_blob=moved.ciphertext_blob, encryption_context={"purpose": "b"})
    ).body
    assert (decrypted.plaintext, decrypted.key_id) == ("c2VjcmV0", destination)


def test_decrypt_and_re_encrypt_answers_name_every_key_involved(osscse_kms_server: LocalKMSServer) -> None:
    """Clients pin on these fields: Decrypt names the key that opened the blob; ReEncrypt names the
    destination (KeyId/KeyVersionId) and the key that decrypted the original (SourceKeyId/...VersionId).
    Read raw through the core SDK, which returns the JSON as is (the Tea model drops SourceKeyId)."""
    source, destination = osscse_kms_server.create_key(), osscse_kms_server.create_key()
    source_version = osscse_kms_server.rotate_key(source)
    encrypt = EncryptRequest.EncryptRequest()
    encrypt.set_KeyId(source)
    encrypt.set_Plaintext("c2VjcmV0")
    blob = core_call(osscse_kms_server, encrypt)["CiphertextBlob"]
    decrypt = DecryptRequest.DecryptRequest()
    decrypt.set_CiphertextBlob(blob)
    decrypted = core_call(osscse_kms_server, decrypt)
    assert set(decrypted) == {"KeyId", "KeyVersionId", "Plaintext", "RequestId"}
    assert (decrypted["KeyId"], decrypted["KeyVersionId"]) == (source, source_version)
    re_encrypt = ReEncryptRequest.ReEncryptRequest()
    re_encrypt.set_CiphertextBlob(blob)
    re_encrypt.set_DestinationKeyId(destination)
    moved = core_call(osscse_kms_server, re_encrypt)
    assert set(moved) == {"KeyId", "KeyVersionId", "CiphertextBlob", "SourceKeyId", "SourceKeyVersionId", "RequestId"}
    destination_version = (
        tea_client(osscse_kms_server)
        .describe_key(kms_models.DescribeKeyRequest(key_id=destination))
        .body.key_metadata.primary_key_version
    )
    assert (moved["KeyId"], moved["KeyVersionId"]) == (destination, destination_version)
    assert (moved["SourceKeyId"], moved["SourceKeyVersionId"]) == (source, source_version)


def test_published_shape_re_encrypt_names_only_the_key_that_decrypted_the_original() -> None:
    with LocalKMSServer("LTAI-published", "published-secret", reencrypt_names_source=False) as server:
        source, destination = server.create_key(), server.create_key()
        client = tea_client(server)
        encrypted = client.encrypt(kms_models.EncryptRequest(key_id=source, plaintext="c2VjcmV0")).body
        re_encrypt = ReEncryptRequest.ReEncryptRequest()
        re_encrypt.set_CiphertextBlob(encrypted.ciphertext_blob)
        re_encrypt.set_DestinationKeyId(destination)
        moved = core_call(server, re_encrypt)
        assert set(moved) == {"KeyId", "KeyVersionId", "CiphertextBlob", "RequestId"}
        assert (moved["KeyId"], moved["KeyVersionId"]) == (source, encrypted.key_version_id)
        decrypted = client.decrypt(kms_models.DecryptRequest(ciphertext_blob=moved["CiphertextBlob"])).body
        assert (decrypted.key_id, decrypted.plaintext) == (destination, "c2VjcmV0")


def test_core_sdk_describe_key_resolves_an_alias_with_rpc_v1_signatures(osscse_kms_server: LocalKMSServer) -> None:
    alias = _alias()
    key_id = osscse_kms_server.create_key(alias=alias)
    describe = DescribeKeyRequest.DescribeKeyRequest()
    describe.set_KeyId(alias)
    assert core_call(osscse_kms_server, describe)["KeyMetadata"]["KeyId"] == key_id
    with pytest.raises(ServerException) as caught:
        core_call(osscse_kms_server, describe, secret="not-the-secret")
    assert caught.value.get_error_code() == "InvalidAccessKeySecret"  # the core SDK's name for a bad signature


@SIGNATURE_STYLES
def test_describe_key_resolves_an_alias_to_its_key_metadata(
    osscse_kms_server: LocalKMSServer, signature_algorithm: str | None
) -> None:
    alias = _alias()
    key_id = osscse_kms_server.create_key(alias=alias, description="for tests")
    metadata = (
        tea_client(osscse_kms_server, signature_algorithm)
        .describe_key(kms_models.DescribeKeyRequest(key_id=alias))
        .body.key_metadata
    )
    assert (metadata.key_id, metadata.key_state, metadata.description) == (key_id, "Enabled", "for tests")
    assert metadata.arn.endswith(f":key/{key_id}")


@SIGNATURE_STYLES
def test_bad_secret_raises_signature_does_not_match_with_the_string_to_sign(
    osscse_kms_server: LocalKMSServer, signature_algorithm: str | None
) -> None:
    client = tea_client(osscse_kms_server, signature_algorithm, access_key_secret="not-the-secret")
    error = tea_error(lambda: client.describe_key(kms_models.DescribeKeyRequest(key_id="key-any")))
    assert (error.status_code, error.code) == (400, "SignatureDoesNotMatch")
    assert "string to sign is:" in error.message


def test_generate_data_key_sizes_follow_key_spec_and_number_of_bytes(osscse_kms_server: LocalKMSServer) -> None:
    key_id = osscse_kms_server.create_key()
    client = tea_client(osscse_kms_server)

    def size(**kwargs: object) -> int:
        body = client.generate_data_key(kms_models.GenerateDataKeyRequest(key_id=key_id, **kwargs)).body
        return len(base64.b64decode(body.plaintext))

    assert (size(key_spec="AES_128"), size(key_spec="AES_256"), size(number_of_bytes=24)) == (16, 32, 24)


def test_generate_data_key_without_plaintext_returns_a_decryptable_blob_only(
    osscse_kms_server: LocalKMSServer,
) -> None:
    key_id = osscse_kms_server.create_key()
    client = tea_client(osscse_kms_server)
    body = client.generate_data_key_without_plaintext(
        kms_models.GenerateDataKeyWithoutPlaintextRequest(key_id=key_id, key_spec="AES_128")
    ).body
    assert "Plaintext" not in body.to_map()
    plaintext = client.decrypt(kms_models.DecryptRequest(ciphertext_blob=body.ciphertext_blob)).body.plaintext
    assert len(base64.b64decode(plaintext)) == 16


def test_rotation_keeps_old_blobs_decryptable_and_new_blobs_use_the_new_version(
    osscse_kms_server: LocalKMSServer,
) -> None:
    alias = _alias()
    osscse_kms_server.create_key(alias=alias)
    client = tea_client(osscse_kms_server)
    old = client.encrypt(kms_models.EncryptRequest(key_id=alias, plaintext="b2xk")).body
    new_version = osscse_kms_server.rotate_key(alias)
    new = client.encrypt(kms_models.EncryptRequest(key_id=alias, plaintext="bmV3")).body
    assert new.key_version_id == new_version != old.key_version_id
    old_plain = client.decrypt(kms_models.DecryptRequest(ciphertext_blob=old.ciphertext_blob)).body
    assert (old_plain.plaintext, old_plain.key_version_id) == ("b2xk", old.key_version_id)
    metadata = client.describe_key(kms_models.DescribeKeyRequest(key_id=alias)).body.key_metadata
    assert metadata.primary_key_version == new_version


def test_encryption_context_is_authenticated_data(osscse_kms_server: LocalKMSServer) -> None:
    key_id = osscse_kms_server.create_key()
    client = tea_client(osscse_kms_server)
    context = {"bucket": "b", "object": "o"}
    blob = client.encrypt(
        kms_models.EncryptRequest(key_id=key_id, plaintext="ZGF0YQ==", encryption_context=context)
    ).body.ciphertext_blob
    reordered = {"object": "o", "bucket": "b"}
    assert (
        client.decrypt(kms_models.DecryptRequest(ciphertext_blob=blob, encryption_context=reordered)).body.plaintext
        == "ZGF0YQ=="
    )
    for wrong in ({"bucket": "b", "object": "other"}, None):
        error = tea_error(
            lambda wrong=wrong: client.decrypt(
                kms_models.DecryptRequest(ciphertext_blob=blob, encryption_context=wrong)
            )
        )
        assert (error.status_code, error.code) == (400, "InvalidCiphertext")


def test_tampered_blob_fails_with_invalid_ciphertext(osscse_kms_server: LocalKMSServer) -> None:
    key_id = osscse_kms_server.create_key()
    client = tea_client(osscse_kms_server)
    blob = client.encrypt(kms_models.EncryptRequest(key_id=key_id, plaintext="ZGF0YQ==")).body.ciphertext_blob
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 0x01
    for bad in (base64.b64encode(bytes(raw)).decode(), "bm90IGEgYmxvYg==", "%%%"):
        error = tea_error(lambda bad=bad: client.decrypt(kms_models.DecryptRequest(ciphertext_blob=bad)))
        assert (error.status_code, error.code) == (400, "InvalidCiphertext")


def test_unknown_key_and_unknown_alias_are_not_found(osscse_kms_server: LocalKMSServer) -> None:
    client = tea_client(osscse_kms_server)
    error = tea_error(lambda: client.encrypt(kms_models.EncryptRequest(key_id="key-missing", plaintext="eA==")))
    assert (error.status_code, error.code) == (404, "Forbidden.KeyNotFound")
    error = tea_error(lambda: client.describe_key(kms_models.DescribeKeyRequest(key_id="alias/none-such")))
    assert (error.status_code, error.code) == (404, "Forbidden.AliasNotFound")


def test_disabled_key_rejects_use_until_enabled_again(osscse_kms_server: LocalKMSServer) -> None:
    alias = _alias()
    osscse_kms_server.create_key(alias=alias)
    client = tea_client(osscse_kms_server)
    blob = client.encrypt(kms_models.EncryptRequest(key_id=alias, plaintext="eA==")).body.ciphertext_blob
    osscse_kms_server.disable_key(alias)
    for call in (
        lambda: client.encrypt(kms_models.EncryptRequest(key_id=alias, plaintext="eA==")),
        lambda: client.decrypt(kms_models.DecryptRequest(ciphertext_blob=blob)),
    ):
        assert tea_error(call).code == "Rejected.Disabled"
    metadata = client.describe_key(kms_models.DescribeKeyRequest(key_id=alias)).body.key_metadata
    assert metadata.key_state == "Disabled"
    osscse_kms_server.enable_key(alias)
    assert client.decrypt(kms_models.DecryptRequest(ciphertext_blob=blob)).body.plaintext == "eA=="


def test_unknown_access_key_id_is_not_found(osscse_kms_server: LocalKMSServer) -> None:
    client = tea_client(osscse_kms_server, access_key_id="LTAI-unknown", access_key_secret="x")
    error = tea_error(lambda: client.describe_key(kms_models.DescribeKeyRequest(key_id="key-any")))
    assert (error.status_code, error.code) == (404, "InvalidAccessKeyId.NotFound")


@SIGNATURE_STYLES
def test_restricted_credential_may_call_only_its_allowed_actions(
    osscse_kms_server: LocalKMSServer, signature_algorithm: str | None
) -> None:
    key_id = osscse_kms_server.create_key()
    blob = (
        tea_client(osscse_kms_server)
        .encrypt(kms_models.EncryptRequest(key_id=key_id, plaintext="eA=="))
        .body.ciphertext_blob
    )
    access_key_id = f"LTAI-decrypt-only-{uuid.uuid4().hex[:8]}"
    osscse_kms_server.add_credential(access_key_id, "decrypt-secret", allowed_actions={"Decrypt"})
    client = tea_client(
        osscse_kms_server, signature_algorithm, access_key_id=access_key_id, access_key_secret="decrypt-secret"
    )
    assert client.decrypt(kms_models.DecryptRequest(ciphertext_blob=blob)).body.plaintext == "eA=="
    error = tea_error(lambda: client.encrypt(kms_models.EncryptRequest(key_id=key_id, plaintext="eA==")))
    assert (error.status_code, error.code) == (403, "Forbidden.NoPermission")
    assert "kms:Encrypt" in error.message


@SIGNATURE_STYLES
def test_sts_credential_requires_its_security_token(
    osscse_kms_server: LocalKMSServer, signature_algorithm: str | None
) -> None:
    access_key_id = f"STS.local-{uuid.uuid4().hex[:8]}"
    osscse_kms_server.add_credential(access_key_id, "sts-secret", security_token="sts-token-value")
    key_id = osscse_kms_server.create_key()
    with_token = tea_client(
        osscse_kms_server,
        signature_algorithm,
        access_key_id=access_key_id,
        access_key_secret="sts-secret",
        security_token="sts-token-value",
    )
    assert with_token.describe_key(kms_models.DescribeKeyRequest(key_id=key_id)).body.key_metadata.key_id == key_id
    without_token = tea_client(
        osscse_kms_server, signature_algorithm, access_key_id=access_key_id, access_key_secret="sts-secret"
    )
    error = tea_error(lambda: without_token.describe_key(kms_models.DescribeKeyRequest(key_id=key_id)))
    assert error.code == "InvalidSecurityToken.MismatchWithAccessKey"


def test_create_key_create_alias_and_list_aliases_over_the_api(osscse_kms_server: LocalKMSServer) -> None:
    client = tea_client(osscse_kms_server)
    key_id = client.create_key(kms_models.CreateKeyRequest(description="api-made")).body.key_metadata.key_id
    alias = _alias()
    client.create_alias(kms_models.CreateAliasRequest(alias_name=alias, key_id=key_id))
    listed = client.list_aliases(kms_models.ListAliasesRequest(page_size=100)).body
    assert {a.alias_name: a.key_id for a in listed.aliases.alias}[alias] == key_id
    duplicate = kms_models.CreateAliasRequest(alias_name=alias, key_id=key_id)
    error = tea_error(lambda: client.create_alias(duplicate))
    assert error.code == "EntityAlreadyExists.Alias"


def test_unsigned_request_gets_a_json_error_body(osscse_kms_server: LocalKMSServer) -> None:
    request = urllib.request.Request(f"{osscse_kms_server.url}/?Action=DescribeKey&KeyId=x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    body = json.loads(caught.value.read())
    assert caught.value.code == 400
    assert set(body) == {"RequestId", "HostId", "Code", "Message"}
    assert body["Code"] == "IncompleteSignature"


# -- aliyun-python-sdk-kms over aliyun-python-sdk-core (RPC v1) ----------------------------------


def test_core_sdk_generate_data_key_encrypt_and_decrypt_round_trip(osscse_kms_server: LocalKMSServer) -> None:
    alias = _alias()
    key_id = osscse_kms_server.create_key(alias=alias)
    context = json.dumps({"x-passphrase": "pw"})
    generate = GenerateDataKeyRequest.GenerateDataKeyRequest()
    generate.set_KeyId(alias)
    generate.set_KeySpec("AES_256")
    generate.set_EncryptionContext(context)
    generated = core_call(osscse_kms_server, generate)
    assert generated["KeyId"] == key_id

    encrypt = EncryptRequest.EncryptRequest()
    encrypt.set_KeyId(alias)
    encrypt.set_Plaintext("aGVsbG8gd29ybGQ=")
    encrypted = core_call(osscse_kms_server, encrypt)

    for blob, ctx, expected in (
        (generated["CiphertextBlob"], context, generated["Plaintext"]),
        (encrypted["CiphertextBlob"], None, "aGVsbG8gd29ybGQ="),
    ):
        decrypt = DecryptRequest.DecryptRequest()
        decrypt.set_CiphertextBlob(blob)
        if ctx is not None:
            decrypt.set_EncryptionContext(ctx)
        assert core_call(osscse_kms_server, decrypt)["Plaintext"] == expected


def test_core_sdk_bad_secret_is_recognised_from_the_string_to_sign(osscse_kms_server: LocalKMSServer) -> None:
    """The core SDK compares our ``string to sign is:`` with its own and renames the error."""
    decrypt = DecryptRequest.DecryptRequest()
    decrypt.set_CiphertextBlob("eA==")
    with pytest.raises(ServerException) as caught:
        core_call(osscse_kms_server, decrypt, secret="not-the-secret")
    assert (caught.value.get_http_status(), caught.value.get_error_code()) == (400, "InvalidAccessKeySecret")


def test_core_sdk_unknown_key_is_forbidden_key_not_found(osscse_kms_server: LocalKMSServer) -> None:
    encrypt = EncryptRequest.EncryptRequest()
    encrypt.set_KeyId("key-does-not-exist")
    encrypt.set_Plaintext("eA==")
    with pytest.raises(ServerException) as caught:
        core_call(osscse_kms_server, encrypt)
    assert caught.value.get_error_code() == "Forbidden.KeyNotFound"


# -- oss2's AliKMSProvider ---------------------------------------------------------------------


@pytest.mark.parametrize("passphrase", [None, "pw"], ids=["no-context", "passphrase-context"])
def test_oss2_kms_provider_data_key_and_iv_round_trip(
    osscse_kms_server: LocalKMSServer, passphrase: str | None
) -> None:
    alias = _alias()
    osscse_kms_server.create_key(alias=alias)
    provider = AliKMSProvider(
        osscse_kms_server.access_key_id,
        osscse_kms_server.access_key_secret,
        osscse_kms_server.region,
        alias,
        passphrase=passphrase,
    )
    # AliKMSProvider builds its own AcsClient for https://kms.<region>.aliyuncs.com; an endpoint
    # entry with an explicit http:// scheme redirects it (the core SDK keeps a scheme it is given).
    provider.kms_client.add_endpoint(osscse_kms_server.region, "Kms", osscse_kms_server.url)
    plain_key, encrypted_key = provider.get_key()
    assert len(plain_key) == 32
    assert provider.decrypt_encrypted_key(encrypted_key) == plain_key
    material = provider.create_content_material()
    assert len(provider.decrypt_encrypted_iv(material.encrypted_iv)) == 16


# -- the Python object -------------------------------------------------------------------------


def test_server_addresses_and_repr_without_the_secret() -> None:
    with LocalKMSServer("AK-local", "very-secret-value", region="cn-shanghai") as server:
        assert server.endpoint == f"127.0.0.1:{server.port}"
        assert server.url == f"http://{server.endpoint}"
        assert server.region == "cn-shanghai"
        assert "very-secret-value" not in repr(server)
        key_id = server.create_key()
        client = tea_client(server)
        described = client.describe_key(kms_models.DescribeKeyRequest(key_id=key_id)).body.key_metadata
        assert described.key_id == key_id
