"""Reference data of the complaints service: OPDs and categories (catalogue.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from services.complaints.domain import Category, Opd

DEFAULT_PATH = Path(__file__).with_name("catalogue.yaml")


@dataclass(frozen=True)
class Catalogue:
    categories: dict[str, Category]
    opds: dict[str, Opd]

    def category(self, code: str, *, opd: str | None = None, dimension: str | None = None) -> Category:
        """The category, or a stand-in for one since removed from the file (old rows)."""
        found = self.categories.get(code)
        if found is not None:
            return found
        return Category(code=code, name=code, opd=opd or "", dimension=dimension or "governance")


def load_catalogue(path: Path = DEFAULT_PATH) -> Catalogue:
    raw = yaml.safe_load(path.read_text())
    opds = {o["code"]: Opd(code=o["code"], name=o["name"]) for o in raw["opds"]}
    categories: dict[str, Category] = {}
    for c in raw["categories"]:
        if c["opd"] not in opds:
            raise ValueError(f"category {c['code']} names unknown OPD {c['opd']}")
        categories[c["code"]] = Category(c["code"], c["name"], c["opd"], c["dimension"])
    return Catalogue(categories=categories, opds=opds)
