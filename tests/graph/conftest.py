"""Fixtures shared by the graph tests."""

from tests.graph.store_contract import kg  # noqa: F401  (the store contract tests' backends)
