"""Schema migrations: ``patron db upgrade`` and the check that refuses an old schema.

Alembic is driven from code with the package's own scripts, so an installed patron can
migrate any database without an ``alembic.ini`` in the working directory.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from patron.errors import PatronError
from patron.i18n import _

__all__ = ["SchemaError", "upgrade", "current_revision", "head_revision", "check_schema"]


class SchemaError(PatronError):
    """The database is missing or behind the code: run ``patron db upgrade``."""


def _config() -> Config:
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("patron.crm").joinpath("migrations"))
    )
    return config


def head_revision() -> str:
    """The newest revision this patron knows.

    Parts of the store may grow on branches of their own (loyalty and feedback tables are
    independent); the heads are then all applied, and named joined by ``+``.
    """
    return "+".join(sorted(ScriptDirectory.from_config(_config()).get_heads()))


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` when it has never been migrated)."""
    with engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return "+".join(sorted(heads)) or None


def upgrade(engine: Engine, revision: str = "heads") -> tuple[str | None, str]:
    """Bring the schema to ``revision``; returns (revision before, revision after)."""
    before = current_revision(engine)
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return before, current_revision(engine)


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaError` unless the database is at the code's head revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaError(
            _(
                "crm.schema_behind",
                url=engine.url.render_as_string(hide_password=True),
                current=current or _("crm.schema_empty"),
                head=head,
            )
        )
