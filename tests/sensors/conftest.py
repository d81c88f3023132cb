from tests.operators.fixtures import osscse_services, postgres_server  # noqa: F401 - fixtures
