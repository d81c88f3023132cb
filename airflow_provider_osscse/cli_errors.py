"""``osscse``'s error lines: what went wrong and what to do, in the command line's words.

An error of this package carries its remedy as a *setting* (``exceptions.Remedy``), which
``str(error)`` says in the Python API's words (``pass allow_plaintext=True``). Here the same
settings are said as the flags of the command that failed (``pass --allow-plaintext``), from one
table, :data:`CLI_WORDS` (``rewrap`` reads objects with ``--decrypt-cmk``, not ``--cmk``). An oss2
error that reaches the command line untranslated is translated as the transport would
(``transport.oss_errors``), so no raw ``{'status': ...}`` dict is ever printed.

Which failures are *expected* (one line, exit 1) and which are bugs (a traceback) is decided here
too: :func:`is_expected`.
"""

from __future__ import annotations

from airflow_provider_osscse.airflow_connections import is_connection_not_found
from airflow_provider_osscse.exceptions import OSSCSEError, Remedy, UnauthenticatedObjectError, Words

#: The settings of ``exceptions.PYTHON_WORDS`` as the flags of ``osscse``: ``(with a value, without)``.
CLI_WORDS: Words = {
    "cmk": ("--cmk {value}", "--cmk REF"),
    "read_cmk": ("--cmk {value}", "--cmk REF"),  # get/cat: every --cmk reads
    "new_cmk": ("--cmk {value}", "--cmk NEW_REF"),
    "allow_plaintext": ("--allow-plaintext", "--allow-plaintext"),
    "integrity": ("--integrity {value}", "--integrity if-present"),
    "overwrite": ("--force", "--force"),
}
#: Where a command's flags differ from :data:`CLI_WORDS`.
_COMMAND_WORDS: dict[str, Words] = {
    "rewrap": {
        **CLI_WORDS,
        "cmk": ("--cmk {value}", "--cmk NEW_REF"),  # rewrap's --cmk is the target
        "read_cmk": ("--decrypt-cmk {value}", "--decrypt-cmk OLD_REF"),
    },
}
#: Said for an untagged object refused under ``require`` whose error did not say how to accept it.
_ACCEPT_UNTAGGED = Remedy("integrity", value="if-present", note="to read it anyway (unauthenticated)")


def cli_words(command: str | None) -> Words:
    """The flags of ``command`` for each remedy setting."""
    return _COMMAND_WORDS.get(command or "", CLI_WORDS)


def describe(exc: BaseException, command: str | None = None) -> str:
    """``<Type>: <one line>`` for an expected failure of ``command``, its remedy as that command's flags."""
    if type(exc).__module__.startswith("oss2"):
        from airflow_provider_osscse.transport.oss_errors import OssSite, translate_oss_error

        exc = translate_oss_error(exc, OssSite(command or "request")) or exc
    if isinstance(exc, UnauthenticatedObjectError):
        exc.with_remedy(_ACCEPT_UNTAGGED)
    text = exc.render(cli_words(command)) if isinstance(exc, OSSCSEError) else str(exc)
    lines = text.strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def is_expected(exc: BaseException) -> bool:
    """Our errors, oss2's service errors, a missing connection, and file system errors.

    Decided without importing Airflow (a refused DEST fails before Airflow is imported, if ever)."""
    if isinstance(exc, (OSSCSEError, OSError)) or type(exc).__module__.startswith("oss2"):
        return True
    return is_connection_not_found(exc)
