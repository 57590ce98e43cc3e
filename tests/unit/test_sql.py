"""The kit's SQL building blocks, as text (their use against PostgreSQL is covered by
the repositories' integration tests)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.kit.sql import Where, column_arrays, insert_many_sql, update_many_sql, upsert_many_sql


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
