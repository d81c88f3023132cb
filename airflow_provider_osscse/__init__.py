"""Client-side (envelope) encryption for data moving into Alibaba Cloud OSS, as an Airflow provider.

Layers, imports only pointing down:

1. :mod:`airflow_provider_osscse.envelope` - the pure OSS CSE format and ciphers (no I/O, no Airflow).
2. :mod:`airflow_provider_osscse.keys` - CMK custody: local RSA, Vault Transit, Vault KV, Alibaba KMS.
3. :mod:`airflow_provider_osscse.transport` - encrypted object I/O over oss2.
4. :mod:`airflow_provider_osscse.hooks` - ``EncryptedOSSHook``, the Airflow-facing API.
5. operators, sensors, triggers and the ``osscse`` command line.

:mod:`airflow_provider_osscse.testing` ships local OSS and KMS servers and an OpenBao launcher so
users can test their encrypted DAGs without a cloud.
"""

__version__ = "0.1.0"
