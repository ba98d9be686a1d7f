"""Settings from ``CLOUDLET_*`` environment variables and an optional TOML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cloudlet.gateway.config import GatewaySettings
from cloudlet.integrations.config import HomeAssistantSettings, MetricsSettings
from cloudlet.irrigation.config import IrrigationSettings
from cloudlet.ota.config import OtaSettings
from cloudlet.scale.config import ScaleSettings

ALL_FAMILIES = ("scale", "irrigation", "ota", "gateway")


class Settings(BaseSettings):
    """Everything Cloudlet can be told; embedded defaults need none of it."""

    model_config = SettingsConfigDict(
        env_prefix="CLOUDLET_", env_nested_delimiter="__", extra="ignore"
    )
    config_file: ClassVar[str | None] = os.environ.get("CLOUDLET_CONFIG")

    data_dir: Path = Path("data")
    # Empty: SQLite file in data_dir. Otherwise an SQLAlchemy async URL.
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    families: list[str] = Field(default_factory=lambda: list(ALL_FAMILIES))
    # Key for secrets at rest; empty: generated once into data_dir/secret.key.
    secret_key: str = ""
    log_json: bool = False
    # Proxies whose X-Forwarded-For is believed (addresses or CIDR networks), e.g. the nginx
    # in front. Anyone else is seen at its own address.
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    # How often expired nonces, captchas, counters and tokens are deleted (0: never).
    purge_interval_s: float = 600.0
    # Device writes of every family that arrive together share one transaction and one
    # commit (core.writer), on SQLite and PostgreSQL.
    group_commit: bool = True
    # Without group commit on PostgreSQL: most device writes in flight at once; the rest
    # wait their turn in order (below the pool's size, so a burst queues instead of timing out).
    max_concurrent_writes: int = 16

    scale: ScaleSettings = Field(default_factory=ScaleSettings)
    irrigation: IrrigationSettings = Field(default_factory=IrrigationSettings)
    ota: OtaSettings = Field(default_factory=OtaSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    homeassistant: HomeAssistantSettings = Field(default_factory=HomeAssistantSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @model_validator(mode="after")
    def _known_families(self) -> Settings:
        unknown = set(self.families) - set(ALL_FAMILIES)
        if unknown:
            raise ValueError(f"unknown families: {sorted(unknown)}")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'cloudlet.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("CLOUDLET_CONFIG")
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


class ConfigError(Exception):
    """The configuration cannot be used as given (said in one line, no traceback)."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and config file, with explicit overrides on top."""
    path = os.environ.get("CLOUDLET_CONFIG")
    if path and not Path(path).is_file():
        raise ConfigError(f"CLOUDLET_CONFIG names {path}, which is not a readable file")
    return Settings(**overrides)


def environment_names(model: type[BaseModel] = Settings, prefix: str = "CLOUDLET_") -> list[str]:
    """Every setting's environment variable, nested models flattened with ``__``."""
    names: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.extend(environment_names(annotation, f"{prefix}{name.upper()}__"))
        else:
            names.append(f"{prefix}{name.upper()}")
    return names
