"""The environment a test runs the `cdp` command line in."""

import os
from pathlib import Path

from tests.support.database import APP_ROLE


def cli_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment, pointed at `database_url`, without a broker or ENV."""
    env = {k: v for k, v in os.environ.items() if k not in {"BROKER_URL", "ENV"}}
    env.update({"DATABASE_URL": database_url, "APP_DB_ROLE": APP_ROLE, "DATA_DIR": str(data_dir)})
    env.update(extra)
    return env
