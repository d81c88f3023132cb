"""The base of the provider's operators: the hook's configuration as arguments, and the hook, cached.

Why a base: the five operators move objects through one :class:`EncryptedOSSHook`, so they share its
configuration (connection, CMKs to read with, integrity policy, matdesc, tag binding, multipart
tuning). Declaring those once keeps their names, defaults, validation and documentation the same
everywhere, and each operator is left with its own arguments and a short ``execute``. This follows
the Amazon provider's ``AwsBaseOperator``: the hook is a ``cached_property`` built on first use (in
``execute``, after the template fields were rendered) from :attr:`_hook_parameters`, which an
operator extends when it sets more of the hook (its write CMK, say).

Nothing here touches the network or Airflow's metadata database: constructing an operator in a DAG
file stays free, and a typo in ``integrity`` fails when the DAG is parsed, not in the task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

#: Template fields every operator of this base has (each operator adds its own in front).
OSSCSE_TEMPLATE_FIELDS: tuple[str, ...] = ("oss_conn_id", "decrypt_cmks", "matdesc")


def osscse_template_fields(*own: str) -> tuple[str, ...]:
    """``own`` followed by the shared template fields, each once: an operator lists only its own."""
    return tuple(dict.fromkeys((*own, *OSSCSE_TEMPLATE_FIELDS)))


def cmk_list(cmks: str | Sequence[str] | None) -> list[str]:
    """CMK references as a list: a rendered template may have turned a list into one string."""
    if not cmks:
        return []
    return [cmks] if isinstance(cmks, str) else list(cmks)


#: Failures named in the error of a task that moved many objects (the count is always complete).
MAX_NAMED_FAILURES = 5


def raise_failures(operation: str, failures: Sequence[tuple[str, BaseException]], total: int) -> NoReturn:
    """Fail a task whose many-object ``operation`` finished with ``failures`` (the others succeeded).

    The first object's own error is raised (its class says what went wrong, e.g. ``IntegrityError``),
    with a note naming how many objects failed and which.
    """
    named = "; ".join(f"{name}: {error}" for name, error in failures[:MAX_NAMED_FAILURES])
    more = len(failures) - MAX_NAMED_FAILURES
    first = failures[0][1]
    first.add_note(
        f"{len(failures)} of {total} objects failed to {operation} (the other {total - len(failures)} succeeded): "
        f"{named}" + (f" and {more} more (see the task log)" if more > 0 else "")
    )
    raise first


class EncryptedOSSBaseOperator(BaseOperator):
    """Shared arguments of the transfer operators, and :attr:`hook`, the ``EncryptedOSSHook`` they use.

    :param oss_conn_id: an Airflow ``oss`` or ``oss_cse`` connection (the bucket defaults to its ``schema``).
    :param decrypt_cmks: CMK references allowed to unwrap data keys (the object's CMK identity picks
        among them). A single reference may be given as a string.
    :param integrity: ``require`` | ``if-present`` | ``off`` for reads; ``None`` (default) means the OSS
        connection's ``integrity`` extra, else ``require``.
    :param matdesc: material description entries written to new objects' ``client-side-encryption-matdesc``
        (templated); ``None`` (default) means the OSS connection's ``matdesc`` extra, else none, which
        is what official SDK readers built without a matdesc expect.
    :param bind_integrity_tag: ``True`` (default) binds each written object's integrity tag to its
        bucket and key, so the object swapped or replayed under another name fails verification.
        ``False`` writes unbound tags, giving that up; only for objects that other tools copy or move.
    :param multipart_threshold: uploads of at least this many bytes (or of unknown size) go multipart.
    :param part_size: the multipart part size in bytes.
    :param max_workers: parts of one large object transferred in parallel.
    :param concurrency: objects in flight at once when an operator moves many (a folder, a prefix, a
        rotation): their OSS requests run on that many threads, and their key-service calls are
        batched per group of objects (``transport.bulk``).
    """

    template_fields: Sequence[str] = OSSCSE_TEMPLATE_FIELDS

    def __init__(
        self,
        *,
        oss_conn_id: str = "oss_default",
        decrypt_cmks: str | Sequence[str] = (),
        integrity: str | None = None,
        matdesc: Mapping[str, str] | None = None,
        bind_integrity_tag: bool = True,
        multipart_threshold: int = 32 * 2**20,
        part_size: int = 8 * 2**20,
        max_workers: int = 4,
        concurrency: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if integrity is not None:
            from airflow_provider_osscse.envelope.integrity import IntegrityPolicy

            IntegrityPolicy(integrity)  # a typo fails when the DAG is parsed, not in the task
        self.oss_conn_id = oss_conn_id
        self.decrypt_cmks = decrypt_cmks
        self.integrity = integrity
        self.matdesc = matdesc
        self.bind_integrity_tag = bind_integrity_tag
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.max_workers = max_workers
        self.concurrency = concurrency

    @property
    def decrypt_cmk_list(self) -> list[str]:
        """``decrypt_cmks`` as rendered, as a list (one string is one reference)."""
        return cmk_list(self.decrypt_cmks)

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        """Keyword arguments of :attr:`hook`; an operator extends them (``{**super()._hook_parameters, ...}``)."""
        return {
            "oss_conn_id": self.oss_conn_id,
            "decrypt_cmks": self.decrypt_cmk_list,
            "integrity": self.integrity,
            "matdesc": self.matdesc,
            "bind_integrity_tag": self.bind_integrity_tag,
            "multipart_threshold": self.multipart_threshold,
            "part_size": self.part_size,
            "max_workers": self.max_workers,
        }

    @cached_property
    def hook(self) -> EncryptedOSSHook:
        """The hook, built once per task run from the rendered arguments; its clients are reused."""
        from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

        return EncryptedOSSHook(**self._hook_parameters)
