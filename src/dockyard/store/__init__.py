"""The database: tables, repositories and migrations (SQLite by default, PostgreSQL)."""

from dockyard.store.database import Database

__all__ = ["Database"]
