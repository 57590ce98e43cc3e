"""SQL lives in repositories (docs/architecture.md, "Service anatomy"): a service runs
statements and writes SQL only in its `repository.py` (or a `repository/` package),
its migrations and, for what every service shares, the kit. Routes open no connection
of their own. A use case, a route or a job that talks to the database directly fails
this test."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
# asyncpg's ways of running a statement.
STATEMENTS = {"execute", "executemany", "fetch", "fetchrow", "fetchval", "cursor", "copy_records_to_table"}
SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|LOCK)\s", re.MULTILINE)
# Routes hand HTTP to a use case; they open no connection of their own.
CONNECTIONS = {"acquire", "transaction"}
ROUTES = {"api.py", "pages.py"}


def _allowed(path: Path) -> bool:
    parts = path.relative_to(SERVICES).parts
    return parts[-1] == "repository.py" or "repository" in parts[1:-1] or "tests" in parts


def violations(path: Path, name: str) -> list[str]:
    tree = ast.parse(path.read_text(), filename=name)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in STATEMENTS:
                found.append(f"{name}:{node.lineno} runs .{node.func.attr}()")
            elif node.func.attr in CONNECTIONS and path.name in ROUTES:
                found.append(f"{name}:{node.lineno} opens a connection in a route (.{node.func.attr}())")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append(f"{name}:{node.lineno} holds SQL: {node.value.strip()[:60]!r}")
    return found


def test_services_run_sql_only_in_their_repositories() -> None:
    found = [
        finding
        for path in sorted(SERVICES.rglob("*.py"))
        if not _allowed(path)
        for finding in violations(path, str(path.relative_to(ROOT)))
    ]
    assert not found, "SQL outside a repository:\n" + "\n".join(found)


def test_the_check_sees_sql_where_it_should_not_be(tmp_path: Path) -> None:
    handler = tmp_path / "handlers.py"
    handler.write_text('async def f(conn):\n    await conn.fetchval("SELECT 1")\n')
    assert len(violations(handler, "handlers.py")) == 2
    route = tmp_path / "api.py"
    route.write_text("async def f(ctx):\n    async with ctx.pool().acquire() as conn:\n        pass\n")
    assert len(violations(route, "api.py")) == 1
