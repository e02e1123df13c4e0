"""Small pools of psycopg connections awaited in the event loop, for the API's busiest paths.

A plain ``def`` endpoint runs in a worker thread with a SQLAlchemy session: a hop from
the event loop and back, a pooled connection checked out and returned, and under load a
wait for the GIL among the request threads. The paths that are one statement on
PostgreSQL -- a points write, a customer search, the 360 -- need none of that: they await
their statement on a connection of a pool like these, in autocommit (no ``BEGIN`` and
``COMMIT`` round trips), and the worker threads stay free for everything else.

A pool is opened at start-up and is ``None`` when the database is not PostgreSQL or is not
ready for the path (a function a migration adds is missing, say): the endpoint then takes
its portable path, so a wrong set-up shows up as slower answers, never as a server that
will not start.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

__all__ = ["open_pool"]


async def open_pool(
    engine: Engine,
    size: tuple[int, int],
    *,
    settings: dict[str, str] | None = None,
    ready: str | None = None,
    **kwargs: Any,
) -> Any:
    """An open ``AsyncConnectionPool`` on ``engine``'s PostgreSQL database, or ``None``.

    Parameters
    ----------
    size
        The fewest and most connections. Few: on two cores, more backends only take turns
        on the same CPUs.
    settings
        Server settings for every connection (``-c name=value`` at connect time), so no
        statement has to set and reset them; ``jit`` is off as on every patron connection.
    ready
        A query whose single boolean answer says whether the path can run here.
    kwargs
        More connection arguments (a ``cursor_factory``, say).
    """
    if engine.dialect.name != "postgresql":
        return None
    import psycopg
    from psycopg_pool import AsyncConnectionPool, PoolTimeout

    settings = {"jit": "off", **(settings or {})}
    options = " ".join(f"-c {name}={value}" for name, value in settings.items())
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    pool = AsyncConnectionPool(
        conninfo,
        min_size=size[0],
        max_size=size[1],
        kwargs={"autocommit": True, "options": options, **kwargs},
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=10)
        usable = True
        if ready is not None:
            async with pool.connection() as connection:
                cursor = await connection.execute(ready)
                usable = bool((await cursor.fetchone())[0])
    except (psycopg.Error, PoolTimeout):
        usable = False  # the portable path reports what is wrong, request by request
    if not usable:
        await pool.close()
        return None
    return pool
