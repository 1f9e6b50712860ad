"""Settings from the environment (prefix ``KGDX_``) and an optional ``kgdx.toml``.

Settings are built on demand with :func:`get_settings`, never at import time, so tests and the API
can construct their own.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
CONFIG_FILE = "kgdx.toml"  # read from the working directory unless KGDX_CONFIG names another

ApiRole = Literal["clinician", "researcher", "ingest", "admin"]


class ApiKey(BaseModel):
    """One REST API key as configured: who holds it, its role, and the SHA-256 of the key.

    Only the hash is ever configured (``kgdx keys create`` prints the entry). Keys are 32 random
    bytes, so a plain SHA-256 is enough: a slow password hash guards low-entropy secrets.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
    role: ApiRole
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the whole key")


class Settings(BaseSettings):
    """Runtime configuration of kgdx.

    Each field can be set as ``KGDX_<FIELD>`` in the environment or as ``<field> = ...`` in a
    ``kgdx.toml`` in the working directory (or the file named by ``KGDX_CONFIG``); the
    environment wins over the file.
    """

    model_config = SettingsConfigDict(env_prefix="KGDX_", extra="ignore", validate_default=True)

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
    # The report extractor's matcher and linker, built from the KG once per KG content hash
    # (extractors/text/cache.py); the folder is written by kgdx only (docs/extraction-cache.md).
    extract_cache: bool = Field(
        default=True, description="Keep the report extractor's KG-derived parts on disk."
    )
    extract_cache_dir: Path | None = Field(
        default=None, description="Folder of the report extractor cache (default: <home>/cache)."
    )
    extract_warmup: bool = Field(
        default=True, description="The REST service makes the report extractor at startup."
    )
    # The REST service's GIL switch interval (sys.setswitchinterval; CPython's default 5 ms).
    # A diagnosis releases the GIL at every store call and tensor op and waits up to one
    # interval to get it back from a busy event loop; bench/api_load.py: 0.5 ms took the
    # 20-client model-run phase from 45 to 63-66 req/s (p99 720 -> 400-440 ms).
    server_store_threads: int = Field(
        default=1,
        ge=0,
        description="Threads per in-process query of the REST service's embedded store (0: all "
        "cores). Its queries are point reads and writes, ~2x faster on one thread.",
    )
    server_model_worker: bool = Field(
        default=True,
        description="Score diagnoses in a model worker process (api/model_worker.py) so they "
        "use a second core; the embedded store only. False: in the server process.",
    )
    # How the REST service's event loop is shared between diagnoses and every other request
    # (api/loop_share.py): a batch of diagnosis store stages runs for up to
    # server_stage_batch_s of loop time, then the others get server_read_share times as long
    # (and at least one round of the loop). A higher share favours reads, a lower diagnoses.
    server_stage_batch_s: float = Field(
        default=0.020,
        gt=0,
        le=1.0,
        description="Loop time one batch of diagnosis store stages may take (seconds).",
    )
    server_read_share: float = Field(
        default=0.5,
        ge=0,
        le=10,
        description="The other requests' loop time after a batch of diagnosis stages, as a "
        "multiple of the batch's.",
    )
    server_switch_interval_s: float = Field(
        default=0.0005,
        gt=0,
        le=0.1,
        description="The REST service's GIL switch interval in seconds.",
    )
    neo4j_uri: str = "bolt://localhost:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: str = ""
    neo4j_database: str = "neo4j"
    query_timeout_s: float = Field(default=30.0, gt=0)
    query_row_limit: int = Field(default=10_000, gt=0)
    # Researcher queries of the embedded store run in sandboxed worker processes
    # (graph.query_runner); the byte cap applies to Neo4j too.
    query_max_bytes: int = Field(
        default=16 * 1024 * 1024, gt=0, description="Cap on a query's answer, in bytes."
    )
    query_memory_mb: int = Field(
        default=2048, ge=256, description="Memory cap of a query worker process, in MiB."
    )
    query_workers: int = Field(default=2, gt=0, description="Queries run at once, at most.")
    query_warm_workers: int = Field(
        default=1, ge=0, description="Query workers kept started ahead of the next query."
    )
    # REST input limits (docs/rest.md, "Errors and limits"): a larger body answers 413 before it
    # is read further; a longer report answers 422 before anything is written.
    max_request_bytes: int = Field(
        default=8 * 1024 * 1024, gt=0, description="Largest REST request body in bytes (8 MiB)."
    )
    max_report_chars: int = Field(
        default=200_000, gt=0, description="Longest report text the REST API stores, in characters."
    )
    # A report of one word repeated 30,000 times yields 30,000 findings: ~70 s of store writes
    # under the store lock and GBs of buffer pool. Checked before anything is written.
    max_patient_findings: int = Field(
        default=2_000, gt=0, description="Most findings one stored patient may have."
    )
    # Images outside the image model's scope (an MR, a CT, a knee, a lateral view: see
    # docs/image-scope.md): "refuse" them (InputError, nothing scored) or "force" scoring, their
    # findings marked out_of_scope and left out of diagnoses. ``--force`` on the CLI is "force".
    image_out_of_scope: Literal["refuse", "force"] = Field(
        default="refuse", description="What image commands do with out-of-scope images."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    seed: int = 0
    # KGDX_API_KEYS is JSON ('[{"name": ..., "role": ..., "sha256": ...}]'; empty: none), or
    # [[api_keys]] tables in kgdx.toml. No keys: the REST API is open and serves loopback only.
    api_keys: Annotated[tuple[ApiKey, ...], NoDecode] = ()

    @field_validator("api_keys", mode="before")
    @classmethod
    def _api_keys_json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return ()
        try:
            return json.loads(value)
        except json.JSONDecodeError:  # the message never repeats the value: it may hold a key
            raise ValueError(
                'not JSON; write [{"name": ..., "role": ..., "sha256": ...}]'
            ) from None

    @field_validator("api_keys")
    @classmethod
    def _api_keys_unique(cls, value: tuple[ApiKey, ...]) -> tuple[ApiKey, ...]:
        for what in ("name", "sha256"):
            seen = [getattr(key, what) for key in value]
            if len(set(seen)) != len(seen):
                raise ValueError(f"two API keys share a {what}; each key needs its own entry")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @property
    def resolved_db_path(self) -> Path:
        return self.db_path if self.db_path is not None else self.home / "kg.lbug"

    @property
    def resolved_extract_cache_dir(self) -> Path:
        return self.extract_cache_dir if self.extract_cache_dir is not None else self.home / "cache"

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

        toml_file = os.environ.get("KGDX_CONFIG", CONFIG_FILE)
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))


def get_settings(**overrides: Any) -> Settings:
    """Return settings from env and ``kgdx.toml``, with keyword overrides on top.

    Raises:
        ConfigError: a value that does not validate, a ``kgdx.toml`` that is not TOML, or a
            ``KGDX_CONFIG`` file that does not exist.
    """
    from graph.errors import ConfigError

    config = os.environ.get("KGDX_CONFIG")
    if config and not Path(config).is_file():
        raise ConfigError(f"KGDX_CONFIG names {config}, which is not a file")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"KGDX_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(
            f"invalid settings ({problems}); fix the environment or kgdx.toml"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config or CONFIG_FILE} is not valid TOML: {exc}") from None
