"""Run alembic migrations programmatically (as the owner)."""

from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str, app_role: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["app_role"] = app_role
    return config


def upgrade(database_url: str, app_role: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url, app_role), revision)


def downgrade(database_url: str, app_role: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url, app_role), revision)
