"""Ingest: real exports into one clean transactions table, with every rejected row reported."""

from patron.ingest.read import read_transactions
from patron.ingest.transactions import IngestReport, Transactions

__all__ = ["read_transactions", "Transactions", "IngestReport"]
