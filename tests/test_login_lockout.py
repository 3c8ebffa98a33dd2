"""The login lockout under concurrency, and refusals that do not tell which accounts exist.

Password checks are counted by wrapping Werkzeug's ``check_password_hash`` where the operator model
calls it, so the tests assert on the work done, never on wall time.
"""

from __future__ import annotations

import re
import threading

import pytest
import requests
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import AuditEvent, Operator
from dashboard.models import operator as operator_module

THREADS = 16
ATTEMPTS = 40


@pytest.fixture
def password_checks(monkeypatch) -> list[str]:
    """The hash each password check was made against, in call order (thread-safe)."""
    calls: list[str] = []
    lock = threading.Lock()
    real = operator_module.check_password_hash

    def counting(pwhash: str, password: str) -> bool:
        with lock:
            calls.append(pwhash)
        return real(pwhash, password)

    monkeypatch.setattr(operator_module, "check_password_hash", counting)
    return calls


def login(client, email, password):
    return client.post("/login", data={"email": email, "password": password})


def form_error(response) -> str:
    errors = re.findall(
        r'<p class="error form-error" role="alert">(.*?)</p>', response.get_data(as_text=True)
    )
    assert len(errors) == 1, errors
    return errors[0]


def stored_hash(app, email: str) -> str:
    with app.app_context():
        return db.session.scalar(select(Operator.password_hash).where(Operator.email == email))


def actions(app, action: str) -> int:
    with app.app_context():
        return len(list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action))))


def test_concurrent_wrong_passwords_are_checked_at_most_the_limit_and_lock_once(
    app, live_server, personas, password_checks
):
    limit = app.config["LOGIN_MAX_FAILURES"]
    real_hash = stored_hash(app, "mark@example.com")
    remaining = iter(range(ATTEMPTS))
    take = threading.Lock()
    start = threading.Barrier(THREADS)
    statuses: list[int] = []

    def attacker() -> None:
        http = requests.Session()
        start.wait()
        while True:
            with take:
                if next(remaining, None) is None:
                    return
            response = http.post(
                f"{live_server}/login",
                data={"email": "mark@example.com", "password": "not the password"},
                allow_redirects=False,
                timeout=60,
            )
            statuses.append(response.status_code)

    threads = [threading.Thread(target=attacker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * ATTEMPTS
    assert password_checks.count(real_hash) == limit
    assert actions(app, "auth.locked") == 1
    assert actions(app, "auth.login_failed") == limit
    assert actions(app, "auth.login_refused") == ATTEMPTS - limit
    with app.app_context():
        mark = db.session.get(Operator, personas["marketer"].id)
        assert mark.locked_until is not None and mark.failed_logins == 0


def test_every_refusal_costs_one_password_hash_of_the_same_method(app, client, personas, password_checks):
    method = operator_module.PASSWORD_METHOD
    limit = app.config["LOGIN_MAX_FAILURES"]
    login(client, "nobody@example.com", "a guess")
    assert len(password_checks) == 1 and password_checks[0].startswith(f"{method}$")
    for _ in range(limit):
        login(client, "mark@example.com", "a guess")
    assert password_checks[1:] == [stored_hash(app, "mark@example.com")] * limit
    # Locked: the right password is not checked against the account, yet the answer costs a hash too.
    login(client, "mark@example.com", personas["marketer"].password)
    assert len(password_checks) == limit + 2
    assert password_checks[-1] != stored_hash(app, "mark@example.com")
    assert password_checks[-1].startswith(f"{method}$")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("language", ["zh", "en"])
def test_known_and_unknown_emails_get_the_same_answers_before_and_after_a_lock(
    app, client, personas, language
):
    client.post(f"/language/{language}", data={"next": "/login"})
    limit = app.config["LOGIN_MAX_FAILURES"]
    for attempt in range(limit + 2):
        known = login(client, "mark@example.com", "a guess")
        unknown = login(client, "nobody@example.com", "a guess")
        assert known.status_code == unknown.status_code == 200
        assert form_error(known) == form_error(unknown), f"attempt {attempt + 1}"
    # Locked now: even the right password gets the very same answer.
    right = login(client, "mark@example.com", personas["marketer"].password)
    assert form_error(right) == form_error(unknown)
    assert client.get("/").status_code == 302
