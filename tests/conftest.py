"""Fixtures: a fresh, migrated database per test (SQLite always, PostgreSQL when TEST_DATABASE_URL is set),
the app, its client and CLI runner, and three personas: an admin, a marketer and a viewer.

The schema is built once per session by running the real migrations, then copied (SQLite) or
truncated (PostgreSQL) for each test, so every test starts empty without paying for Alembic.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from dashboard import create_app
from dashboard.extensions import db
from dashboard.models import Operator, Role

# The WeChat sandbox fixtures (`sandbox`, `sandbox_config`) are shared by every test folder.
pytest_plugins = ["tests.sandbox_api"]

BACKENDS = ["sqlite", "postgresql"]
PERSONA_PASSWORD = "correct horse battery"


def base_config(database_url: str, instance_path: Path) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-0123456789abcdef",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "AUTO_MIGRATE": False,
        "SERVER_NAME": "localhost",
        "INSTANCE_PATH": str(instance_path),
    }


def migrate_to_head(database_url: str, instance_path: Path) -> None:
    from flask_migrate import upgrade

    app = create_app(base_config(database_url, instance_path))
    with app.app_context():
        upgrade()
        db.engine.dispose()


def postgres_url_for(name: str) -> str:
    base = sa.engine.make_url(
        os.environ["TEST_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    )
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session", autouse=True)
def compiled_translations() -> None:
    """Compile the gettext catalogs from the current strings, so `pytest` alone tests what `make` builds."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "scripts/build_translations.py"], cwd=root, check=True, capture_output=True
    )


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A throwaway database on the TEST_DATABASE_URL server, so parallel runs never share tables."""
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    name = f"tongzhi_test_{uuid.uuid4().hex[:10]}"
    admin_engine = sa.create_engine(postgres_url_for("postgres"), isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_url_for(name)
    finally:
        with admin_engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sqlite-template")
    path = folder / "template.db"
    migrate_to_head(f"sqlite:///{path}", folder)
    return path


@pytest.fixture(scope="session")
def postgres_migrated(postgres_server_url, tmp_path_factory) -> str:
    migrate_to_head(postgres_server_url, tmp_path_factory.mktemp("pg-instance"))
    return postgres_server_url


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(backend, request, tmp_path) -> str:
    if backend == "sqlite":
        path = tmp_path / "tongzhi.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_migrated")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        tables = [t for t in sa.inspect(connection).get_table_names() if t != "alembic_version"]
        if tables:
            quoted = ", ".join(f'"{t}"' for t in tables)
            connection.execute(sa.text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def config_overrides(request) -> dict:
    """Config for the app fixture: parametrise indirectly, or override the fixture in a module."""
    return getattr(request, "param", {})


@pytest.fixture
def app(database_url, tmp_path, config_overrides):
    app = create_app({**base_config(database_url, tmp_path), **config_overrides})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@dataclass(frozen=True)
class Persona:
    id: int
    email: str
    role: Role
    password: str = PERSONA_PASSWORD


_HASH_CACHE: dict[str, str] = {}


def password_hash_for(password: str) -> str:
    # Hashing with scrypt costs tens of milliseconds; the personas share one hash per session.
    if password not in _HASH_CACHE:
        _HASH_CACHE[password] = generate_password_hash(password, method="scrypt:32768:8:1")
    return _HASH_CACHE[password]


@pytest.fixture
def personas(app) -> dict[str, Persona]:
    """alice the admin, mark the marketer and vera the viewer."""
    people = {"admin": "alice@example.com", "marketer": "mark@example.com", "viewer": "vera@example.com"}
    result = {}
    with app.app_context():
        for role, email in people.items():
            operator = Operator(email=email, name=email.split("@")[0].title(), role=Role(role))
            operator.password_hash = password_hash_for(PERSONA_PASSWORD)
            db.session.add(operator)
            db.session.flush()
            result[role] = Persona(operator.id, email, Role(role))
        db.session.commit()
    return result


@pytest.fixture
def live_server(app):
    """Serve the app on a free loopback port for the duration of a test (browser and HTTP tests)."""
    import threading

    from werkzeug.serving import make_server

    app.config["SERVER_NAME"] = None
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class Auth:
    """Log a test client in as a persona without the cost of a password check (auth tests log in for real)."""

    def __init__(self, client, personas):
        self.client = client
        self.personas = personas

    def login(self, role: str = "admin") -> Persona:
        persona = self.personas[role]
        with self.client.session_transaction() as session:
            session["_user_id"] = str(persona.id)
            session["_fresh"] = True
        return persona

    def logout(self) -> None:
        with self.client.session_transaction() as session:
            session.clear()


@pytest.fixture
def auth(client, personas) -> Auth:
    return Auth(client, personas)
