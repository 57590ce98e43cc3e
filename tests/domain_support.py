"""What the domain services' unit tests share (services/*/tests/test_domain.py): a
refused command raises its domain error and leaves the aggregate exactly as it was."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest

from shared.kit.errors import IllegalTransition

E = TypeVar("E", bound=BaseException)


@contextmanager
def refused(
    error: type[E], state: Callable[[], object], *, match: str | None = None
) -> Iterator[pytest.ExceptionInfo[E]]:
    """The command in the block raises `error` (its message matching `match`) and
    changes nothing: `state()`, a snapshot of the aggregate, is the same after as before.
    Yields the caught error's info, for the block's caller to check its details."""
    before = state()
    with pytest.raises(error, match=match) as info:
        yield info
    assert state() == before, "a refused command changed the aggregate"


@contextmanager
def illegal_transition(
    state: Callable[[], object], current: object, command: str
) -> Iterator[pytest.ExceptionInfo[IllegalTransition]]:
    """The command in the block is refused as an illegal transition (409) of `command`
    from status `current`, and changes nothing (see `refused`)."""
    with refused(IllegalTransition, state) as info:
        yield info
    assert info.value.current == current
    assert info.value.command == command
    assert info.value.status_code == 409
