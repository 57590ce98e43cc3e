"""A message to a citizen never quotes what the submitter wrote: anyone can name any
phone number or address when filing, so an official regency message must not carry a
stranger's words to it (a title, a description, a reason given when reopening). Nor does
it hand out another citizen's tracking code (the complaint a duplicate was merged into:
its code lets its filer rate and reopen it)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parents[1]
# Event type -> the fields of its payload the submitter (not an officer) wrote, or that
# belong to someone else.
NOT_FOR_THE_CITIZEN = {
    "id.sinergi.complaints.complaint.filed.v1": {"title", "description"},
    "id.sinergi.complaints.complaint.reopened.v1": {"reason"},
    "id.sinergi.complaints.complaint.merged.v1": {"duplicate_of"},
}


def citizen_templates() -> dict[str, set[str]]:
    """Template name -> the fields it must not show, of the events it is used for."""
    rules = yaml.safe_load((HERE / "rules.yaml").read_text())["rules"]
    found: dict[str, set[str]] = {}
    for rule in rules:
        if rule["to"] != "citizen":
            continue
        for event in rule.get("events") or [rule["event"]]:
            found.setdefault(rule["template"], set()).update(NOT_FOR_THE_CITIZEN.get(event, set()))
    return found


def test_no_citizen_message_quotes_the_submitters_text_or_anothers_code() -> None:
    templates = citizen_templates()
    assert templates["complaints/filed"] == {"title", "description"}
    assert templates["complaints/merged"] == {"duplicate_of"}
    quoting = []
    for template, fields in templates.items():
        for path in sorted((HERE / "templates").glob(f"*/{template}.*.j2")):
            text = path.read_text()
            quoting += [
                f"{path.relative_to(HERE)}: data.{f}" for f in fields if re.search(rf"\bdata\.{f}\b", text)
            ]
    assert not quoting, quoting
