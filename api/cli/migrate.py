"""`reasoning-agent migrate`: bring the history database to the schema this version needs.

The service applies migrations at start by default (MIGRATE_ON_START=true). Deployments that
prefer a separate step (a Kubernetes init container, a release job) run this command and start
the service with MIGRATE_ON_START=false; the service then refuses a database that is behind.
Safe to run from several places at once (PostgreSQL advisory lock, SQLite file lock).

Only DATABASE_URL (or DATA_DIR for the default SQLite file) is read: no API key is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.persistence import DatabaseTarget

NAME = "migrate"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="apply the history database migrations",
        description="Apply the Alembic migrations of the task history to DATABASE_URL "
        "(default: SQLite in DATA_DIR). Idempotent and safe to run concurrently.",
    )
    parser.add_argument(
        "--database-url", metavar="URL", help="database to migrate (default: $DATABASE_URL)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 unless the database is at the newest revision",
    )
    return parser


def _database_url(explicit: str | None) -> str:
    from pydantic_settings import BaseSettings, SettingsConfigDict

    from api.config import ServiceSettings

    class HistoryEnv(BaseSettings):
        """The two variables that locate the history, read as the service reads them."""

        model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)
        data_dir: Path = ServiceSettings.model_fields["data_dir"].default
        database_url: str | None = None

    env = HistoryEnv()
    # model_construct: reuse the service's URL rule without demanding API keys.
    resolved: str = ServiceSettings.model_construct(
        data_dir=env.data_dir, database_url=explicit or env.database_url or None
    ).resolved_database_url
    return resolved


def _missing_sqlite_file(target: DatabaseTarget) -> bool:
    if target.backend != "sqlite" or target.in_memory:
        return False
    return not os.path.exists(target.url.database or "")


async def _migrate(url: str, check: bool) -> int:
    from api.persistence import migrate, parse_database_url
    from api.persistence.engine import create_engine
    from api.persistence.schema import current_revision, head_revision

    target = parse_database_url(url)
    head = head_revision()
    if not check:
        revision = await migrate(url)
        print(f"{target.safe()}: at revision {revision} (head)")
        return 0
    current = None
    if not _missing_sqlite_file(target):  # a check must not create the file it checks
        engine = create_engine(target)
        try:
            current = await current_revision(engine)
        finally:
            await engine.dispose()
    if current == head:
        print(f"{target.safe()}: at revision {head} (head)")
        return 0
    print(
        f"{target.safe()}: at revision {current or 'none'}, head is {head}: "
        "run `reasoning-agent migrate`",
        file=sys.stderr,
    )
    return 1


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import DBAPIError

    try:
        url = _database_url(args.database_url)
        return asyncio.run(_migrate(url, args.check))
    except ValueError as error:  # a bad URL: our message names no password
        print(f"error: invalid_database_url: {error}", file=sys.stderr)
    except (DBAPIError, OSError, TimeoutError) as error:
        # The driver's own text may quote SQL or the URL: name the failure's type only.
        kind = type(getattr(error, "orig", None) or error).__name__
        print(f"error: database_unavailable: cannot migrate the database ({kind})", file=sys.stderr)
    return 1
