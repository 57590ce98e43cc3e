"""How figures are shown and judged in the report (shared by the phases' rows)."""

from __future__ import annotations


def verdict(
    value: float | None,
    target: float,
    higher_is_better: bool = True,
    *,
    why: str,
    unmeasured_is_missed: bool = False,
) -> str:
    """ "met", or "MISSED: `why`" (a miss always says why); "not measured" for no value,
    unless not getting to measure it is the miss (a ladder that stopped before the rate)."""
    if value is None:
        return f"MISSED: {why}" if unmeasured_is_missed else "not measured"
    met = value >= target if higher_is_better else value <= target
    return "met" if met else f"MISSED: {why}"


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def per_s(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}/s"
