"""The one error type of the local KMS server: an API error with its HTTP status and KMS error code.

Everything below the HTTP handler raises :class:`KMSServiceError`; the handler turns it into the JSON
error body the SDKs parse (``{RequestId, HostId, Code, Message}``). Messages never carry key material.

Error codes follow Alibaba Cloud KMS where the public documentation names them
(``Forbidden.KeyNotFound``, ``Forbidden.AliasNotFound``, ``InvalidCiphertext``,
``Forbidden.NoPermission``, ``InvalidAccessKeyId.NotFound``, ``SignatureDoesNotMatch``,
``IncompleteSignature``, ``MissingParameter``, ``InvalidParameter``, ``InvalidAction.NotFound``).
Where the documentation was not conclusive the choice is ours and documented at the raise site
(``Rejected.Disabled`` for a disabled key, ``InvalidSecurityToken.MismatchWithAccessKey`` for a
missing or wrong STS token, ``EntityAlreadyExists.Alias`` for a duplicate alias).
"""

from __future__ import annotations


class KMSServiceError(Exception):
    """A KMS API error: ``status`` is the HTTP status, ``code`` the KMS error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def missing_parameter(name: str) -> KMSServiceError:
    """The error for a mandatory parameter the request did not supply."""
    return KMSServiceError(
        400,
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not supplied.',
    )


def invalid_parameter(name: str, why: str) -> KMSServiceError:
    """The error for a parameter whose value cannot be used."""
    return KMSServiceError(400, "InvalidParameter", f'The parameter "{name}" is not valid: {why}')
