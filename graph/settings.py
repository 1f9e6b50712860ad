"""Settings from the environment (prefix ``KGDX_``) and an optional ``kgdx.toml``.

Settings are built on demand with :func:`get_settings`, never at import time, so tests and the API
can construct their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"


class Settings(BaseSettings):
    """Runtime configuration of kgdx.

    Each field can be set as ``KGDX_<FIELD>`` in the environment or as ``<field> = ...`` in a
    ``kgdx.toml`` in the working directory (or the file named by ``KGDX_CONFIG``).
    """

    model_config = SettingsConfigDict(
        env_prefix="KGDX_", extra="ignore", toml_file="kgdx.toml", validate_default=True
    )

    home: Path = Field(default=Path(".kgdx"), description="Working folder for stores and outputs.")
    store: str = Field(default="embedded", description="Graph store backend by name.")
    db_path: Path | None = Field(default=None, description="Embedded database folder.")
    buffer_pool_mb: int | None = Field(
        default=None,
        gt=0,
        description="Embedded database buffer pool in MiB (LadybugDB's default: 80% of RAM).",
    )
    model_dir: Path | None = Field(
        default=None, description="Saved diagnosis model served by the API and CLI."
    )
    neo4j_uri: str = "bolt://localhost:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: str = ""
    neo4j_database: str = "neo4j"
    query_timeout_s: float = Field(default=30.0, gt=0)
    query_row_limit: int = Field(default=10_000, gt=0)
    log_level: str = "INFO"
    seed: int = 0

    @property
    def resolved_db_path(self) -> Path:
        return self.db_path if self.db_path is not None else self.home / "kg.lbug"

    @property
    def resolved_model_dir(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.home / "models" / "default"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        from pydantic_settings import TomlConfigSettingsSource

        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def get_settings(**overrides: Any) -> Settings:
    """Return settings from env and ``kgdx.toml``, with keyword overrides on top."""
    return Settings(**overrides)
