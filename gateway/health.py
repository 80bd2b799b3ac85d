"""Liveness and readiness for orchestrators and load balancers."""

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse

from db import migrate
from db.errors import DatabaseUnavailable
from db.notify import EventBus
from db.session import Database
from gateway.shutdown import Draining

log = logging.getLogger(__name__)


async def healthz(request: Request) -> JSONResponse:
    """The process is up and serving; says nothing about the database."""
    return JSONResponse({"status": "ok"})


def readyz_endpoint(
    database: Database, bus: EventBus | None = None, draining: Draining | None = None
) -> Callable[[Request], Awaitable[JSONResponse]]:
    head = migrate.head_revision()

    async def readyz(request: Request) -> JSONResponse:
        """Ready when the database answers and carries the newest migration, until the
        process starts shutting down (gateway/shutdown.py)."""
        if draining is not None and draining.started:
            return JSONResponse(
                {"status": "unavailable", "reason": "shutting down"}, status_code=503
            )
        try:
            current = await migrate.current_revision(database.engine)
        except DatabaseUnavailable as error:
            log.warning("readiness: database unreachable: %s", error)
            return JSONResponse(
                {"status": "unavailable", "reason": "database unreachable"}, status_code=503
            )
        if current != head:
            reason = f"database is at migration {current}, this gateway needs {head}: run `gateway migrate`"
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        # Live updates degrade while the LISTEN connection reconnects; queries do not,
        # so readiness reports it without failing on it.
        events = "off" if bus is None else ("listening" if bus.listening else "reconnecting")
        body: dict[str, object] = {"status": "ready", "migration": current, "events": events}
        if database.replicas is not None:
            # Reads fall back to the primary, so replicas inform readiness without failing it.
            body["replicas"] = database.replicas.status()
        return JSONResponse(body)

    return readyz
