"""`reasoning-agent migrate`: applies or checks the schema, from DATABASE_URL, with clean errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from api.cli import main
from api.persistence import open_store
from api.persistence.schema import head_revision


@pytest.fixture(autouse=True)
def _no_service_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "DATA_DIR", "API_KEYS", "ADMIN_API_KEYS"):
        monkeypatch.delenv(name, raising=False)


def test_migrate_applies_the_schema_at_database_url(
    fresh_pg_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_pg_database_url)

    assert main(["migrate"]) == 0

    assert f"at revision {head_revision()} (head)" in capsys.readouterr().out


def test_a_migrated_database_opens_without_migrating(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tasks.db"
    assert main(["migrate", "--database-url", url]) == 0

    async def open_and_close() -> None:
        store = await open_store(url, migrate=False)  # SchemaOutOfDateError if not migrated
        await store.aclose()

    asyncio.run(open_and_close())


def test_migrate_defaults_to_the_sqlite_file_in_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))

    assert main(["migrate"]) == 0

    assert (tmp_path / "data" / "reasoning-agent.db").is_file()


def test_migrate_needs_no_api_key(tmp_path: Path) -> None:
    assert main(["migrate", "--database-url", f"sqlite:///{tmp_path}/t.db"]) == 0


def test_check_fails_on_a_database_that_is_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--check", "--database-url", f"sqlite:///{tmp_path}/t.db"]) == 1

    assert "run `reasoning-agent migrate`" in capsys.readouterr().err


def test_check_does_not_create_a_missing_sqlite_file(tmp_path: Path) -> None:
    main(["migrate", "--check", "--database-url", f"sqlite:///{tmp_path}/t.db"])

    assert not (tmp_path / "t.db").exists()


def test_check_passes_on_a_migrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    main(["migrate", "--database-url", url])

    assert main(["migrate", "--check", "--database-url", url]) == 0


def test_an_unsupported_url_is_one_clean_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--database-url", "mysql://u:s3cret@h/app"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("error: invalid_database_url: ")
    assert "s3cret" not in err
    assert "Traceback" not in err


def test_an_unreachable_database_is_one_clean_error_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["migrate", "--database-url", "postgresql://u:s3cret@127.0.0.1:1/app"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("error: database_unavailable: ")
    assert "s3cret" not in err
