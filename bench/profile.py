"""Sampling profiles of a running service process (py-spy), for `make bench --profile`.

py-spy attaches to the process by pid for a fixed window and writes folded stacks
(`raw` format: one "frame;frame;frame count" line per distinct stack). `summarise`
turns them into the two lists that point at the slow path: where the samples are
spent (leaf frames, "self") and which of our own functions they are spent under
("inclusive", limited to this repository's code).

    python -m bench.profile bench/results/profiles/notifications.txt
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.settings import PROFILES

# {"samples": n, "self": [(frame, share)], "inclusive": [(frame, share)]}
Summary = dict[str, Any]

OWN_CODE = ("services/", "shared/", "bench/", "services.", "shared.", "bench.")


def py_spy() -> str | None:
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float, out: Path, rate: int = 200) -> Path | None:
    """Sample `pid` for `seconds`; returns the folded-stack file, or None when py-spy
    is missing or may not attach (ptrace not permitted)."""
    binary = py_spy()
    if binary is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        binary, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
        "--rate", str(rate), "--format", "raw", "--output", str(out), "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await proc.wait()
    return out if proc.returncode == 0 else None


def _frames(stack: str) -> list[str]:
    return [f for f in stack.split(";") if f]


def summarise(folded: Path, top: int = 15) -> Summary:
    """Shares of samples per leaf frame and per own-code frame on the stack, and how many
    samples there were."""
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = _frames(stack)
        leaf[frames[-1]] += count
        for frame in set(frames):
            if any(marker in frame for marker in OWN_CODE):
                inclusive[frame] += count
    if not total:
        return {"samples": 0, "self": [], "inclusive": []}
    return {
        "samples": total,
        "self": [(f, n / total) for f, n in leaf.most_common(top)],
        "inclusive": [(f, n / total) for f, n in inclusive.most_common(top)],
    }


def render(summary: Summary) -> str:
    # py-spy leaves out a thread waiting in a system call (the event loop with nothing to
    # do): a window the process spent idle has few samples, or none.
    if not summary["samples"]:
        return "  no samples: the process was idle (waiting for work) the whole window"
    lines = [f"  {summary['samples']:,} samples (idle time is not sampled)"]
    for title, key in (("where samples are spent (self)", "self"), ("own code (inclusive)", "inclusive")):
        lines.append(f"  {title}:")
        lines += [f"    {share:6.1%}  {frame}" for frame, share in summary[key]]
    return "\n".join(lines)


@dataclass
class Profiler:
    """A run's profiling settings (--profile: on, and where the folded stacks go) and
    what it found, per sampled window."""

    enabled: bool = False
    directory: Path = PROFILES
    summaries: dict[str, Summary] = field(default_factory=dict)
    scope: str = ""  # before each window's name: the broker the phase runs on, when several

    async def sample(self, pid: int, name: str, seconds: float) -> None:
        """When enabled: sample `pid` for `seconds` and print where it spends its time."""
        if not self.enabled:
            return
        name = f"{self.scope}-{name}" if self.scope else name
        folded = await record(pid, seconds, self.directory / f"{name}.txt")
        if folded is None:
            print(f"  (py-spy could not profile {name})", flush=True)
            return
        summary = self.summaries[name] = summarise(folded)
        print(f"  profile of {name}:\n{render(summary)}", flush=True)


# The run's profiler: set once by bench.run for the whole run (a context variable, so
# every phase sees the run's setting without each signature carrying it, and a test or
# a second run in the same process has its own).
_ACTIVE: ContextVar[Profiler | None] = ContextVar("bench_profiler", default=None)


def active() -> Profiler:
    """The run's profiler; outside a run, one that samples nothing."""
    return _ACTIVE.get() or Profiler()


@contextlib.contextmanager
def profiling(profiler: Profiler) -> Iterator[Profiler]:
    """`profiler` is the active one inside the block (asyncio.run inside it inherits it)."""
    token = _ACTIVE.set(profiler)
    try:
        yield profiler
    finally:
        _ACTIVE.reset(token)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folded", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(render(summarise(args.folded, args.top)))


if __name__ == "__main__":
    main()
