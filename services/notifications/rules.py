"""The operator's files: notification rules (rules.yaml) and officer addresses
(recipients.yaml), reloaded when their modification time changes.

A broken edit never takes the service down: the last good version stays in force, the
error is logged and shown by `GET /rules`, and `sinergi_notifications_rules_reload_errors_total`
counts it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from services.notifications.domain import Recipients, RuleError, RuleSet, parse_recipients, parse_rules
from shared.reference import normalize_mobile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    rules: RuleSet
    recipients: Recipients


def _mtime(path: Path) -> float | None:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None


class RuleBook:
    def __init__(
        self,
        rules_path: Path,
        recipients_path: Path,
        *,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.rules_path = Path(rules_path)
        self.recipients_path = Path(recipients_path)
        self.on_error = on_error
        self._stamp: tuple[float | None, float | None] | None = None
        self._loaded: Loaded | None = None
        self.error: str | None = None
        self.loads = 0
        self._lock = threading.Lock()

    def current(self) -> Loaded:
        """The rules in force, reloaded first if a file changed since the last look."""
        stamp = (_mtime(self.rules_path), _mtime(self.recipients_path))
        if stamp != self._stamp or self._loaded is None:
            with self._lock:
                if stamp != self._stamp or self._loaded is None:
                    self._reload(stamp)
        assert self._loaded is not None
        return self._loaded

    def _reload(self, stamp: tuple[float | None, float | None]) -> None:
        try:
            rules = parse_rules(yaml.safe_load(self.rules_path.read_text(encoding="utf-8")))
            recipients_doc = (
                yaml.safe_load(self.recipients_path.read_text(encoding="utf-8"))
                if self.recipients_path.exists()
                else None
            )
            recipients = parse_recipients(recipients_doc, normalize_mobile)
        except (OSError, yaml.YAMLError, RuleError) as exc:
            self._stamp = stamp  # do not re-read a broken file on every event
            self.error = f"{type(exc).__name__}: {exc}"[:1000]
            log.error(
                "notification rules not reloaded; keeping the last good ones", extra={"error": self.error}
            )
            if self.on_error is not None:
                self.on_error(self.error)
            if self._loaded is None:
                # Nothing good to keep: notify nobody rather than crash every event.
                self._loaded = Loaded(RuleSet(), Recipients())
            return
        self._stamp = stamp
        self._loaded = Loaded(rules, recipients)
        self.error = None
        self.loads += 1
        log.info(
            "notification rules loaded",
            extra={"rules": len(rules.rules), "opds": len(recipients.opds), "roles": len(recipients.roles)},
        )
