"""``patron serve``: the web application on a local address, with uvicorn.

The schema is checked before the server starts, so an un-migrated database gets the
``patron db upgrade`` message and exit code 2 instead of a server that fails on every
request.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from patron.crm.commands.db import DatabaseUrl
from patron.i18n import _

__all__ = ["register", "serve_app"]

Host = Annotated[str, typer.Option("--host", help=_("serve.opt_host"))]
Port = Annotated[int, typer.Option("--port", min=1, max=65535, help=_("serve.opt_port"))]
Workers = Annotated[int, typer.Option("--workers", min=1, max=64, help=_("serve.opt_workers"))]
Threads = Annotated[
    int | None, typer.Option("--threads", min=1, max=256, help=_("serve.opt_threads"))
]
AccessLog = Annotated[
    bool, typer.Option("--access-log/--no-access-log", help=_("serve.opt_access_log"))
]


def register(app: typer.Typer) -> None:
    """Add ``patron serve`` to ``app``."""

    @app.command("serve", help=_("serve.help"))
    def serve(
        host: Host = "127.0.0.1",
        port: Port = 8000,
        database_url: DatabaseUrl = None,
        workers: Workers = 1,
        threads: Threads = None,
        access_log: AccessLog = True,
    ) -> None:
        import os

        from patron.crm.db import database_url as resolve
        from patron.crm.migrate import SchemaError
        from patron.web.app import create_app

        try:
            application = create_app(database_url, threads=threads)
        except SchemaError as error:
            Console(stderr=True).print(f"[bold red]{_('cli.error')}:[/] {error}", highlight=False)
            raise typer.Exit(2) from None
        if workers > 1:
            # Each worker process builds its own app (and connection pool) from the URL.
            application.state.engine.dispose()
            os.environ["PATRON_DATABASE_URL"] = resolve(database_url)
            if threads:
                os.environ["PATRON_THREADS"] = str(threads)
            application = "patron.web.app:create_app"
        status = serve_app(
            application, host=host, port=port, workers=workers, access_log=access_log
        )
        if status:
            raise typer.Exit(status)


def serve_app(
    application, *, host: str, port: int, workers: int = 1, access_log: bool = True
) -> int:
    """Run ``application`` until interrupted, saying where to open it; the exit status.

    ``application`` is an app, or with several ``workers`` the import path of a factory.
    Several workers each listen on a socket of their own where the platform allows it
    (:mod:`patron.web.workers` says why). A reverse proxy that logs requests itself makes
    uvicorn's access log (a line per request, written while the request waits) redundant:
    ``access_log=False``.
    """
    import uvicorn

    from patron.web import workers as own_sockets

    Console().print(_("serve.listening", url=f"http://{_url_host(host)}:{port}"), highlight=False)
    options = {"log_level": "info", "access_log": access_log, "proxy_headers": False}
    if workers > 1 and own_sockets.available():
        try:
            return own_sockets.run_workers(
                application, host=host, port=port, workers=workers, **options
            )
        except OSError as error:  # the port is taken, or the address is not this host's
            message = _("serve.cannot_listen", address=f"{host}:{port}", error=error.strerror)
            Console(stderr=True).print(f"[bold red]{_('cli.error')}:[/] {message}")
            return 2
    if workers > 1:
        options |= {"factory": True, "workers": workers}
    uvicorn.run(application, host=host, port=port, **options)
    return 0


def _url_host(host: str) -> str:
    """The address to type into a browser: the loopback for "every interface"."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
