"""A segment definition compiled to one SQL statement: the segments context's query builder.

The statement selects the ids of the live, unrestricted profiles that match.
Every value travels as a parameter; the SQL text is made only of the fixed
fragments below, so a definition cannot inject SQL. Every condition is
written so that it is true or false, never NULL, which gives `not` the
two-valued meaning of `evaluate` (model.py states the shared rules).

Two shapes, one set of rules:
- a full evaluation (`members_query`) selects each set of profile ids once
  (`p.id IN (...)`), not a subquery per profile, so that it hashes each set;
- the verdicts of a few profiles (`verdicts_query`) look each profile up by
  id and probe its rows through their indexes, in subqueries of the select
  list, its events once for every event condition together. PostgreSQL
  turns subqueries of a WHERE clause into joins, and a join is planned from
  statistics, which lag behind a burst of new profiles, and may then read a
  whole table once per profile (bench/README.md, "Segments"). A subquery of
  the select list stays a probe per profile.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import orjson

from cdp.segments import model as m
from consent.model import MARKETING, is_marketing

_STRING, _NUMBER, _ARRAY = "'string'", "'number'", "'array'"


@dataclass
class CompiledQuery:
    """SQL with psycopg named placeholders, and its parameters."""

    sql: str
    params: dict[str, Any]


@dataclass
class _Builder:
    workspace_id: UUID
    now: datetime
    per_profile: bool
    digest_pads: tuple[bytes, bytes] | None
    params: dict[str, Any] = field(default_factory=dict)
    # Per profile: each event condition's count, read in one pass over the
    # profile's events (`verdicts_query`); the conditions refer to `p.counted`.
    counted: list[str] = field(default_factory=list)
    counted_names: set[str] = field(default_factory=set)
    counted_since: list[timedelta | None] = field(default_factory=list)

    def param(self, value: Any, cast: str = "") -> str:
        name = f"v{len(self.params)}"
        self.params[name] = value
        return f"%({name})s{cast}"

    def json(self, value: Any) -> str:
        return self.param(orjson.dumps(value).decode(), "::jsonb")

    def since(self, window: timedelta) -> str:
        return self.param(self.now - window, "::timestamptz")

    # --- nodes ------------------------------------------------------------

    def node(self, node: m.Node) -> str:  # noqa: PLR0911 - one branch per kind of node
        if isinstance(node, m.All):
            return "(" + " AND ".join(self.node(c) for c in node.children) + ")"
        if isinstance(node, m.AnyOf):
            return "(" + " OR ".join(self.node(c) for c in node.children) + ")"
        if isinstance(node, m.Not):
            return f"(NOT {self.node(node.child)})"
        if isinstance(node, m.TraitCondition):
            return self.at_path("p.traits", node.path, node.comparison)
        if isinstance(node, m.ComputedCondition):
            return self.computed(node)
        if isinstance(node, m.EventCondition):
            return self.event(node)
        if isinstance(node, m.SegmentCondition):
            return self.profile_set(
                "SELECT s.profile_id FROM segment_members s WHERE s.workspace_id = %(ws)s "
                f"AND s.segment_id = {self.param(node.segment_id)}",
                "s.profile_id",
            )
        if isinstance(node, m.IdentifierCondition):
            return self.profile_set(
                "SELECT i.profile_id FROM identities i WHERE i.workspace_id = %(ws)s "
                f"AND i.kind = {self.param(node.kind)}",
                "i.profile_id",
            )
        return self.contactable(node)

    def profile_set(self, select: str, column: str) -> str:
        if self.per_profile:
            return f"(EXISTS ({select} AND {column} = p.id))"
        return f"(p.id IN ({select}))"

    # --- values at a path -------------------------------------------------

    def at_path(self, document: str, path: tuple[str, ...], c: m.Comparison) -> str:
        # Traits and properties are objects, where one key reads the same with
        # `->` as with `#>`, and `->` is cheaper.
        found = (
            f"({document} -> {self.param(path[0])})"
            if len(path) == 1
            else f"({document} #> {self.param(list(path), '::text[]')})"
        )
        return self.compare(found, c)

    def equals_any(self, found: str, values: list[Any]) -> str:
        if len(values) == 1:
            return f"COALESCE({found} = {self.json(values[0])}, false)"
        listed = self.param([orjson.dumps(v).decode() for v in values], "::jsonb[]")
        return f"COALESCE({found} = ANY({listed}), false)"

    def compare(self, found: str, c: m.Comparison) -> str:  # noqa: PLR0911 - one branch per operator
        present = f"({found} IS NOT NULL AND jsonb_typeof({found}) <> 'null')"
        if c.op in (m.EQ, m.IN):
            return self.equals_any(found, [c.value] if c.op == m.EQ else list(c.value))
        if c.op == m.EXISTS:
            return present
        if c.op == m.NOT_EXISTS:
            return f"(NOT {present})"
        if c.op == m.NEQ:
            return f"({present} AND {found} <> {self.json(c.value)})"
        if c.op == m.NOT_IN:
            values = self.param([orjson.dumps(v).decode() for v in c.value], "::jsonb[]")
            return f"({present} AND NOT ({found} = ANY({values})))"
        if c.op in m.ORDERING:
            return self.ordering(found, c.op, c.value)
        if c.op == m.BETWEEN:
            low, high = c.value
            return f"({self.ordering(found, m.GTE, low)} AND {self.ordering(found, m.LTE, high)})"
        if c.op == m.CONTAINS:
            array = f"WHEN {_ARRAY} THEN {found} @> jsonb_build_array({self.json(c.value)})"
            text = (
                f"WHEN {_STRING} THEN strpos({found} #>> '{{}}', {self.param(c.value)}) > 0"
                if isinstance(c.value, str)
                else ""
            )
            return f"(CASE jsonb_typeof({found}) {text} {array} ELSE false END)"
        if c.op == m.STARTS_WITH:
            return (
                f"(CASE WHEN jsonb_typeof({found}) = {_STRING} "
                f"THEN starts_with({found} #>> '{{}}', {self.param(c.value)}) ELSE false END)"
            )
        instant = (
            f"cdp_instant(CASE WHEN jsonb_typeof({found}) = {_STRING} THEN {found} #>> '{{}}' END)"
        )
        return self.window(instant, c)

    def ordering(self, found: str, op: str, value: Any) -> str:
        sign = {m.GT: ">", m.GTE: ">=", m.LT: "<", m.LTE: "<="}[op]
        if isinstance(value, str):
            return (
                f"(CASE WHEN jsonb_typeof({found}) = {_STRING} THEN ({found} #>> '{{}}') "
                f'COLLATE "C" {sign} {self.param(value)} COLLATE "C" ELSE false END)'
            )
        return (
            f"(CASE WHEN jsonb_typeof({found}) = {_NUMBER} "
            f"THEN ({found})::numeric {sign} {self.param(repr(value), '::numeric')} ELSE false END)"
        )

    def window(self, instant: str, c: m.Comparison) -> str:
        since = self.since(c.value)
        if c.op == m.WITHIN:
            now = self.param(self.now, "::timestamptz")
            return f"COALESCE({instant} >= {since} AND {instant} <= {now}, false)"
        return f"COALESCE({instant} < {since}, false)"

    # --- computed traits ----------------------------------------------------

    def computed(self, node: m.ComputedCondition) -> str:
        f, c = node.field, node.comparison
        found = f"(p.computed -> {self.param(f.key)})"
        if f.default is not None:
            found = f"COALESCE({found}, {self.json(f.default)})"
        if f.kind == "number":
            return self.compare(found, c)
        instant = (
            f"cdp_instant(CASE WHEN jsonb_typeof({found}) = {_STRING} THEN {found} #>> '{{}}' END)"
        )
        if c.op in (m.EXISTS, m.NOT_EXISTS):
            return f"({instant} IS {'NOT ' if c.op == m.EXISTS else ''}NULL)"
        if c.op in (m.WITHIN, m.BEFORE):
            return self.window(instant, c)
        if c.op == m.BETWEEN:
            low, high = (self.param(v, "::timestamptz") for v in c.value)
            return f"COALESCE({instant} BETWEEN {low} AND {high}, false)"
        sign = {m.GT: ">", m.GTE: ">=", m.LT: "<", m.LTE: "<="}[c.op]
        return f"COALESCE({instant} {sign} {self.param(c.value, '::timestamptz')}, false)"

    # --- events -------------------------------------------------------------

    def event(self, node: m.EventCondition) -> str:
        conditions = ["e.workspace_id = %(ws)s", f"e.name = {self.param(node.name)}"]
        if node.window is not None:
            conditions.append(f"e.timestamp >= {self.since(node.window)}")
        conditions.extend(self.at_path("e.properties", f.path, f.comparison) for f in node.where)
        sign = {m.EQ: "=", m.NEQ: "<>", m.GT: ">", m.GTE: ">=", m.LT: "<", m.LTE: "<="}
        threshold = f"{sign[node.count.op]} {self.param(node.count.value, '::bigint')}"
        if self.per_profile:
            self.counted.append(" AND ".join(conditions[1:]))
            self.counted_names.add(node.name)
            self.counted_since.append(node.window)
            return f"(p.counted[{len(self.counted)}] {threshold})"
        holds = f"count(*) {threshold}"
        # A profile with no such event is absent from the grouped set. When a
        # count of zero satisfies the condition, the set is that of the
        # profiles whose count fails it, and the condition is not being in it.
        zero_holds = m.count_matches(node.count.op, 0, node.count.value)
        if node.count in (m.Comparison(m.GTE, 1), m.Comparison(m.GT, 0)):
            where = " AND ".join(conditions)
            return f"(p.id IN (SELECT e.profile_id FROM events e WHERE {where}))"
        if node.count in (m.Comparison(m.EQ, 0), m.Comparison(m.LT, 1), m.Comparison(m.LTE, 0)):
            # "Did not": an anti-join, which lets the planner start from the
            # other conditions and probe each candidate's events by index.
            where = " AND ".join([*conditions, "e.profile_id = p.id"])
            return f"(NOT EXISTS (SELECT 1 FROM events e WHERE {where}))"
        select = (
            f"SELECT e.profile_id FROM events e WHERE {' AND '.join(conditions)} "
            f"GROUP BY e.profile_id HAVING {'NOT ' if zero_holds else ''}({holds})"
        )
        return f"(p.id {'NOT IN' if zero_holds else 'IN'} ({select}))"

    # --- the contact gate -----------------------------------------------------

    def contactable(self, node: m.ContactableCondition) -> str:
        """`consent.model.decide` in SQL, for the channel and purpose of the node."""
        if self.digest_pads is None:
            raise ValueError("a contactable condition needs the workspace's digest keys")
        channel, purpose = self.param(node.channel), self.param(node.purpose)
        # The gate reads the ledger and the suppression list as of now.
        now = self.param(self.now, "::timestamptz")
        general = is_marketing(node.purpose) and node.purpose != MARKETING
        latest = (
            "SELECT r.status, r.recorded_at FROM consent_records r WHERE r.workspace_id = %(ws)s "
            "AND r.profile_id = ANY(subject.ids) AND r.purpose = {} AND r.channel = {} "
            "AND r.recorded_at <= {} ORDER BY r.recorded_at DESC, r.id DESC LIMIT 1"
        )
        own = latest.format(purpose, channel, now)
        gen = (
            latest.format(self.param(MARKETING), channel, now)
            if general
            else "SELECT NULL::text AS status, NULL::timestamptz AS recorded_at"
        )
        status = (
            "(CASE WHEN own.status IS NULL THEN gen.status "
            "WHEN own.status = 'GRANTED' AND gen.status <> 'GRANTED' "
            "AND gen.recorded_at > own.recorded_at THEN gen.status ELSE own.status END)"
        )
        default = "false" if is_marketing(node.purpose) else "true"
        covers = (
            f"s.purpose IN ('*', {purpose}, {self.param(MARKETING)})"
            if is_marketing(node.purpose)
            else f"s.purpose IN ('*', {purpose})"
        )
        marketing_entry = (
            "(own.status IS NOT NULL AND (own.status <> 'GRANTED' OR own.recorded_at > s.created_at))"
            " OR (gen.status = 'GRANTED' AND gen.recorded_at > s.created_at)"
        )
        own_entry = "own.status = 'GRANTED' AND own.recorded_at > s.created_at"
        resubscribed = (
            f"(CASE WHEN s.purpose = {self.param(MARKETING)} THEN {marketing_entry} ELSE {own_entry} END)"
            if general
            else f"({own_entry})"
        )
        inner_pad, outer_pad = self.digest_pads
        digest = f"cdp_identifier_digest({self.param(inner_pad)}, {self.param(outer_pad)}, i.kind, i.value)"
        suppressed = (
            "EXISTS (SELECT 1 FROM identities i JOIN suppressions s ON s.workspace_id = %(ws)s "
            f"AND s.digest = {digest} WHERE i.workspace_id = %(ws)s "
            f"AND i.profile_id = ANY(subject.ids) AND s.channel IN ('*', {channel}) AND {covers} "
            f"AND s.created_at <= {now} "
            f"AND NOT COALESCE(s.reason = 'unsubscribed' AND {resubscribed}, false))"
        )
        conditions = [
            "q.workspace_id = %(ws)s",
            "q.merged_into IS NULL",
            f"COALESCE({status} = 'GRANTED', {default})",
            f"NOT {suppressed}",
        ]
        if self.per_profile:
            conditions.append("q.id = p.id")
        elif is_marketing(node.purpose):
            # Only a profile with a record can be allowed: start from those.
            purposes = [node.purpose, MARKETING] if general else [node.purpose]
            conditions.append(
                "q.id IN (SELECT COALESCE(x.merged_into, x.id) FROM consent_records r "
                "JOIN profiles x ON x.workspace_id = r.workspace_id AND x.id = r.profile_id "
                f"WHERE r.workspace_id = %(ws)s AND r.channel = {channel} AND r.recorded_at <= {now} "
                f"AND r.purpose = ANY({self.param(purposes, '::text[]')}))"
            )
        select = (
            "SELECT q.id FROM profiles q "
            "CROSS JOIN LATERAL (SELECT array_agg(x.id) AS ids FROM (SELECT q.id UNION ALL "
            "SELECT y.id FROM profiles y WHERE y.workspace_id = %(ws)s AND y.merged_into = q.id"
            ") x) subject "
            f"LEFT JOIN LATERAL ({own}) own ON true LEFT JOIN LATERAL ({gen}) gen ON true "
            f"WHERE {' AND '.join(conditions)}"
        )
        return f"(EXISTS ({select}))" if self.per_profile else f"(p.id IN ({select}))"


def members_query(
    node: m.Node,
    *,
    workspace_id: UUID,
    now: datetime,
    profile_ids: list[UUID] | None = None,
    digest_pads: tuple[bytes, bytes] | None = None,
) -> CompiledQuery:
    """The ids of the live, unrestricted profiles that match `node` at `now`.

    `profile_ids` limits the answer, and every read behind it, to those
    profiles (`verdicts_query`). `digest_pads` are the workspace's
    identifier-hash keys (`Keys.digest_pads`), needed by a contactable
    condition.
    """
    if profile_ids is not None:
        verdicts = verdicts_query(
            [node], [1] * len(profile_ids),
            workspace_id=workspace_id, now=now, profile_ids=profile_ids, digest_pads=digest_pads,
        )  # fmt: skip
        sql = f"SELECT v.profile_id AS id FROM ({verdicts.sql}) v WHERE v.member"
        return CompiledQuery(sql, verdicts.params)
    builder = _Builder(workspace_id, now, per_profile=False, digest_pads=digest_pads)
    condition = builder.node(node)
    sql = (
        "SELECT p.id FROM profiles p WHERE p.workspace_id = %(ws)s AND p.merged_into IS NULL "
        f"AND p.restricted_at IS NULL AND {condition}"
    )
    return CompiledQuery(sql, {"ws": workspace_id, **builder.params})


# A profile's verdicts are bits of a bigint: at most this many definitions a statement.
MAX_VERDICTS = 62


def verdicts_query(
    nodes: Sequence[m.Node],
    wanted: Sequence[int],
    *,
    workspace_id: UUID,
    now: datetime,
    profile_ids: Sequence[UUID],
    digest_pads: tuple[bytes, bytes] | None = None,
) -> CompiledQuery:
    """For each profile, whether it matches each definition it asks about: rows (profile_id, n, member).

    `wanted[i]` is a bit mask of the definitions (`nodes[n]`, bit n) asked
    about profile `profile_ids[i]`; only those are evaluated. A profile that
    is merged away, restricted or gone matches nothing.
    """
    if not 0 < len(nodes) <= MAX_VERDICTS:
        raise ValueError(f"between 1 and {MAX_VERDICTS} definitions a statement")
    if len(wanted) != len(profile_ids):
        raise ValueError("one mask per profile")
    builder = _Builder(workspace_id, now, per_profile=True, digest_pads=digest_pads)
    verdicts = []
    reading_events = 0
    for n, node in enumerate(nodes):
        before = len(builder.counted)
        verdicts.append(f"CASE WHEN b.mask & {1 << n} <> 0 THEN {builder.node(node)} END")
        if len(builder.counted) > before:
            reading_events |= 1 << n
    # LIMIT keeps each lookup a probe by id per profile, whatever the
    # statistics say (a subquery without it may be planned as a join).
    sql = (
        "SELECT b.id AS profile_id, s.n, COALESCE(p.verdicts[s.n + 1], false) AS member "
        "FROM unnest(%(ids)s::uuid[], %(masks)s::bigint[]) AS b(id, mask) "
        f"LEFT JOIN LATERAL (SELECT ARRAY[{', '.join(verdicts)}] AS verdicts FROM ("
        f"SELECT p.*, {_counts(builder, reading_events)} AS counted FROM profiles p "
        "WHERE p.workspace_id = %(ws)s AND p.id = b.id AND p.merged_into IS NULL "
        "AND p.restricted_at IS NULL LIMIT 1) p) p ON true "
        f"CROSS JOIN LATERAL generate_series(0, {len(nodes) - 1}) AS s(n) "
        "WHERE b.mask & (1::bigint << s.n) <> 0"
    )
    params = {
        "ws": workspace_id, "ids": list(profile_ids), "masks": list(wanted), **builder.params,
    }  # fmt: skip
    return CompiledQuery(sql, params)


def _counts(builder: _Builder, reading_events: int) -> str:
    """The profile's count for each event condition, from one pass over its events.

    One pass, not a probe per condition: a probe costs about as much as
    reading the few events most profiles have (bench/README.md, "Segments").
    Only the names asked about are counted, from the earliest window's start
    when every condition has a window; a profile whose asked definitions
    count no events reads none.
    """
    if not builder.counted:
        return "NULL::bigint[]"
    names = builder.param(sorted(builder.counted_names), "::text[]")
    conditions = ["e.workspace_id = %(ws)s", "e.profile_id = p.id", f"e.name = ANY({names})"]
    windows = [w for w in builder.counted_since if w is not None]
    if len(windows) == len(builder.counted_since):
        conditions.append(f"e.timestamp >= {builder.since(max(windows))}")
    counts = ", ".join(f"count(*) FILTER (WHERE {c})" for c in builder.counted)
    return (
        f"CASE WHEN b.mask & {reading_events} <> 0 THEN "
        f"(SELECT ARRAY[{counts}] FROM events e WHERE {' AND '.join(conditions)}) END"
    )


def _band(builder: _Builder, instant: str, low: datetime, high: datetime) -> str:
    return (
        f"COALESCE({instant} >= {builder.param(low, '::timestamptz')} "
        f"AND {instant} < {builder.param(high, '::timestamptz')}, false)"
    )


def crossing_query(
    node: m.Node, *, workspace_id: UUID, since: datetime, now: datetime
) -> CompiledQuery | None:
    """The profiles whose verdict may differ between `since` and `now` by time alone.

    A window's edge moves with the clock: an event or a date leaves a
    `within` window (and enters a `before` one) when it falls in
    [edge at since, edge at now), and a future date enters a `within` window
    when now passes it. Only profiles with such a value can change; the
    others keep their verdict. None when a time rule sits where this cannot
    be told cheaply (a date filter on event properties): evaluate in full.
    """
    builder = _Builder(workspace_id, now, per_profile=False, digest_pads=None)
    parts: list[str] = []
    for leaf in m.walk(node):
        if isinstance(leaf, m.EventCondition):
            if any(f.comparison.op in (m.WITHIN, m.BEFORE) for f in leaf.where):
                return None
            if leaf.window is not None:
                parts.append(
                    "SELECT e.profile_id AS id FROM events e WHERE e.workspace_id = %(ws)s "
                    f"AND e.name = {builder.param(leaf.name)} AND "
                    + _band(builder, "e.timestamp", since - leaf.window, now - leaf.window)
                )
        elif isinstance(leaf, m.TraitCondition | m.ComputedCondition):
            c = leaf.comparison
            if c.op not in (m.WITHIN, m.BEFORE):
                continue
            if isinstance(leaf, m.TraitCondition):
                found = f"(p.traits #> {builder.param(list(leaf.path), '::text[]')})"
            else:
                found = f"(p.computed -> {builder.param(leaf.field.key)})"
            instant = (
                f"cdp_instant(CASE WHEN jsonb_typeof({found}) = {_STRING} "
                f"THEN {found} #>> '{{}}' END)"
            )
            crossing = [_band(builder, instant, since - c.value, now - c.value)]
            if c.op == m.WITHIN:
                crossing.append(
                    f"COALESCE({instant} > {builder.param(since, '::timestamptz')} "
                    f"AND {instant} <= {builder.param(now, '::timestamptz')}, false)"
                )
            parts.append(
                "SELECT p.id FROM profiles p WHERE p.workspace_id = %(ws)s "
                f"AND p.merged_into IS NULL AND ({' OR '.join(crossing)})"
            )
    if not parts:
        return CompiledQuery("SELECT NULL::uuid AS id WHERE false", {})
    return CompiledQuery(" UNION ".join(parts), {"ws": workspace_id, **builder.params})
