"""Hand-written SQL for the statements the vote loop runs on every request.

Building a query through the ORM costs 250-1,600 µs of CPU on the 2-core machines Duet is
benchmarked on (bench/load.py), a hand-written statement 50-200 µs, and "next comparison,
vote" runs three of them per vote on PostgreSQL (the ORM version ran fifteen). So the
vote loop's statements are written here once, portable between SQLite and PostgreSQL:

- table and column names come from the models' metadata, so they follow the models;
- values go through the model fields (`pre_save`, `get_db_prep_save`): defaults, UUIDs,
  JSON and datetimes are stored exactly as the ORM would store them;
- rows come back as model instances (`Model.from_db`); a column not read is deferred and
  loads on first access, as with `.only()`.

Inserts here send no model signals. Nothing in Duet listens for these models' saves: a
judgment announces itself with `arena.events.judgment_recorded`, sent by the one writer
of judgments (`arena.judgments`) after its transaction commits. Everything else keeps
using the ORM.
"""

from __future__ import annotations

import datetime
import json
import uuid
from functools import cache

from django.db import models, router, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from arena.models import Arena, Battle, Comparison, ComparisonOrigin, Judgment, Output, Prompt


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table(model) -> str:
    return _q(model._meta.db_table)


def _col(model, name: str, alias: str) -> str:
    """A column by field name ("prompt") or attribute name ("prompt_id")."""
    for field in model._meta.concrete_fields:
        if name in (field.name, field.attname):
            return f"{alias}.{_q(field.column)}"
    raise LookupError(f"{model.__name__} has no column for {name!r}")


def _connection(model):
    return transaction.get_connection(router.db_for_write(model))


def _run(connection, sql: str, params: list, fetch: str):
    """Execute and fetch ("one", "all" or "none").

    On PostgreSQL the statement is prepared once per connection and then only executed:
    Django binds parameters on the client, so PostgreSQL would parse and plan every
    statement on every request (0.2-2 ms of its CPU for these). Where queries are being
    recorded (DEBUG, tests counting queries) Django's own cursor runs it, so it shows."""
    if connection.vendor == "postgresql" and not connection.queries_logged:
        from django.db.backends.postgresql.base import ServerBindingCursor

        connection.ensure_connection()
        connection.validate_no_broken_transaction()
        with connection.wrap_database_errors:
            cursor = ServerBindingCursor(connection.connection)
            try:
                # prepare=True is ignored where the connection disables preparing
                # (prepare_threshold None: DUET_DB_PREPARED_STATEMENTS=0).
                cursor.execute(sql, params, prepare=True)
                return cursor.fetchone() if fetch == "one" else cursor.fetchall() if fetch == "all" else None
            finally:
                cursor.close()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() if fetch == "one" else cursor.fetchall() if fetch == "all" else None


def _fetchone(connection, sql: str, params: list):
    return _run(connection, sql, params, "one")


# --- inserts ----------------------------------------------------------------------------------


class Insert:
    """``Insert(Judgment)(comparison=c, judge=j, verdict="a")`` -> the saved Judgment."""

    def __init__(self, model: type[models.Model]):
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        self.pk = model._meta.pk
        self.columns = [(f.attname, _plain_type(f), f) for f in self.fields]
        self.head = (
            f"INSERT INTO {_table(model)} ({', '.join(_q(f.column) for f in self.fields)}) "
            f"VALUES ({', '.join(['%s'] * len(self.fields))})"
        )

    def __call__(self, **values) -> models.Model:
        return self.save(self.model(**values))

    def params(self, instance, connection, leave_out: str = "") -> list:
        """The row's values as the database takes them; `leave_out`: an attribute name
        whose value the statement supplies itself. A value a plain field (text, number,
        boolean, a key to an integer id) would pass through unchanged, being already of
        its type or None, is taken as it is; every other goes through the field."""
        values = []
        for attname, plain, field in self.columns:
            if attname == leave_out:
                continue
            if plain is not None:
                value = getattr(instance, attname)
                if value is None or type(value) is plain:
                    values.append(value)
                    continue
            values.append(field.get_db_prep_save(field.pre_save(instance, True), connection))
        return values

    def save(self, instance: models.Model) -> models.Model:
        connection = _connection(self.model)
        params = self.params(instance, connection)
        if connection.features.can_return_columns_from_insert:
            pk = _fetchone(connection, f"{self.head} RETURNING {_q(self.pk.column)}", params)[0]
        else:
            with connection.cursor() as cursor:
                cursor.execute(self.head, params)
                pk = cursor.lastrowid
        return _saved(instance, pk, connection)


_PLAIN_TYPES = {
    models.CharField: str, models.TextField: str, models.IntegerField: int, models.BigIntegerField: int,
    models.PositiveIntegerField: int, models.PositiveSmallIntegerField: int, models.SmallIntegerField: int,
    models.FloatField: float, models.BooleanField: bool,
    models.AutoField: int, models.BigAutoField: int, models.SmallAutoField: int,  # as foreign keys' targets
}  # fmt: skip


def _plain_type(field) -> type | None:
    """The Python type whose values `field` stores as they are (its get_db_prep_save
    returns them unchanged and its pre_save only reads them), or None. Exact classes
    only: a subclass may convert."""
    if type(field).pre_save is not models.Field.pre_save:
        return None
    if field.is_relation:
        return _plain_type(field.target_field) if field.many_to_one or field.one_to_one else None
    return _PLAIN_TYPES.get(type(field))


@cache
def insert_for(model: type[models.Model]) -> Insert:
    return Insert(model)


insert_comparison_row = insert_for(Comparison)
insert_judgment_row = insert_for(Judgment)
insert_battle_row = insert_for(Battle)


def _saved(instance, pk, connection):
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


@cache
def _linked_sql(model: type[models.Model], linked_model: type[models.Model], link: str) -> str:
    row, linked = insert_for(model), insert_for(linked_model)
    link_column = linked_model._meta.get_field(link).column
    linked_columns = [f for f in linked.fields if f.column != link_column]
    return (
        f"WITH r AS ({row.head} RETURNING {_q(row.pk.column)}) "
        f"INSERT INTO {_table(linked_model)} ({', '.join(_q(f.column) for f in linked_columns)}, {_q(link_column)}) "
        f"SELECT {', '.join('%s' for _ in linked_columns)}, r.{_q(row.pk.column)} FROM r "
        f"RETURNING {_q(linked.pk.column)}, {_q(link_column)}"
    )


def insert_linked(row: models.Model, make_linked, link: str) -> models.Model | None:
    """Save `row` and the row `make_linked(row)` builds (None: none), which points at it
    through its foreign key `link`, together or not at all; returns the linked row, saved.
    `make_linked` is called after `row`'s own values are set (its `created_at`, say), so
    it may copy them. On PostgreSQL one statement (a data-modifying WITH), so one round
    trip, atomic by itself; elsewhere two inserts, in a transaction the caller holds.
    What the linked row is and what follows the write are the caller's business."""
    model = type(row)
    connection = _connection(model)
    if connection.vendor != "postgresql":
        insert_for(model).save(row)
        linked = make_linked(row)
        return None if linked is None else insert_for(type(linked)).save(linked)
    row_params = insert_for(model).params(row, connection)  # sets auto_now_add values the linked row may copy
    linked = make_linked(row)
    if linked is None:
        insert_for(model).save(row)
        return None
    link_attname = type(linked)._meta.get_field(link).attname
    linked_params = insert_for(type(linked)).params(linked, connection, leave_out=link_attname)
    linked_pk, row_pk = _fetchone(connection, _linked_sql(model, type(linked), link), row_params + linked_params)
    _saved(row, row_pk, connection)
    setattr(linked, link, row)
    return _saved(linked, linked_pk, connection)


def insert_comparison(*, prompt_id: int, output_a_id: int, output_b_id: int, origin: str, served_to) -> Comparison:
    return insert_comparison_row(
        prompt_id=prompt_id, output_a_id=output_a_id, output_b_id=output_b_id, origin=origin, served_to=served_to,
        pair_key=Comparison.make_pair_key(output_a_id, output_b_id),
    )  # fmt: skip


# --- reads ------------------------------------------------------------------------------------

# Attribute names in the models' field order (Model.from_db expects that order).
COMPARISON_FIELDS = ["id", "public_id", "prompt_id", "output_a_id", "output_b_id", "origin", "pair_key", "served_to_id"]
OUTPUT_FIELDS = ["id", "system_id", "prompt_id", "media", "media_type", "metadata", "turn", "rendered"]


@cache
def _comparison_columns(alias: str) -> str:
    return ", ".join(_col(Comparison, name, alias) for name in COMPARISON_FIELDS)


def _uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _json(value):
    # PostgreSQL hands jsonb to Django as text (Django registers a text loader), SQLite
    # stores text: either way a string here.
    return json.loads(value) if isinstance(value, str) else value


def _comparison(connection, row) -> Comparison:
    values = list(row)
    values[1] = _uuid(values[1])
    return Comparison.from_db(connection.alias, COMPARISON_FIELDS, values)


def _judge_probe(alias: str) -> str:
    """"This judgment is by judge %s", for a probe that has already found the comparison's
    judgments (a handful) by their comparison index. Written `judge_id + 0` so neither
    database combines it with the judge index, which holds every judgment of the voter:
    PostgreSQL did, with stale statistics, reading the voter's whole history per probe."""
    return f"{_col(Judgment, 'judge', alias)} + 0 = %s"


@cache
def _latest_served_sql() -> str:
    # The newest comparison first: the (served_to, created_at) index walked backwards,
    # one row whatever the voter's history, then its judgment looked up by comparison.
    # (With statistics PostgreSQL plans it so; on tables so new that autovacuum has not
    # analysed them yet, it may sort the voter's comparisons instead.) Three tables, not
    # six: PostgreSQL planned the six-way join in 2 ms.
    c, p, j = "c", "p", "j"
    return (
        f"SELECT {_comparison_columns(c)}, {c}.fresh, "
        f"EXISTS (SELECT 1 FROM {_table(Judgment)} {j} WHERE {_col(Judgment, 'comparison', j)} = {c}.\"id\" "
        f"AND {_judge_probe(j)}) AS judged "
        f"FROM (SELECT {_comparison_columns(c)}, {_col(Comparison, 'created_at', c)} >= %s AS fresh "
        f"FROM {_table(Comparison)} {c} "
        f"JOIN {_table(Prompt)} {p} ON {_col(Prompt, 'id', p)} = {_col(Comparison, 'prompt', c)} "
        f"WHERE {_col(Comparison, 'served_to', c)} = %s AND {_col(Comparison, 'origin', c)} = %s "
        f"AND {_col(Prompt, 'modality', p)} = %s "
        f"ORDER BY {_col(Comparison, 'created_at', c)} DESC LIMIT 1) {c}"
    )


def latest_served(judge_id: int, modality: str, since) -> tuple[Comparison, bool] | None:
    """The newest arena comparison served to a judge in a modality, and whether it is
    still open: not judged by them and served after `since`."""
    connection = _connection(Comparison)
    since_value = Comparison._meta.get_field("created_at").get_db_prep_value(since, connection)
    row = _fetchone(connection, _latest_served_sql(), [judge_id, since_value, judge_id, ComparisonOrigin.ARENA, modality])
    if row is None:
        return None
    n = len(COMPARISON_FIELDS)
    fresh, judged = row[n:]
    return _comparison(connection, row[:n]), bool(fresh and not judged)


@cache
def _served_and_judged_sql(n_keys: int, vendor: str) -> str:
    # One row whatever there is: the judged keys among the candidates beside the newest
    # served comparison (NULLs when there is none), so serving a comparison after a vote
    # costs one round trip to the database, not two.
    aggregate = "string_agg" if vendor == "postgresql" else "group_concat"
    judged = _judged_sql(n_keys, f"{aggregate}({_col(Comparison, 'pair_key', 'c')}, ',')")
    return (
        f"SELECT {_comparison_columns('l')}, l.fresh, l.judged, ({judged}) FROM (SELECT 1 AS one) o "
        f"LEFT JOIN ({_latest_served_sql()}) l ON 1 = 1"
    )


def served_and_judged(
    judge_id: int, modality: str, since, keys: list[str]
) -> tuple[tuple[Comparison, bool] | None, set[str]]:
    """`latest_served`, and which of these output pairs ("low-high") the judge has
    judged, in one statement."""
    if not keys:
        return latest_served(judge_id, modality, since), set()
    connection = _connection(Comparison)
    since_value = Comparison._meta.get_field("created_at").get_db_prep_value(since, connection)
    row = _fetchone(
        connection, _served_and_judged_sql(len(keys), connection.vendor),
        [*keys, judge_id, judge_id, since_value, judge_id, ComparisonOrigin.ARENA, modality],
    )  # fmt: skip
    n = len(COMPARISON_FIELDS)
    fresh, judged, judged_keys = row[n:]
    judged_set = set(judged_keys.split(",")) if judged_keys else set()
    if row[0] is None:
        return None, judged_set
    return (_comparison(connection, row[:n]), bool(fresh and not judged)), judged_set


@cache
def _judged_sql(n_keys: int, select: str) -> str:
    # Driven by the candidates' pair keys (the pair_key index), then one probe per
    # comparison of those pairs for this judge's judgment: the cost does not grow with
    # the voter's history, as a scan of the voter's judgments did (2.6 ms of PostgreSQL's
    # time at 500 votes). The probe is a scalar subquery, not EXISTS, because PostgreSQL
    # turns EXISTS into a join that again reads every judgment of the voter.
    return (
        f"SELECT {select} FROM {_table(Comparison)} c "
        f"WHERE {_col(Comparison, 'pair_key', 'c')} IN ({', '.join(['%s'] * n_keys)}) "
        f"AND (SELECT 1 FROM {_table(Judgment)} j WHERE {_col(Judgment, 'comparison', 'j')} = c.\"id\" "
        f"AND {_judge_probe('j')} LIMIT 1) = 1"
    )


def _output_columns(alias: str) -> str:
    return ", ".join(_col(Output, name, alias) for name in OUTPUT_FIELDS)


def _output(connection, values) -> Output:
    """An Output from its OUTPUT_FIELDS columns, JSON decoded (text deferred)."""
    values = list(values)
    for name in ("metadata", "rendered"):
        values[OUTPUT_FIELDS.index(name)] = _json(values[OUTPUT_FIELDS.index(name)])
    return Output.from_db(connection.alias, OUTPUT_FIELDS, values)


@cache
def _comparison_for_vote_sql() -> str:
    return (
        f"SELECT {_comparison_columns('c')}, {_col(Prompt, 'modality', 'p')}, {_col(Prompt, 'categories', 'p')}, "
        f"{_output_columns('oa')}, {_output_columns('ob')} "
        f"FROM {_table(Comparison)} c "
        f"JOIN {_table(Prompt)} p ON {_col(Prompt, 'id', 'p')} = {_col(Comparison, 'prompt', 'c')} "
        f"JOIN {_table(Output)} oa ON {_col(Output, 'id', 'oa')} = {_col(Comparison, 'output_a', 'c')} "
        f"JOIN {_table(Output)} ob ON {_col(Output, 'id', 'ob')} = {_col(Comparison, 'output_b', 'c')} "
        f"WHERE {_col(Comparison, 'public_id', 'c')} = %s"
    )


def comparison_for_vote(public_id) -> Comparison | None:
    """A comparison with its prompt (modality, categories) and both outputs (system,
    media, metadata) loaded in one statement; the outputs' text is deferred."""
    connection = _connection(Comparison)
    key = Comparison._meta.get_field("public_id").get_db_prep_value(_uuid(public_id), connection)
    row = _fetchone(connection, _comparison_for_vote_sql(), [key])
    if row is None:
        return None
    n, m = len(COMPARISON_FIELDS), len(OUTPUT_FIELDS)
    comparison = _comparison(connection, row[:n])
    modality, categories = row[n], _json(row[n + 1])
    prompt = Prompt.from_db(connection.alias, ["id", "modality", "categories"], [comparison.prompt_id, modality, categories])
    comparison._state.fields_cache["prompt"] = prompt
    for side, start in (("output_a", n + 2), ("output_b", n + 2 + m)):
        comparison._state.fields_cache[side] = _output(connection, row[start : start + m])
    return comparison


@cache
def _served_parts_sql() -> str:
    return (
        f"SELECT {_col(Prompt, 'text', 'p')}, {_col(Prompt, 'modality', 'p')}, "
        f"{_output_columns('oa')}, {_output_columns('ob')} "
        f"FROM {_table(Prompt)} p, {_table(Output)} oa, {_table(Output)} ob "
        f"WHERE {_col(Prompt, 'id', 'p')} = %s AND {_col(Output, 'id', 'oa')} = %s AND {_col(Output, 'id', 'ob')} = %s"
    )


def load_served_parts(comparison: Comparison) -> Comparison:
    """Load a comparison's prompt (text, modality) and both outputs (system, media,
    metadata, rendering; their text deferred) in one statement, where reading them through
    their relations took three. For a process that holds no copy of them (arena.hotcache):
    with eight web processes and thousands of outputs, most comparisons served."""
    cache = comparison._state.fields_cache
    if {"prompt", "output_a", "output_b"} <= cache.keys():
        return comparison
    connection = _connection(Comparison)
    row = _fetchone(connection, _served_parts_sql(), [comparison.prompt_id, comparison.output_a_id, comparison.output_b_id])
    if row is None:  # deleted meanwhile: the relations raise DoesNotExist as before
        return comparison
    cache["prompt"] = Prompt.from_db(connection.alias, ["id", "text", "modality"], [comparison.prompt_id, *row[:2]])
    m = len(OUTPUT_FIELDS)
    for side, start in (("output_a", 2), ("output_b", 2 + m)):
        cache[side] = _output(connection, row[start : start + m])
    return comparison


@cache
def _refresh_claim_sql() -> str:
    return (
        f"SELECT {_col(Arena, 'refresh_requested_at', 'a')}, {_col(Arena, 'refresh_not_before', 'a')} "
        f"FROM {_table(Arena)} a WHERE {_col(Arena, 'id', 'a')} = %s"
    )


def refresh_state(arena_id: int) -> tuple[datetime.datetime | None, datetime.datetime | None]:
    """When the arena's pending leaderboard refresh was requested, if one is, and the
    earliest the next refresh may start (`Arena.refresh_not_before`), if set."""
    row = _fetchone(_connection(Arena), _refresh_claim_sql(), [arena_id])
    return (None, None) if row is None else (_claim_value(row[0]), _claim_value(row[1]))


def _claim_value(value) -> datetime.datetime | None:
    # SQLite stores datetimes as text, in UTC, and its driver hands a "datetime" column
    # back already parsed (Django registers a converter for the declared type), naive.
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, datetime.timezone.utc)
    return value
