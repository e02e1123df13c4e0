"""``patron users``: create logins, list them, set passwords, issue API tokens, disable.

Each command is one transaction. A password is read from a prompt (asked twice), from
standard input with ``--password-stdin`` (for scripts: it never shows in ``ps`` or the
shell history, as an argument would), or generated and printed once, after the
transaction has committed, when neither is possible or ``--generate-password`` asks.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from patron.crm.commands.db import DatabaseUrl
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import User

__all__ = ["register"]

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help=_("accounts_cli.opt_password_stdin"))
]
Generate = Annotated[bool, typer.Option("--generate-password", help=_("accounts_cli.opt_generate"))]
Name = Annotated[str, typer.Argument(help=_("accounts_cli.arg_name"))]


def register(app: typer.Typer) -> None:
    """Add ``patron users`` to ``app``."""
    users = typer.Typer(help=_("accounts_cli.help"), no_args_is_help=True)
    app.add_typer(users, name="users")
    out = Console()

    @users.command("create", help=_("accounts_cli.create_help"))
    def create(
        name: Name,
        role: Annotated[str, typer.Option("--role", help=_("accounts_cli.opt_role"))] = "staff",
        display_name: Annotated[
            str, typer.Option("--display-name", help=_("accounts_cli.opt_display_name"))
        ] = "",
        language: Annotated[
            str | None, typer.Option("--language", help=_("accounts_cli.opt_language"))
        ] = None,
        password_stdin: PasswordStdin = False,
        generate: Generate = False,
        database_url: DatabaseUrl = None,
    ) -> None:
        from patron.crm.services.users import create_user

        password = _read_password(password_stdin, generate)
        with _transaction(database_url) as session:
            user, generated = create_user(
                session,
                username=name,
                role=role,
                password=password,
                display_name=display_name,
                language=language,
            )
            username, role = user.username, user.role
        typer.echo(_("accounts_cli.created", username=username, role=role))
        if generated:
            typer.echo(_("accounts_cli.generated_password", username=username))
            typer.echo(generated)

    @users.command("list", help=_("accounts_cli.list_help"))
    def list_(database_url: DatabaseUrl = None) -> None:
        from patron.crm.services.users import list_users

        with _transaction(database_url) as session:
            rows = [_row(user) for user in list_users(session)]
        table = Table(title_justify="left")
        for key in ("username", "display_name", "role", "active", "language", "created"):
            table.add_column(_(f"accounts_cli.col_{key}"))
        for row in rows:
            table.add_row(*row)
        out.print(table)

    @users.command("set-password", help=_("accounts_cli.set_password_help"))
    def set_password_(
        name: Name,
        password_stdin: PasswordStdin = False,
        generate: Generate = False,
        database_url: DatabaseUrl = None,
    ) -> None:
        from patron.crm.services.users import generate_password, set_password

        password = _read_password(password_stdin, generate)
        generated = generate_password() if password is None else None
        with _transaction(database_url) as session:
            user = _user(session, name)
            set_password(session, user, password or generated, actor=None)
            username = user.username
        typer.echo(_("accounts_cli.password_set", username=username))
        if generated:
            typer.echo(_("accounts_cli.generated_password", username=username))
            typer.echo(generated)

    @users.command("token", help=_("accounts_cli.token_help"))
    def token(
        name: Name,
        token_name: Annotated[
            str, typer.Option("--name", help=_("accounts_cli.opt_token_name"))
        ] = "",
        database_url: DatabaseUrl = None,
    ) -> None:
        from patron.crm.services.auth import create_api_token

        with _transaction(database_url) as session:
            user = _user(session, name)
            secret, _token_row = create_api_token(session, user, name=token_name)
            username = user.username
        typer.echo(_("accounts_cli.token_created", username=username))
        typer.echo(secret)

    @users.command("disable", help=_("accounts_cli.disable_help"))
    def disable(name: Name, database_url: DatabaseUrl = None) -> None:
        _set_active(name, False, database_url)

    @users.command("enable", help=_("accounts_cli.enable_help"))
    def enable(name: Name, database_url: DatabaseUrl = None) -> None:
        _set_active(name, True, database_url)


def _set_active(name: str, active: bool, database_url: str | None) -> None:
    from patron.crm.services.users import update_user

    with _transaction(database_url) as session:
        user = update_user(session, _user(session, name), actor=None, active=active)
        username = user.username
    key = "accounts_cli.enabled" if active else "accounts_cli.disabled"
    typer.echo(_(key, username=username))


@contextmanager
def _transaction(database_url: str | None) -> Iterator[Session]:
    """One committed transaction on a migrated database; a refusal exits 2 with its text."""
    from patron.crm.db import make_engine, session_scope
    from patron.crm.migrate import check_schema
    from patron.crm.services.errors import ServiceError

    engine = make_engine(database_url)
    try:
        check_schema(engine)
        with session_scope(engine) as session:
            yield session
    except ServiceError as exc:
        typer.echo(f"{_('cli.error')}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()


def _user(session: Session, name: str) -> User:
    from patron.crm.services.errors import NotFound
    from patron.crm.services.users import get_user_by_name

    user = get_user_by_name(session, name)
    if user is None:
        raise NotFound(_("accounts.user_not_found", user=name))
    return user


def _read_password(from_stdin: bool, generate: bool) -> str | None:
    """The password given, or ``None`` to generate one."""
    if from_stdin:
        return sys.stdin.read().rstrip("\r\n")
    if generate or not sys.stdin.isatty():
        return None
    return typer.prompt(
        _("accounts_cli.password_prompt"),
        hide_input=True,
        confirmation_prompt=_("accounts_cli.password_repeat"),
    )


def _row(user: User) -> tuple[str, ...]:
    return (
        user.username,
        user.display_name,
        user.role,
        _("accounts_cli.yes") if user.active else _("accounts_cli.no"),
        user.language or "-",
        user.created_at.date().isoformat(),
    )
