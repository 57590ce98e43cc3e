"""A WHERE clause with numbered asyncpg parameters, for the officers' filtered lists."""

from __future__ import annotations

from typing import Any


class Where:
    """`add("a.status = ?", status)`: each `?` takes the next value as `$n`."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.args: list[Any] = []

    def add(self, condition: str, *values: Any) -> None:
        for value in values:
            self.args.append(value)
            condition = condition.replace("?", f"${len(self.args)}", 1)
        self.conditions.append(condition)

    @property
    def clause(self) -> str:
        return ("WHERE " + " AND ".join(self.conditions)) if self.conditions else ""
