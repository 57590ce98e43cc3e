"""The consumer watchdog's decision without I/O (shared/kit/watchdog.py `stalled`): a
consumer is stalled only when its partitions have held records it has not consumed for
longer than the limit and no batch reached it meanwhile."""

from __future__ import annotations

import pytest

from shared.kit.watchdog import Watched, stalled

LIMIT = 30.0
NOW = 1000.0


def test_nothing_to_consume_is_idle_not_stalled() -> None:
    # The last batch came long ago, but the partitions hold nothing new.
    assert not stalled(Watched(waiting_since=None, delivered_at=0.0, busy=False), NOW, LIMIT)


def test_records_waiting_longer_than_the_limit_with_no_batch_is_stalled() -> None:
    assert stalled(Watched(waiting_since=NOW - LIMIT - 1, delivered_at=0.0, busy=False), NOW, LIMIT)


def test_records_waiting_shorter_than_the_limit_is_not_yet_stalled() -> None:
    assert not stalled(Watched(waiting_since=NOW - LIMIT + 1, delivered_at=0.0, busy=False), NOW, LIMIT)


def test_an_old_last_batch_does_not_count_before_records_wait() -> None:
    # A quiet consumer whose last batch is an hour old gets a new record: the clock
    # starts when records wait, not at the last batch.
    watched = Watched(waiting_since=NOW - 5, delivered_at=NOW - 3600, busy=False)
    assert not stalled(watched, NOW, LIMIT)


def test_a_batch_while_records_wait_restarts_the_clock() -> None:
    # A backlog being worked through: records wait all along, but batches keep coming.
    watched = Watched(waiting_since=NOW - 10 * LIMIT, delivered_at=NOW - 1, busy=False)
    assert not stalled(watched, NOW, LIMIT)
    watched = Watched(waiting_since=NOW - 10 * LIMIT, delivered_at=NOW - LIMIT - 1, busy=False)
    assert stalled(watched, NOW, LIMIT)


@pytest.mark.parametrize("waiting_for", [LIMIT + 1, 10 * LIMIT])
def test_a_batch_in_the_handler_is_never_a_stall(waiting_for: float) -> None:
    # A slow or unavailable database holds the batch; restarting would not help.
    watched = Watched(waiting_since=NOW - waiting_for, delivered_at=NOW - waiting_for, busy=True)
    assert not stalled(watched, NOW, LIMIT)
