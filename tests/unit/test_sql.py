"""The kit's SQL building blocks, as text (their use against PostgreSQL is covered by
the repositories' integration tests)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.kit.history import Recorded
from shared.kit.sql import (
    Where,
    add_with_history,
    column_arrays,
    insert_many_sql,
    save_history,
    update_many_sql,
    upsert_many_sql,
)


def test_where_numbers_parameters_and_leaves_sql_question_marks_alone() -> None:
    w = Where()
    w.add(f"c.status = {w.param('verified')}")
    w.add("c.details ? 'kbli' AND c.tags ?| array['a']")
    w.add(f"c.filed_at >= {w.param(1)} AND c.filed_at < {w.param(2)}")
    assert w.clause == (
        "WHERE c.status = $1 AND c.details ? 'kbli' AND c.tags ?| array['a'] AND c.filed_at >= $2 AND c.filed_at < $3"
    )
    assert w.args == ["verified", 1, 2]
    assert f"LIMIT {w.param(20)}" == "LIMIT $4"
    assert Where().clause == ""


def test_bulk_statements_take_one_array_per_column_and_json_as_text() -> None:
    columns = [("id", "uuid"), ("context", "jsonb"), ("note", "text")]
    assert insert_many_sql("t", columns, on_conflict="(id) DO NOTHING", returning="id") == (
        "INSERT INTO t (id, context, note) SELECT id, context::jsonb, note"
        " FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(id, context, note)"
        " ON CONFLICT (id) DO NOTHING RETURNING id"
    )
    assert upsert_many_sql("t", columns, "id").endswith(
        "ON CONFLICT (id) DO UPDATE SET context = EXCLUDED.context, note = EXCLUDED.note"
    )
    assert update_many_sql("t", ("id", "uuid"), columns[1:]) == (
        "UPDATE t AS r SET context = u.context::jsonb, note = u.note"
        " FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, context, note) WHERE r.id = u.id"
    )


def test_column_arrays() -> None:
    @dataclass
    class Row:
        a: int
        b: str

    rows = [Row(1, "x"), Row(2, "y")]
    assert column_arrays(rows, ["a", "b"]) == [[1, 2], ["x", "y"]]
    assert column_arrays(rows, ["b"]) == [["x", "y"]]
    assert column_arrays([], ["a", "b"]) == [[], []]


class _Status(enum.StrEnum):
    FILED = "filed"


@dataclass(kw_only=True)
class _Case(Recorded[_Status, object]):
    id: str
    status: _Status = _Status.FILED


class _FailsOnce:
    """A connection whose first statement fails (a lost connection, a deadlock victim)."""

    def __init__(self) -> None:
        self.executed: list[tuple[Any, ...]] = []

    async def execute(self, sql: str, *args: Any) -> str:
        if not self.executed:
            self.executed.append(())
            raise ConnectionError("connection lost")
        self.executed.append(args)
        return "INSERT 0 1"


@pytest.mark.parametrize(
    "store",
    [
        lambda conn, case: save_history(conn, "case_history", "case_id", case),
        lambda conn, case: add_with_history(
            conn, "cases", ["id"], [case.id], "case_history", "case_id", case
        ),
    ],
    ids=["save_history", "add_with_history"],
)
async def test_history_entries_stay_new_until_their_statement_succeeded(store: Any) -> None:
    case = _Case(id="c1")
    at = datetime(2026, 12, 7, tzinfo=UTC)
    case._record(at, "filed", "citizen", None)
    case._record(at, "noted", "officer-1", "dicatat")
    conn = _FailsOnce()
    with pytest.raises(ConnectionError):
        await store(conn, case)
    assert len(case.new_history) == 2  # kept for the save that is tried again
    await store(conn, case)
    assert case.new_history == []
    assert conn.executed[-1][-5:] == (
        [at, at],
        ["filed", "noted"],
        ["filed", "filed"],  # a status by its value
        ["citizen", "officer-1"],
        [None, "dicatat"],
    )
