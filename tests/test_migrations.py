"""`flask db upgrade` builds the schema from empty, on SQLite and on PostgreSQL, and downgrades cleanly."""

import pytest
import sqlalchemy as sa

from dashboard import create_app
from dashboard.extensions import db
from tests.conftest import base_config


@pytest.fixture
def empty_database_url(backend, tmp_path, request):
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("postgres_server_url")


def table_names(url):
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_db_upgrade_from_empty_then_downgrade(empty_database_url, tmp_path):
    app = create_app(base_config(empty_database_url, tmp_path))
    runner = app.test_cli_runner()
    # The PostgreSQL database may hold the session's migrated schema: start from empty.
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    assert table_names(empty_database_url) == set()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    tables = table_names(empty_database_url)
    assert {"operator", "audit_event", "alembic_version"} <= tables
    # The models and the migrations agree: nothing left for autogenerate to find.
    with app.app_context():
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert diff == []
    result = runner.invoke(args=["db", "downgrade", "base"])
    assert result.exit_code == 0, result.output
    assert table_names(empty_database_url) <= {"alembic_version"}
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        db.engine.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(app, backend):
    if backend != "sqlite":
        pytest.skip("SQLite pragmas")
    with app.app_context(), db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        # FULL: a send's start and a grant report are on disk before anything acts on them.
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_embedded_app_upgrades_itself_on_start(tmp_path):
    url = f"sqlite:///{tmp_path / 'auto.db'}"
    app = create_app({**base_config(url, tmp_path), "TESTING": False, "AUTO_MIGRATE": True})
    assert {"operator", "audit_event"} <= table_names(url)
    with app.app_context():
        db.engine.dispose()


def test_the_migrations_have_one_head():
    """Feature branches of the schema are merged before they land, so plain `flask db upgrade` works."""
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    folder = Path(__file__).resolve().parent.parent / "migrations"
    config = Config()
    config.set_main_option("script_location", str(folder))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1
