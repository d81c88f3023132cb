"""The texts ``osscse --help`` teaches with: what a CMK reference looks like, with an example each.

Why a module of its own: the command line's behaviour lives in :mod:`airflow_provider_osscse.cli`;
these are words only, shared by the top-level help and every command that takes ``--cmk``, and kept
in one place so the forms shown match :mod:`airflow_provider_osscse.keys.reference`.
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
    "headers only (one HEAD each; nothing is unwrapped, no CMK is needed):\n"
    "  SIZE  ENCRYPTED  CMK  CMK_VERSION  TAG  oss://BUCKET/KEY\n"
    "SIZE is the plaintext size in bytes; ENCRYPTED yes or no; CMK the identity in the object's "
    "headers (e.g. vault-transit:transit/orders, kms:<key id>, rsa-sha256:<fingerprint>) and "
    "CMK_VERSION the CMK version that wrapped the data key, '-' when unknown or not encrypted; TAG "
    "the integrity tag: bound (to this bucket and key), unbound, or none. An object whose headers "
    "cannot be read is reported on stderr, the rest is listed, and the exit status is 1.\n"
    "Example:\n  osscse ls -l oss://my-bucket/reports/"
)
