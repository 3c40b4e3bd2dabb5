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
# of containers that reference counting frees anyway: at the default threshold
# of 700 the collector ran some 40 times per call and took about 8% of the
# server's time (measured with `python -m bench.upsert`). Each young collection
# pauses every request in the process for as long as it walks what the
# threshold let pile up, though: at 50,000 the 99th percentile of
# `python -m bench.lookup --rate 100` was 29-32 ms over four runs, at 10,000
# 13-24 ms over five, while upsert lost about 5% of its rate.
gc.freeze()
gc.set_threshold(10_000)
