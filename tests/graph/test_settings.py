"""Settings come from the environment and a TOML file; bad values are the project's ConfigError."""

from __future__ import annotations

import subprocess
import sys

import pytest

from graph.errors import ConfigError
from graph.settings import get_settings


def test_environment_and_toml(monkeypatch, tmp_path):
    config = tmp_path / "site.toml"
    config.write_text('store = "neo4j"\nquery_row_limit = 50\nlog_level = "debug"\n')
    monkeypatch.setenv("KGDX_CONFIG", str(config))
    monkeypatch.setenv("KGDX_QUERY_ROW_LIMIT", "70")
    settings = get_settings()
    assert settings.store == "neo4j"  # from the file
    assert settings.query_row_limit == 70  # the environment wins
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("KGDX_BUFFER_POOL_MB", "0", "KGDX_BUFFER_POOL_MB"),
        ("KGDX_QUERY_TIMEOUT_S", "abc", "KGDX_QUERY_TIMEOUT_S"),
        ("KGDX_LOG_LEVEL", "LOUD", "KGDX_LOG_LEVEL"),
    ],
)
def test_bad_values_are_config_errors(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=message):
        get_settings()


def test_bad_toml_and_missing_config_file(monkeypatch, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("store = \n")
    monkeypatch.setenv("KGDX_CONFIG", str(broken))
    with pytest.raises(ConfigError, match="not valid TOML"):
        get_settings()
    monkeypatch.setenv("KGDX_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="not a file"):
        get_settings()


def test_cli_reports_bad_settings_in_one_line(tmp_path):
    env = {"KGDX_BUFFER_POOL_MB": "0", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "api.cli", "kg", "stats"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 2
    assert "KGDX_BUFFER_POOL_MB" in run.stderr and "Traceback" not in run.stderr
