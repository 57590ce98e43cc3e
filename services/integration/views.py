"""What the JSON API (api.py) and the pages (pages.py) share: the use-case context as a
route parameter, the officer roles, the language of a request, and the localisation of
the use cases' language-neutral data (names as {id, en}, actions and categories as keys)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request

from services.integration import handlers
from services.integration.i18n import translator
from services.integration.indicators import FUNCTIONS
from services.integration.masterplan import Masterplan, text
from shared.kit.app import context_dependency
from shared.kit.auth import require_role
from shared.kit.i18n import choose_language

Ctx = Annotated[handlers.Context, Depends(context_dependency(handlers.Context))]

# Who may see a citizen's timeline, on the API and on the officers' page (admin always may).
OFFICER_ROLES = ("coordinator",)
officer = require_role(*OFFICER_ROLES)


def lang_of(request: Request, lang: str | None) -> str:
    """`?lang=` wins, then the browser's Accept-Language; Indonesian by default."""
    return choose_language(lang, request.headers.get("accept-language"))


# ----- localisation of the neutral data -------------------------------------------------


def localise_feed(entry: dict[str, Any], lang: str) -> dict[str, Any]:
    t = translator(lang)
    category = entry.get("category")
    return {
        **entry,
        "label": t(f"action.{entry['action']}"),
        "domain_label": t(f"domain.{entry['domain']}"),
        "category_label": t(f"category.{category}") if category else None,
        "title_note": t("text.withheld") if entry.get("title_withheld") else None,
    }


def localise_history(entry: dict[str, Any], lang: str) -> dict[str, Any]:
    return {**entry, "label": translator(lang)(f"action.{entry['action']}")}


def localise_timeline(data: dict[str, Any], lang: str) -> dict[str, Any]:
    return {**data, "timeline": [localise_history(e, lang) for e in data["timeline"]]}


def localise_dashboard(data: dict[str, Any], lang: str) -> dict[str, Any]:
    def indicator(i: dict[str, Any]) -> dict[str, Any]:
        return {**i, "name": text(i["name"], lang), "description": text(i["description"], lang) or None}

    return {
        **data,
        "masterplan": {**data["masterplan"], "name": text(data["masterplan"]["name"], lang)},
        "dimensions": [
            {
                **d,
                "name": text(d["name"], lang),
                "description": text(d["description"], lang) or None,
                "programmes": [
                    {
                        **p,
                        "name": text(p["name"], lang),
                        "indicators": [indicator(i) for i in p["indicators"]],
                    }
                    for p in d["programmes"]
                ],
            }
            for d in data["dimensions"]
        ],
        "feed": [localise_feed(e, lang) for e in data["feed"]],
    }


def find_indicator(dashboard: dict[str, Any], code: str) -> dict[str, Any] | None:
    for dimension in dashboard["dimensions"]:
        for programme in dimension["programmes"]:
            for indicator in programme["indicators"]:
                if indicator["code"] == code:
                    return indicator
    return None


def localise_track(item: dict[str, Any], lang: str) -> dict[str, Any]:
    t = translator(lang)
    category = item.get("category")
    return {
        **item,
        "category_label": t(f"category.{category}") if category else None,
        # The citizen's words for each step of their case (officers read `action.*`).
        "history": [{**h, "label": t(f"case.{h['domain']}.{h['action']}")} for h in item["history"]],
    }


TRACK_PAGE = "/lacak"  # the tracking page (pages.py), by `?kode=`


def tracking_path(code: str, lang: str) -> str:
    """The tracking page of `code`, in `lang` (Indonesian needs no parameter)."""
    query = {"kode": code, **({"lang": lang} if lang != "id" else {})}
    return f"{TRACK_PAGE}?{urlencode(query)}"


def localise_service(item: dict[str, Any], lang: str) -> dict[str, Any]:
    """One of a citizen's services in plain words, as the tracking page names them: the
    kind, the service (complaint category, permit type, polyclinic) and the status."""
    t = translator(lang)
    category = item.get("category")
    return {
        **item,
        "kind_label": t(f"kind.{item['kind']}"),
        "service": t(f"category.{category}") if category else t(f"domain.{item['domain']}"),
        "status_label": t(f"status.{item['status']}"),
        "tracking_url": tracking_path(item["code"], lang),
    }


def masterplan_view(plan: Masterplan, lang: str) -> dict[str, Any]:
    """The masterplan in force: dimensions, programmes and indicator definitions."""
    return {
        "name": text(plan.name, lang),
        "period": plan.period,
        "region": plan.region,
        "timezone": plan.timezone.key,
        "source": plan.source.rsplit("/", 1)[-1],
        "dimensions": [
            {"code": d.code, "name": text(d.name, lang), "description": text(d.description, lang) or None}
            for d in plan.dimensions
        ],
        "programmes": [
            {
                "code": p.code,
                "name": text(p.name, lang),
                "dimension": p.dimension,
                "rpjmd": p.rpjmd,
                "apbd": p.apbd,
                "opd": p.opd,
                "budget_idr": p.budget_idr,
                "indicators": [
                    {
                        "code": i.code,
                        "name": text(i.name, lang),
                        "dimension": i.dimension,
                        "function": i.function.name,
                        "params": i.params.model_dump(exclude_defaults=True),
                        "unit": i.unit,
                        "target": i.target,
                        "direction": i.direction,
                        "period": i.period,
                        "trend": i.trend,
                    }
                    for i in p.indicators
                ],
            }
            for p in plan.programmes
        ],
    }


def indicator_functions() -> list[dict[str, Any]]:
    """The named indicator functions a masterplan may use, with their parameters."""
    return [
        {
            "name": f.name,
            "description": f.description,
            "state": f.state,
            "params_schema": f.params_model.model_json_schema(),
        }
        for f in FUNCTIONS.values()
    ]
