"""SQL building blocks shared by the services' repositories: a WHERE clause with
numbered asyncpg parameters (officers' filtered lists) and one-statement bulk writes
through `unnest` (read models and fan-outs that write hundreds of rows per batch)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any


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


Column = tuple[str, str]  # (name, PostgreSQL type)


def insert_many_sql(
    table: str, columns: Sequence[Column], *, on_conflict: str = "", returning: str = ""
) -> str:
    """An INSERT of many rows in one statement, one array parameter per column, in column
    order (see `column_arrays`). A jsonb column takes JSON text, cast in SQL: asyncpg's
    jsonb codec applies to single values, not to the elements of an array."""
    params = ", ".join(
        f"${i}::{'text' if t == 'jsonb' else t}[]" for i, (_, t) in enumerate(columns, start=1)
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


def column_arrays(rows: Sequence[Any], names: Sequence[str]) -> list[list[Any]]:
    """The attributes `names` of `rows`, column by column: the parameters of the
    statements above."""
    if not rows:
        return [[] for _ in names]
    if len(names) == 1:
        return [[getattr(row, names[0]) for row in rows]]
    return [list(column) for column in zip(*map(operator.attrgetter(*names), rows), strict=True)]
