"""The reference an intake endpoint's cost is measured against: the least a FastAPI
route that stores a request can do here. One route validates a small JSON body, inserts
one row with asyncpg through the kit's pool (same codecs, same pool settings) and
answers 201, under uvicorn as the kit serves (same loop and HTTP parser). What an
endpoint costs beyond it (its CPU per request as a multiple of this one's, measured in
the same run: `python -m bench.run --only intake`) is what Sinergi adds: admission
control, validation, the domain, sealing, the outbox, the relay.

`python -m bench.reference` with REFERENCE_DATABASE_URL and REFERENCE_PORT.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel

from shared.kit.db import create_pool

PATH = "/reference"


class Item(BaseModel):
    """A body about the size of a small form."""

    title: str
    description: str


def build(database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await create_pool(database_url)
        await app.state.pool.execute(
            "CREATE TABLE IF NOT EXISTS reference_items (id bigserial PRIMARY KEY, title text NOT NULL,"
            " description text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post(PATH, status_code=201)
    async def store(item: Item, request: Request) -> dict[str, int]:
        row_id = await request.app.state.pool.fetchval(
            "INSERT INTO reference_items (title, description) VALUES ($1, $2) RETURNING id",
            item.title,
            item.description,
        )
        return {"id": row_id}

    return app


def main() -> None:
    app = build(os.environ["REFERENCE_DATABASE_URL"])
    uvicorn.run(
        app, host="127.0.0.1", port=int(os.environ["REFERENCE_PORT"]), log_config=None, access_log=False
    )


if __name__ == "__main__":
    main()
