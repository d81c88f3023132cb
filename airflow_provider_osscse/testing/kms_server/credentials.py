"""Access keys the server accepts, each optionally bound to an STS token and limited to some actions."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from airflow_provider_osscse.testing.kms_server.errors import KMSServiceError


@dataclass(frozen=True)
class Credential:
    """One access key. ``allowed_actions`` ``None`` means every action (least privilege is opt-in)."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    allowed_actions: frozenset[str] | None = None
    security_token: str | None = field(default=None, repr=False)

    def check_security_token(self, presented: str | None) -> None:
        """A credential configured with a token requires that exact token, and one without refuses any.

        Our choice of code (``InvalidSecurityToken.MismatchWithAccessKey``, 400): the STS family the
        real gateway uses for a token that does not belong to the access key.
        """
        expected = self.security_token or ""
        if not hmac.compare_digest(expected.encode("utf-8"), (presented or "").encode("utf-8")):
            raise KMSServiceError(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "The security token does not match the AccessKeyId (missing, wrong, or not expected).",
            )

    def check_action(self, action: str) -> None:
        if self.allowed_actions is not None and action not in self.allowed_actions:
            raise KMSServiceError(
                403,
                "Forbidden.NoPermission",
                f"This operation is forbidden by permission system: AccessKeyId {self.access_key_id} "
                f"is not allowed to call kms:{action}.",
            )


class CredentialRegistry:
    """Thread-safe map of access key id to :class:`Credential`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._credentials: dict[str, Credential] = {}

    def add(
        self,
        access_key_id: str,
        access_key_secret: str,
        *,
        allowed_actions: Iterable[str] | None = None,
        security_token: str | None = None,
    ) -> None:
        credential = Credential(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            allowed_actions=None if allowed_actions is None else frozenset(allowed_actions),
            security_token=security_token,
        )
        with self._lock:
            self._credentials[access_key_id] = credential

    def get(self, access_key_id: str) -> Credential:
        with self._lock:
            credential = self._credentials.get(access_key_id)
        if credential is None:
            raise KMSServiceError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        return credential
