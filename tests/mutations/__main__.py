"""`make test-mutations`: show that the tests cited for each guarantee fail when it breaks.

The tree (what git tracks, plus files it does not ignore) is copied to a temporary
folder; the cited tests first run there unmutated and must pass. Then each mutation of
`tests/mutations/catalogue.py` is applied to the copy, its tests run, and the copy is
restored. A mutation whose tests still pass has *survived*: the guarantee is unguarded,
and the run fails. `python -m tests.mutations NAME …` runs only the named ones;
`--jobs 2` judges two at once, each in its own copy (`make test-mutations` does: a run
spends most of its time starting an interpreter and waiting on its broker and database,
so two share two cores well).
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.mutations.catalogue import MUTATIONS, Edit, Mutation

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 600


class NoLongerApplies(Exception):
    """An anchor was not found exactly once: the code moved; rewrite the mutation."""


def apply(root: Path, edits: tuple[Edit, ...]) -> dict[Path, str]:
    """Apply `edits` under `root`; returns the original text of every file touched."""
    originals: dict[Path, str] = {}
    for edit in edits:
        path = root / edit.path
        text = originals.setdefault(path, path.read_text()) if path not in originals else path.read_text()
        count = text.count(edit.find)
        if count != 1:
            raise NoLongerApplies(f"{edit.path}: anchor found {count} times: {edit.find.strip()[:80]!r}")
        path.write_text(text.replace(edit.find, edit.replace))
    return originals


def restore(originals: dict[Path, str]) -> None:
    for path, text in originals.items():
        path.write_text(text)


def copy_tree(destination: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = destination / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@dataclass
class Outcome:
    name: str
    verdict: str  # killed | SURVIVED | NO LONGER APPLIES | ERROR
    seconds: float
    detail: str = ""


def run_tests(copy: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(copy),
        "SINERGI_TEST_LOG_DIR": str(copy / "test-artifacts" / "service-logs"),
        "SINERGI_ALLOW_SKIPS": "0",
    }
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(
            command, cwd=copy, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired:
        return -1, f"no result within {TIMEOUT_SECONDS} s"
    tail = [line for line in done.stdout.splitlines() if line.strip()][-3:]
    return done.returncode, " | ".join(tail)


def judge(copy: Path, mutation: Mutation) -> Outcome:
    began = time.monotonic()
    try:
        originals = apply(copy, mutation.edits)
    except NoLongerApplies as exc:
        return Outcome(mutation.name, "NO LONGER APPLIES", 0.0, str(exc))
    try:
        code, tail = run_tests(copy, mutation.tests)
    finally:
        restore(originals)
    seconds = time.monotonic() - began
    # pytest: 1 = tests failed (the mutation was caught); a hang caught by the timeout
    # also fails the tests. 0 = all passed (survived); anything else is not a verdict.
    if code in (1, -1):
        return Outcome(mutation.name, "killed", seconds, tail)
    if code == 0:
        return Outcome(mutation.name, "SURVIVED", seconds, tail)
    return Outcome(mutation.name, "ERROR", seconds, f"pytest exit {code}: {tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only these mutations (default: all)")
    parser.add_argument(
        "--jobs", type=int, default=1, help="mutations judged at once, each in its own copy (default 1)"
    )
    args = parser.parse_args()
    unknown = set(args.names) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutations: {sorted(unknown)}")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]

    with tempfile.TemporaryDirectory(prefix="sinergi-mutations-") as folder:
        copies = [Path(folder) / f"copy-{n}" for n in range(min(args.jobs, len(chosen)) or 1)]
        for copy in copies:
            copy_tree(copy)
        cited = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        print(f"baseline: {len(cited)} cited tests, unmutated", flush=True)
        began = time.monotonic()
        code, tail = run_tests(copies[0], cited)
        if code != 0:
            # Once more before giving up: a verdict needs a baseline that passes, and the
            # fault-injecting tests (a database restart) can lose a race on a busy machine.
            print(f"the cited tests failed without any mutation (exit {code}): {tail}; running them again")
            code, tail = run_tests(copies[0], cited)
        if code != 0:
            print(f"the cited tests fail without any mutation (exit {code}): {tail}")
            return 1
        print(f"baseline passed ({time.monotonic() - began:.0f} s)", flush=True)
        outcomes = judge_all(copies, chosen)

    killed = sum(o.verdict == "killed" for o in outcomes)
    print(f"\n{killed} of {len(outcomes)} mutations killed")
    for outcome in outcomes:
        if outcome.verdict != "killed":
            print(f"  {outcome.verdict}: {outcome.name} — {outcome.detail}")
    return 0 if killed == len(outcomes) else 1


def judge_all(copies: list[Path], chosen: list[Mutation]) -> list[Outcome]:
    """Every mutation judged, as many at once as there are copies (each mutation edits
    files, so one copy holds one mutation at a time); the verdicts in catalogue order."""
    free: queue.Queue[Path] = queue.Queue()
    for copy in copies:
        free.put(copy)

    def judged(mutation: Mutation) -> Outcome:
        copy = free.get()
        try:
            outcome = judge(copy, mutation)
        finally:
            free.put(copy)
        print(
            f"{outcome.verdict:>17}  {mutation.name}  ({outcome.seconds:.0f} s)  {outcome.detail}", flush=True
        )
        return outcome

    with ThreadPoolExecutor(max_workers=len(copies)) as pool:
        return list(pool.map(judged, chosen))


if __name__ == "__main__":
    sys.exit(main())
