"""Shared pytest setup: the `integration` marker, applied to everything under tests/integration.

Nothing Kafka-specific lives here; the broker fixture is in tests/integration/conftest.py.
Select with `-m integration` / `-m "not integration"`.
"""
from pathlib import Path

import pytest

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs a real Kafka broker")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)
