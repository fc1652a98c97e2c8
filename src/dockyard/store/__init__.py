"""The database: tables, repositories and migrations (SQLite by default, PostgreSQL)."""

from dockyard.store.accounts import (
    SqlAccountRepository,
    SqlQuotaStore,
    SqlRoleRepository,
    SqlServiceKeyRepository,
    SqlTokenRepository,
)
from dockyard.store.containers import SqlContainerRepository
from dockyard.store.database import Database
from dockyard.store.journal import SqlAuditRepository, SqlEventRepository

__all__ = [
    "Database",
    "SqlAccountRepository",
    "SqlAuditRepository",
    "SqlContainerRepository",
    "SqlEventRepository",
    "SqlQuotaStore",
    "SqlRoleRepository",
    "SqlServiceKeyRepository",
    "SqlTokenRepository",
]
