"""The history of an aggregate that citizens follow (a complaint, a permit application):
each step taken on it, when, by whom and the status it left it in. Pure, for the
domains; the repositories store it with `shared.kit.sql.save_history` and
`load_history`, in a `<aggregate>_history` table of these columns."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from shared.kit.errors import IllegalTransition
from shared.kit.privacy import SealedContact, SealedText

S = TypeVar("S")  # the aggregate's status
E = TypeVar("E")  # the aggregate's domain event


@dataclass(frozen=True)
class HistoryEntry(Generic[S]):
    at: datetime
    action: str
    status: S
    actor: str  # "citizen" or "applicant", "system" or an officer's subject
    note: str | None = None  # public text, shown to the citizen


@dataclass(kw_only=True)
class Recorded(Generic[S, E]):
    """What an aggregate keeping a history has besides its own fields: its `history`
    (oldest first), the entries its commands added since it was loaded (`new_history`,
    which the repository stores and clears), the domain events its commands raised
    (`events`, which the handler drains into the outbox), the citizen's `contact` sealed
    for the notification service, `seal_text` sealing what the citizen wrote for the
    events (both given by the use case: the domain holds no key), and the `version` the
    repository checks on save.
    Keyword-only, so a subclass's own fields keep their order before these. Its commands
    call `_record`, and `_require_status` (or raise `_refused`) for a command its current
    status does not allow."""

    if TYPE_CHECKING:  # declared by each aggregate, not fields of this base
        id: Any
        status: S

    version: int = 0
    contact: SealedContact | None = None
    seal_text: Callable[[str], SealedText] | None = None
    history: list[HistoryEntry[S]] = field(default_factory=list)
    events: list[E] = field(default_factory=list)
    new_history: list[HistoryEntry[S]] = field(default_factory=list)

    def _record(self, now: datetime, action: str, actor: str, note: str | None) -> None:
        entry = HistoryEntry(at=now, action=action, status=self.status, actor=actor, note=note)
        self.history.append(entry)
        self.new_history.append(entry)

    def _sealed(self, text: str | None) -> SealedText | None:
        """What the citizen wrote as an event carries it: sealed, never in clear (without a
        sealer, not at all)."""
        return None if text is None or self.seal_text is None else self.seal_text(text)

    def _refused(self, command: str, reason: str) -> IllegalTransition:
        """The error refusing `command` in the aggregate's current status, for `reason`."""
        return IllegalTransition(reason, current=self.status, command=command)  # type: ignore[arg-type]

    def _require_status(self, command: str, allowed: Collection[S], what: str) -> None:
        """Refuse `command` unless the current status is one of `allowed`, naming them;
        `what` is the aggregate as the message names it ("a complaint")."""
        if self.status not in allowed:
            listed = ", ".join(sorted(str(s) for s in allowed))
            raise self._refused(
                command,
                f"cannot {command.replace('_', ' ')} {what} that is {self.status} (allowed from: {listed})",
            )
