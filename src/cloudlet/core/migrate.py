"""Alembic, driven from code: ``cloudlet migrate`` and ``cloudlet serve`` call this."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from cloudlet.core.settings import Settings

# Shipped inside the package (package data), so an installed wheel migrates from any folder.
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(settings: Settings) -> Config:
    if not (MIGRATIONS / "env.py").exists():
        raise RuntimeError(f"migrations not found in {MIGRATIONS} (a broken install?)")
    location = MIGRATIONS
    config = Config()
    config.set_main_option("script_location", str(location))
    config.set_main_option("sqlalchemy.url", settings.resolved_database_url)
    return config


def upgrade(settings: Settings, revision: str = "heads") -> None:
    """Bring the database up to every family's newest revision."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), revision)
