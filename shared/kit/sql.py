"""SQL building blocks shared by the services' repositories: a WHERE clause with
numbered asyncpg parameters (officers' filtered lists), the statements of an aggregate's
row and its history, and one-statement bulk writes through `unnest` (read models and
fan-outs that write hundreds of rows per batch)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import asyncpg
from pydantic_core import to_json

from shared.kit.history import HistoryEntry, Recorded

S = TypeVar("S")


class Where:
    """Conditions joined by AND, each value bound as the next `$n`:

    w = Where()
    w.add(f"c.status = {w.param(status)}")
    w.add("c.details ? 'kbli'")      # SQL's own `?` (jsonb) is left alone
    await conn.fetch(f"SELECT ... {w.clause} LIMIT {w.param(limit)}", *w.args)
    """

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.args: list[Any] = []

    def param(self, value: Any) -> str:
        """Bind `value`; returns its placeholder."""
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, condition: str) -> None:
        self.conditions.append(condition)

    @property
    def clause(self) -> str:
        return ("WHERE " + " AND ".join(self.conditions)) if self.conditions else ""

    def equal(self, column: str, value: Any) -> None:
        """`column = value`, left out when `value` is None or empty: the optional filters
        of an officers' list (status, OPD, kecamatan, ...)."""
        if value is not None and value != "":
            self.add(f"{column} = {self.param(value)}")

    def within(self, column: str, start: Any = None, end: Any = None) -> None:
        """`start <= column < end`, each bound only when given: a list's period filter,
        half open so that consecutive periods do not overlap."""
        if start is not None:
            self.add(f"{column} >= {self.param(start)}")
        if end is not None:
            self.add(f"{column} < {self.param(end)}")

    def page(self, page: int, size: int) -> str:
        """`LIMIT ... OFFSET ...` of the `page`-th (from 1) `size` rows, bound after the
        conditions' parameters: write it after `clause`, in a statement given `args`."""
        return f"LIMIT {self.param(size)} OFFSET {self.param((page - 1) * size)}"


def insert_sql(table: str, columns: Sequence[str]) -> str:
    """An INSERT of one row, `columns` bound as $1, $2, ... in their order (an aggregate's
    row, written from the same column list its reads and saves use)."""
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"


def save_sql(table: str, columns: Sequence[str]) -> str:
    """The UPDATE that saves an aggregate's row: the row by its `id` ($1), `columns` bound
    from $2 on in their order; it bumps `version` and `updated_at`, which every aggregate
    table of the domain services has."""
    sets = ", ".join(f"{column}=${i}" for i, column in enumerate(columns, start=2))
    return f"UPDATE {table} SET {sets}, version=version+1, updated_at=now() WHERE id=$1"


def select_sql(table: str, columns: Sequence[str], key: str, *, for_update: bool = False) -> str:
    """The SELECT of `columns` of the row whose `key` is $1 (an aggregate by its public
    code), row-locked until the transaction ends when `for_update` (a use case's load
    before a change)."""
    return f"SELECT {', '.join(columns)} FROM {table} WHERE {key} = $1{' FOR UPDATE' if for_update else ''}"


def upsert_sql(table: str, columns: Sequence[str], key: Sequence[str], *, returning: str = "") -> str:
    """`insert_sql` that, where a row with the same `key` columns exists, replaces its other
    columns and sets its `updated_at` to now: reference data that officers put."""
    updates = ", ".join(f"{c}=EXCLUDED.{c}" for c in columns if c not in key)
    sql = f"{insert_sql(table, columns)} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}, updated_at=now()"
    return f"{sql} RETURNING {returning}" if returning else sql


async def save_history(conn: asyncpg.Connection, table: str, key: str, aggregate: Recorded[Any]) -> None:
    """Store the history entries `aggregate` added since it was loaded in its history
    `table` (`key` the column of its `id`; a status by its value), then forget them as
    new: one statement, whatever their number."""
    if aggregate.new_history:
        await conn.execute(
            f"INSERT INTO {table} ({key}, {_HISTORY}) SELECT $1, h.* FROM {_history_rows(2)}",
            aggregate.id,
            *_new_history(aggregate),
        )
        aggregate.new_history.clear()  # only once stored: a failed save keeps them to retry


async def add_with_history(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    values: Sequence[Any],
    history: str,
    key: str,
    aggregate: Recorded[Any],
    *,
    rows_of: Callable[[int], str] | None = None,
    rows: Sequence[Any] = (),
) -> None:
    """A new aggregate's row (`columns`, the first its `id`, bound to `values`) and its
    history entries (see `save_history`) in one statement: a filing's round trip, not
    two. `rows_of(n)`, when given, is one more INSERT in that statement (the aggregate's
    other rows, e.g. its SLA clocks) whose parameters start at `$n`, bound to `rows`.
    Foreign keys are checked at the statement's end, when the aggregate's row exists."""
    await conn.execute(
        _add_with_history_sql(table, tuple(columns), history, key, rows_of),
        *values,
        *_new_history(aggregate),
        *rows,
    )
    aggregate.new_history.clear()


@functools.cache
def _add_with_history_sql(
    table: str, columns: tuple[str, ...], history: str, key: str, rows_of: Callable[[int], str] | None
) -> str:
    """`add_with_history`'s statement, written once per aggregate (not per filing)."""
    entries = (
        f"INSERT INTO {history} ({key}, {_HISTORY}) SELECT aggregate.id, h.*"
        f" FROM aggregate, {_history_rows(len(columns) + 1)}"
    )
    head = f"WITH aggregate AS ({insert_sql(table, columns)} RETURNING id)"
    if rows_of is None:
        return f"{head} {entries}"
    return f"{head}, entries AS ({entries}) {rows_of(len(columns) + len(_HISTORY_TYPES) + 1)}"


_HISTORY = "at, action, status, actor, note"  # a history table's columns after its aggregate's id
_HISTORY_TYPES = ("timestamptz", "text", "text", "text", "text")
_HISTORY_ATTRIBUTES = _HISTORY.split(", ")  # a HistoryEntry's, named as its columns
_STATUS = _HISTORY_ATTRIBUTES.index("status")


def _history_rows(first: int) -> str:
    """The history entries bound as one array per column from parameter `first` on."""
    params = ", ".join(f"${i}::{t}[]" for i, t in enumerate(_HISTORY_TYPES, start=first))
    return f"unnest({params}) AS h({_HISTORY})"


def _new_history(aggregate: Recorded[Any]) -> list[list[Any]]:
    """The history entries `aggregate` added since it was loaded, one list per column, a
    status by its value. The caller forgets them as new once they are stored."""
    columns = column_arrays(aggregate.new_history, _HISTORY_ATTRIBUTES)
    columns[_STATUS] = [getattr(status, "value", status) for status in columns[_STATUS]]
    return columns


async def load_history(
    conn: asyncpg.Connection, table: str, key: str, aggregate_id: Any, status: Callable[[str], S]
) -> list[HistoryEntry[S]]:
    """The history of the aggregate `aggregate_id` from its history `table`, oldest first,
    each entry's status made by `status` (the aggregate's Status enum)."""
    rows = await conn.fetch(f"SELECT {_HISTORY} FROM {table} WHERE {key} = $1 ORDER BY id", aggregate_id)
    return [HistoryEntry(**{**dict(row), "status": status(row["status"])}) for row in rows]


Column = tuple[str, str]  # (name, PostgreSQL type)


def insert_many_sql(
    table: str, columns: Sequence[Column], *, on_conflict: str = "", returning: str = "", first: int = 1
) -> str:
    """An INSERT of many rows in one statement, one array parameter per column, in column
    order from `$first` (see `column_arrays`). A jsonb column takes JSON text, cast in
    SQL: asyncpg's jsonb codec applies to single values, not to the elements of an array."""
    params = ", ".join(
        f"${i}::{'text' if t == 'jsonb' else t}[]" for i, (_, t) in enumerate(columns, start=first)
    )
    names = [n for n, _ in columns]
    select = ", ".join(f"{n}::jsonb" if t == "jsonb" else n for n, t in columns)
    sql = f"INSERT INTO {table} ({', '.join(names)}) SELECT {select} FROM unnest({params}) AS t({', '.join(names)})"
    if on_conflict:
        sql += f" ON CONFLICT {on_conflict}"
    if returning:
        sql += f" RETURNING {returning}"
    return sql


def upsert_many_sql(table: str, columns: Sequence[Column], key: str) -> str:
    """`insert_many_sql` that replaces every other column of a row whose `key` exists."""
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n, _ in columns if n != key)
    return insert_many_sql(table, columns, on_conflict=f"({key}) DO UPDATE SET {updates}")


def update_many_sql(table: str, key: Column, columns: Sequence[Column]) -> str:
    """An UPDATE of many rows in one statement: `key` array first, then one array per column."""
    every = [key, *columns]
    params = ", ".join(f"${i}::{'text' if t == 'jsonb' else t}[]" for i, (_, t) in enumerate(every, start=1))
    sets = ", ".join(f"{n} = u.{n}::jsonb" if t == "jsonb" else f"{n} = u.{n}" for n, t in columns)
    names = ", ".join(n for n, _ in every)
    return f"UPDATE {table} AS r SET {sets} FROM unnest({params}) AS u({names}) WHERE r.{key[0]} = u.{key[0]}"


def jsonb_texts(values: Sequence[Any]) -> list[str | None]:
    """A jsonb column's values as JSON text, as the bulk statements take them (None stays
    SQL NULL). pydantic's serialiser: a fraction of json.dumps' cost, per row of a batch."""
    return [None if v is None else to_json(v).decode() for v in values]


def column_arrays(rows: Sequence[Any], names: Sequence[str]) -> list[list[Any]]:
    """The attributes `names` of `rows`, column by column: the parameters of the
    statements above."""
    if not rows:
        return [[] for _ in names]
    if len(names) == 1:
        return [[getattr(row, names[0]) for row in rows]]
    return [list(column) for column in zip(*map(operator.attrgetter(*names), rows), strict=True)]
