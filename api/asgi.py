"""The ASGI app built from the environment, for `cdp serve --workers N` and any ASGI server."""

from api import embedded
from api.app import create_app
from api.logging import configure as configure_logging
from api.settings import get_settings

_settings = get_settings()
configure_logging(_settings.log_level, _settings.json_logs)
app = create_app(_settings, database_url=embedded.database_url(_settings))
