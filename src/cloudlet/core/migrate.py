"""Alembic, driven from code: ``cloudlet migrate`` and ``cloudlet serve`` call this."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from cloudlet.core.settings import Settings


def _candidates() -> tuple[Path, ...]:
    # The repo's migrations/ in a checkout; the working folder for an installed copy.
    return (
        Path(__file__).resolve().parents[3] / "migrations",
        Path.cwd() / "migrations",
    )


def alembic_config(settings: Settings) -> Config:
    location = next((p for p in _candidates() if (p / "env.py").exists()), None)
    if location is None:
        raise RuntimeError("migrations folder not found")
    config = Config()
    config.set_main_option("script_location", str(location))
    config.set_main_option("sqlalchemy.url", settings.resolved_database_url)
    return config


def upgrade(settings: Settings, revision: str = "heads") -> None:
    """Bring the database up to every family's newest revision."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), revision)
