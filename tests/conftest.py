"""Shared fixtures: paths to real data (skipping cleanly when absent) and a fresh embedded store."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """Give back to the collector what a test's app froze (``api/long_lived.py``): in a server
    frozen objects live as long as the process, in the suite each test's app and extractor are
    dropped, and a frozen cycle is never freed."""
    yield
    if gc.get_freeze_count():
        gc.unfreeze()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that use it skip when it is not there (a user's machine)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture()
def settings(tmp_path: Path):
    from graph.settings import Settings

    return Settings(home=tmp_path / "home", db_path=tmp_path / "db.lbug")


@pytest.fixture()
def store(settings) -> Iterator:
    """A fresh embedded LadybugDB store in a temporary folder."""
    from graph.stores import open_store

    with open_store("embedded", settings=settings) as opened:
        yield opened


@pytest.fixture()
def transactions(store, monkeypatch) -> list[str]:
    """The transaction statements (BEGIN, COMMIT, ROLLBACK) ``store``'s connection runs from
    now on, in order."""
    seen: list[str] = []
    execute = store.connection.execute

    def counted(cypher, *args):
        if cypher in ("BEGIN TRANSACTION", "COMMIT", "ROLLBACK"):
            seen.append(cypher)
        return execute(cypher, *args)

    monkeypatch.setattr(store.connection, "execute", counted)
    return seen
