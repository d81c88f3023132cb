"""The texts ``osscse --help`` teaches with: what a CMK reference looks like, with an example each.

Why a module of its own: the command line's behaviour lives in :mod:`airflow_provider_osscse.cli`;
these are words only, shared by the top-level help and every command that takes ``--cmk``, and kept
in one place so the forms shown match :mod:`airflow_provider_osscse.keys.reference`; also the longer
descriptions of ``ls`` and ``inventory``.
"""

from __future__ import annotations

#: Shown at the end of ``osscse --help`` and of each command that takes a CMK reference.
CMK_REFERENCES = """\
CMK references (--cmk, --decrypt-cmk):
  vault-transit://VAULT_CONN/MOUNT/KEY     Vault/OpenBao Transit key (never leaves Vault)
      e.g. vault-transit://vault_default/transit/orders
  vault-kv://VAULT_CONN/MOUNT/PATH[?version=N]
                                           RSA key pair in a Vault KV v2 secret
      e.g. vault-kv://vault_default/secret/osscse/rsa
  kms://KMS_CONN/KEY_ID|alias/NAME         Alibaba Cloud KMS key
      e.g. kms://kms_default/alias/orders
  rsa-file:///ABSOLUTE/PATH.pem            local RSA key (offline use, tests)
      e.g. rsa-file:///etc/osscse/key.pem
VAULT_CONN and KMS_CONN are Airflow connection ids (AIRFLOW_CONN_<ID> or the metadata DB).
"""

#: The top-level epilog: the references, then where to read more.
EPILOG = CMK_REFERENCES + "\nRun 'osscse COMMAND --help' for a command's options; see docs/cli.md.\n"

#: ``--integrity`` of ``get`` and ``cat``.
INTEGRITY_HELP = (
    "require: refuse objects without a valid integrity tag (nothing is written before the tag "
    "verifies); if-present: verify tagged objects, read untagged ones (e.g. written by an official "
    "SDK) UNAUTHENTICATED with a warning; off: no verification. Default: the OSS connection's "
    "'integrity' extra, else require"
)

#: ``ls``: what ``-l``'s columns mean (read from one HEAD per object; nothing is unwrapped).
LS_DESCRIPTION = (
    "Print oss://BUCKET/KEY for every object under the prefix. With -l, one line per object from its "
    "headers only (one HEAD each, eight at a time; nothing is unwrapped, no CMK is needed):\n"
    "  SIZE  ENCRYPTED  CMK  CMK_VERSION  TAG  oss://BUCKET/KEY\n"
    "SIZE is the plaintext size in bytes; ENCRYPTED yes or no; CMK the identity in the object's "
    "headers (e.g. vault-transit:transit/orders, kms:<key id>, rsa-sha256:<fingerprint>) and "
    "CMK_VERSION the CMK version that wrapped the data key, '-' when unknown or not encrypted; TAG "
    "the integrity tag: bound (to this bucket and key), unbound, or none. An object whose headers "
    "cannot be read is reported on stderr, the rest is listed, and the exit status is 1.\n"
    "Example:\n  osscse ls -l oss://my-bucket/reports/"
)

#: ``inventory``: what a record holds and what ``--summary`` adds up (read from one HEAD per object).
INVENTORY_DESCRIPTION = (
    "Stream one record per object under the prefix, from its headers only (concurrent HEADs; nothing "
    "is unwrapped, no CMK and no key service is needed), in listing order and in constant memory "
    "whatever the number of objects. Columns (CSV) or keys (JSON lines): bucket, key, size, "
    "last_modified (UTC), encrypted, wrap_alg, cmk, key_version, integrity_tag (bound, unbound or "
    "absent), content_type, matdesc, error. cmk is the CMK identity in the object's headers; for objects "
    "of the official SDKs, which write none, matdesc:<JSON> or unidentified:<wrap-alg>. An object that "
    "cannot be read is a record with error set (and a line on stderr); the rest is listed and the exit "
    "status is 1. A one-line tally goes to stderr at the end.\n"
    "With --summary only the summary is printed: counts and bytes of all, encrypted, plaintext, "
    "untagged and unbound-tag objects, stale ones (with --current-version), per CMK and per CMK "
    "version, and the errors; one JSON document, or a CSV table (measure,cmk,key_version,objects,bytes) "
    "with --format csv.\n"
    "Examples:\n"
    "  osscse inventory oss://my-bucket/exports/ > inventory.jsonl\n"
    "  osscse inventory oss://my-bucket/exports/ --format csv --summary \\\n"
    "      --current-version vault-transit:transit/orders=v4"
)
