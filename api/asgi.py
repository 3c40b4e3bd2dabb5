"""The ASGI app built from the environment, for `cdp serve --workers N` and any ASGI server."""

import gc

from api import embedded
from api.app import create_app
from api.logging import configure as configure_logging
from api.settings import get_settings

_settings = get_settings()
configure_logging(_settings.log_level, _settings.json_logs)
app = create_app(_settings, database_url=embedded.database_url(_settings))

# Everything loaded so far (modules, the schema, settings) lives as long as the
# process. Frozen, the cyclic collector no longer walks it on every full
# collection. A bulk call (upsertProfiles of 1,000) allocates tens of thousands
# of containers that reference counting frees anyway, so the default threshold
# runs the collector many times per call. The threshold is not higher because
# each young collection pauses every request in the process for as long as it
# walks what the threshold let pile up, which shows in the lookup's 99th
# percentile. Measured in bench/README.md ("api/asgi.py").
gc.freeze()
gc.set_threshold(10_000)
