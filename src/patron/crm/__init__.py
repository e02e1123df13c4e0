"""The operational store: tables, migrations and the services that change them.

Services take a SQLAlchemy session and never commit: the web request or the CLI command
that calls them owns the transaction, so an import, its audit event and its merges land
together or not at all.
"""
