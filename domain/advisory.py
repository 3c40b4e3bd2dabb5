"""Transaction-scoped advisory locks, named by a text key.

The pattern they serve: writers that queue work for a job hold a key shared
until they commit, and the job, before it takes its request row, holds the
key exclusively, so it waits for the writers in flight and then sees their
rows. Shared advisory locks write nothing; a share lock on one row taken by
many concurrent transactions made a multixact for each (bench/README.md,
"Segments").
"""

from domain.uow import Statement


def xact_lock(key: str, *, shared: bool) -> Statement:
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    return Statement(f"SELECT {function}(hashtextextended(%(key)s, 0))", {"key": key})
