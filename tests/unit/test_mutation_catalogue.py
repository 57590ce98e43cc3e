"""The mutation catalogue (`make test-mutations`) stays usable between its runs: every
anchor is still found exactly once, every cited test exists, and the reliability docs
name every mutation beside its guarantee."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutations.catalogue import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parents[2]


def test_names_are_unique() -> None:
    names = [m.name for m in MUTATIONS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_every_anchor_is_found_exactly_once(mutation: Mutation) -> None:
    texts: dict[str, str] = {}
    for edit in mutation.edits:
        text = texts.setdefault(edit.path, (ROOT / edit.path).read_text())
        assert text.count(edit.find) == 1, f"{edit.path}: rewrite the mutation against the new code"
        texts[edit.path] = text.replace(edit.find, edit.replace)
        assert texts[edit.path] != text


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_cited_tests_exist(mutation: Mutation) -> None:
    assert mutation.tests
    for node in mutation.tests:
        path, _, name = node.partition("::")
        source = (ROOT / path).read_text()
        assert not name or f"def {name.split('[')[0]}(" in source, node


def test_the_docs_name_every_mutation() -> None:
    docs = (ROOT / "docs" / "reliability.md").read_text() + (ROOT / "docs" / "architecture.md").read_text()
    missing = [m.name for m in MUTATIONS if f"`{m.name}`" not in docs]
    assert not missing, f"docs/reliability.md does not name: {missing}"
