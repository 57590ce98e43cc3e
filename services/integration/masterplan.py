"""The smart-city masterplan: dimensions, programmes (anchored in the RPJMD and the
APBD) and their indicators, read from a YAML file the regency edits.

`load_masterplan` validates everything a mistake could break — unknown keys, unknown
dimensions, unknown indicator functions, bad parameters, duplicate codes, share targets
written as percentages — and raises :class:`MasterplanError` naming the file and the
place, so the service refuses to start on a broken file instead of showing nonsense.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from services.integration.domain import Direction, Period
from services.integration.indicators import FUNCTIONS, IndicatorFunction, Params, Unit

HERE = Path(__file__).parent
DEFAULT_PATH = HERE / "masterplan.yaml"
KOMINFO_PATH = HERE / "masterplan_kominfo.yaml"

# The seed's six smart-city dimensions, used when a masterplan file lists none.
DEFAULT_DIMENSIONS: list[dict[str, Any]] = [
    {"code": "governance", "name": {"id": "Tata Kelola Cerdas", "en": "Smart Governance"}},
    {"code": "economy", "name": {"id": "Ekonomi Cerdas", "en": "Smart Economy"}},
    {"code": "mobility", "name": {"id": "Mobilitas Cerdas", "en": "Smart Mobility"}},
    {"code": "environment", "name": {"id": "Lingkungan Cerdas", "en": "Smart Environment"}},
    {"code": "people", "name": {"id": "Masyarakat Cerdas", "en": "Smart People"}},
    {"code": "living", "name": {"id": "Kehidupan Cerdas", "en": "Smart Living"}},
]

Code = str


def _local_text(value: Any) -> dict[str, str]:
    if isinstance(value, str) and value.strip():
        return {"id": value}
    if (
        isinstance(value, dict)
        and isinstance(value.get("id"), str)
        and all(k in ("id", "en") and isinstance(v, str) for k, v in value.items())
    ):
        return dict(value)
    raise ValueError("write a text, or {id: Indonesian text, en: English text}")


# A text in Indonesian, or {id: ..., en: ...}.
LocalText = Annotated[dict[str, str], BeforeValidator(_local_text)]


class MasterplanError(ValueError):
    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"masterplan {path} is not valid:\n{listing}")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _local(value: dict[str, str] | None) -> dict[str, str] | None:
    return None if value is None else dict(value)


class DimensionIn(_In):
    code: Code = Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")
    name: LocalText
    description: LocalText | None = None


class IndicatorIn(_In):
    code: Code = Field(pattern=r"^[a-z][a-z0-9_]{1,60}$")
    name: LocalText
    description: LocalText | None = None
    function: str
    params: dict[str, Any] = Field(default_factory=dict)
    target: float
    direction: Direction = "higher"
    period: Period = "month"
    trend: int = Field(6, ge=1, le=24, description="How many periods the trend chart shows")
    dimension: Code | None = Field(None, description="Defaults to the programme's dimension")


class ProgrammeIn(_In):
    code: str = Field(min_length=1, max_length=40)
    name: LocalText
    dimension: Code
    rpjmd: str = Field(min_length=1, max_length=60, description="RPJMD programme code")
    apbd: str = Field(min_length=1, max_length=80, description="APBD budget line (kode rekening)")
    opd: str | None = Field(None, max_length=20)
    budget_idr: int | None = Field(None, ge=0)
    indicators: list[IndicatorIn] = Field(min_length=1)


class MasterplanIn(_In):
    name: LocalText
    region: str = "33.06"
    period: str | None = Field(None, description="e.g. RPJMD 2025-2029")
    timezone: str = "Asia/Jakarta"
    dimensions: list[DimensionIn] = Field(
        default_factory=lambda: [DimensionIn(**d) for d in DEFAULT_DIMENSIONS]
    )
    programmes: list[ProgrammeIn] = Field(min_length=1)


@dataclass(frozen=True)
class Dimension:
    code: str
    name: dict[str, str]
    description: dict[str, str] | None = None


@dataclass(frozen=True)
class Indicator:
    code: str
    name: dict[str, str]
    description: dict[str, str] | None
    function: IndicatorFunction
    params: Params
    target: float
    direction: Direction
    period: Period
    trend: int
    dimension: str
    programme: str
    unit: Unit


@dataclass(frozen=True)
class Programme:
    code: str
    name: dict[str, str]
    dimension: str
    rpjmd: str
    apbd: str
    opd: str | None
    budget_idr: int | None
    indicators: tuple[Indicator, ...]


@dataclass(frozen=True)
class Masterplan:
    name: dict[str, str]
    region: str
    period: str | None
    timezone: ZoneInfo
    dimensions: tuple[Dimension, ...]
    programmes: tuple[Programme, ...]
    source: str

    @property
    def indicators(self) -> list[Indicator]:
        return [i for p in self.programmes for i in p.indicators]

    def dimension(self, code: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.code == code), None)


def text(value: dict[str, str] | None, lang: str) -> str:
    if not value:
        return ""
    return value.get(lang) or value["id"]


def _loc(parts: tuple[Any, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_masterplan(path: Path | str = DEFAULT_PATH) -> Masterplan:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MasterplanError(path, ["file not found"]) from None
    except yaml.YAMLError as exc:
        raise MasterplanError(path, [f"not valid YAML: {exc}"]) from None
    return parse_masterplan(raw, source=str(path))


def parse_masterplan(raw: Any, *, source: str = "<masterplan>") -> Masterplan:
    if not isinstance(raw, dict):
        raise MasterplanError(source, ["the file must be a mapping with 'name', 'dimensions', 'programmes'"])
    try:
        plan = MasterplanIn.model_validate(raw)
    except ValidationError as exc:
        raise MasterplanError(source, [f"{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]) from None

    problems: list[str] = []
    try:
        tz = ZoneInfo(plan.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone: unknown time zone {plan.timezone!r}")
        tz = ZoneInfo("Asia/Jakarta")
    codes = [d.code for d in plan.dimensions]
    for code in sorted({c for c in codes if codes.count(c) > 1}):
        problems.append(f"dimensions: dimension {code!r} is listed twice")
    known = ", ".join(codes)

    programmes: list[Programme] = []
    seen_programmes: set[str] = set()
    seen_indicators: set[str] = set()
    for p_index, p in enumerate(plan.programmes):
        where = f"programmes[{p_index}] ({p.code})"
        if p.code in seen_programmes:
            problems.append(f"{where}.code: programme {p.code!r} is listed twice")
        seen_programmes.add(p.code)
        if p.dimension not in codes:
            problems.append(
                f"{where}.dimension: unknown dimension {p.dimension!r}; this masterplan's dimensions are: {known}"
            )
        indicators: list[Indicator] = []
        for i_index, i in enumerate(p.indicators):
            at = f"{where}.indicators[{i_index}] ({i.code})"
            if i.code in seen_indicators:
                problems.append(f"{at}.code: indicator {i.code!r} is listed twice")
            seen_indicators.add(i.code)
            dimension = i.dimension or p.dimension
            if i.dimension is not None and i.dimension not in codes:
                problems.append(
                    f"{at}.dimension: unknown dimension {i.dimension!r}; this masterplan's dimensions are: {known}"
                )
            function = FUNCTIONS.get(i.function)
            if function is None:
                problems.append(
                    f"{at}.function: unknown indicator function {i.function!r}; "
                    f"available: {', '.join(sorted(FUNCTIONS))}"
                )
                continue
            try:
                params = function.params_model.model_validate(i.params)
            except ValidationError as exc:
                problems += [f"{at}.params.{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
                continue
            unit = function.unit(params)
            if unit == "ratio" and not 0 <= i.target <= 1:
                problems.append(
                    f"{at}.target: {i.function} gives a share: write the target as 0..1 (e.g. 0.8 for 80%)"
                )
            indicators.append(
                Indicator(
                    code=i.code,
                    name=_local(i.name) or {},
                    description=_local(i.description),
                    function=function,
                    params=params,
                    target=i.target,
                    direction=i.direction,
                    period=i.period,
                    trend=i.trend,
                    dimension=dimension,
                    programme=p.code,
                    unit=unit,
                )
            )
        programmes.append(
            Programme(
                code=p.code,
                name=_local(p.name) or {},
                dimension=p.dimension,
                rpjmd=p.rpjmd,
                apbd=p.apbd,
                opd=p.opd,
                budget_idr=p.budget_idr,
                indicators=tuple(indicators),
            )
        )
    if problems:
        raise MasterplanError(source, problems)
    return Masterplan(
        name=_local(plan.name) or {},
        region=plan.region,
        period=plan.period,
        timezone=tz,
        dimensions=tuple(
            Dimension(d.code, _local(d.name) or {}, _local(d.description)) for d in plan.dimensions
        ),
        programmes=tuple(programmes),
        source=source,
    )
