"""DATABASE_URL handling: the forms users paste work, wrong ones fail clearly and safely."""

from __future__ import annotations

import os

import pytest

from api.persistence import parse_database_url


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:pw@db.example:5432/app",
        "postgresql://u:pw@db.example:5432/app",
        "postgresql+asyncpg://u:pw@db.example:5432/app",
    ],
)
def test_postgres_urls_use_the_asyncpg_driver(url: str) -> None:
    target = parse_database_url(url)

    assert target.backend == "postgresql"
    assert target.url.drivername == "postgresql+asyncpg"
    assert (target.url.host, target.url.port, target.url.database) == ("db.example", 5432, "app")


def test_libpq_sslmode_is_passed_to_asyncpg_as_ssl() -> None:
    target = parse_database_url("postgresql://u@h/app?sslmode=require")

    assert dict(target.url.query) == {"ssl": "require"}


@pytest.mark.parametrize("url", ["sqlite:///data/tasks.db", "sqlite+aiosqlite:///data/tasks.db"])
def test_sqlite_urls_use_the_aiosqlite_driver(url: str) -> None:
    target = parse_database_url(url)

    assert target.backend == "sqlite"
    assert target.url.drivername == "sqlite+aiosqlite"
    assert target.url.database == "data/tasks.db"


def test_sqlite_is_fully_synchronous_by_default() -> None:
    assert parse_database_url("sqlite:///t.db").sqlite_synchronous == "FULL"


def test_sqlite_synchronous_mode_can_be_chosen_in_the_url() -> None:
    target = parse_database_url("sqlite:///t.db?synchronous=normal")

    assert target.sqlite_synchronous == "NORMAL"
    assert "synchronous" not in target.url.query  # not passed on to the driver


def test_an_unknown_sqlite_synchronous_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="synchronous=sometimes is not a SQLite synchronous mode"):
        parse_database_url("sqlite:///t.db?synchronous=sometimes")


def test_home_directory_in_a_sqlite_path_is_expanded() -> None:
    target = parse_database_url("sqlite:///~/ra/tasks.db")

    assert target.url.database == os.path.expanduser("~/ra/tasks.db")


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_sqlite_without_a_file_is_in_memory(url: str) -> None:
    assert parse_database_url(url).in_memory


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:s3cret@h/app", "scheme 'mysql' is not supported"),
        ("postgresql+psycopg2://u:s3cret@h/app", "driver 'psycopg2' is not supported"),
        ("sqlite+pysqlite:///t.db", "driver 'pysqlite' is not supported"),
        ("not a url s3cret", "not a valid database URL"),
    ],
)
def test_unsupported_urls_fail_with_a_message_that_hides_the_password(
    url: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_database_url(url)

    assert "s3cret" not in str(caught.value)


def test_safe_rendering_masks_the_password() -> None:
    target = parse_database_url("postgresql://u:s3cret@h/app")

    assert "s3cret" not in target.safe()
