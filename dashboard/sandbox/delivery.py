"""Background delivery of event pushes to PUSH_URL.

One worker thread drains a queue, so pushes arrive in the order they happened (a popup event before the
sent event it enabled) and a slow receiver never blocks an API reply. A failed push is recorded in
``state.pushes`` and logged; it never raises into the sandbox.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
from collections.abc import Callable

import requests

from .push import Event, PushSettings, build_envelope, signature
from .state import PushRecord, SandboxState

log = logging.getLogger(__name__)

_STOP = object()


def current_settings(state: SandboxState) -> PushSettings | None:
    """PushSettings from the state's config, or None when PUSH_URL is unset."""
    cfg = state.config
    if not cfg.get("PUSH_URL"):
        return None
    return PushSettings(
        url=cfg["PUSH_URL"],
        fmt=cfg["PUSH_FORMAT"],
        mode=cfg["PUSH_MODE"],
        token=cfg["PUSH_TOKEN"] or "",
        aes_key=cfg.get("PUSH_AES_KEY"),
        appid=cfg["APPID"],
        original_id=cfg["ORIGINAL_ID"],
    )


def oa_settings(state: SandboxState) -> PushSettings | None:
    """The Official Account's push settings (OA_PUSH_*), or None when OA_PUSH_URL is unset."""
    cfg = state.config
    if not cfg.get("OA_PUSH_URL"):
        return None
    return PushSettings(
        url=cfg["OA_PUSH_URL"],
        fmt=cfg["OA_PUSH_FORMAT"],
        mode=cfg["OA_PUSH_MODE"],
        token=cfg["OA_PUSH_TOKEN"] or "",
        aes_key=cfg.get("OA_PUSH_AES_KEY"),
        appid=cfg["OA_APPID"],
        original_id=cfg["OA_ORIGINAL_ID"],
    )


class Pusher:
    """Queue + worker thread posting events. ``submit`` never blocks; ``close`` drains and stops.

    ``settings`` says where and how (the mini-program's PUSH_* by default, ``oa_settings`` for the
    Official Account); ``log`` records each attempt (``state.log_push`` by default).
    """

    def __init__(
        self,
        state: SandboxState,
        settings: Callable[[SandboxState], PushSettings | None] = current_settings,
        log: Callable[[PushRecord], None] | None = None,
    ) -> None:
        self.state = state
        self.settings = settings
        self.log = log or state.log_push
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, event: Event) -> bool:
        """Queue ``event`` for delivery; returns False (and does nothing) when no PUSH_URL is set."""
        if self.settings(self.state) is None:
            return False
        self._ensure_worker()
        self._queue.put(event)
        return True

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queued push was attempted (for tests and the CLI); False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        if self._thread is None:
            return True
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued, then stop the worker."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(timeout)
        self._thread = None

    def _ensure_worker(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sandbox-pusher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        with requests.Session() as session:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                if isinstance(item, threading.Event):
                    item.set()
                elif isinstance(item, Event):
                    self._deliver(session, item)

    def _deliver(self, session: requests.Session, event: Event) -> None:
        settings = self.settings(self.state)
        if settings is None:
            return
        status: int | None = None
        error: str | None = None
        body = ""
        try:
            envelope = build_envelope(event, settings)
            body = envelope.body.decode()
            with session.post(
                settings.url,
                params=envelope.params,
                data=envelope.body,
                headers={"Content-Type": envelope.content_type},
                timeout=float(self.state.config.get("PUSH_TIMEOUT", 5.0)),
            ) as response:
                status = response.status_code
                if status != 200:
                    error = f"HTTP {status}: {response.text[:200]}"
        except Exception as exc:  # a push failure must never take the sandbox down
            error = f"{type(exc).__name__}: {exc}"
        if error:
            log.warning("sandbox push of %s to %s failed: %s", event.name, settings.url, error)
        self.log(
            PushRecord(
                time=self.state.now(),
                event=event.name,
                openid=event.openid,
                url=settings.url,
                ok=error is None,
                status=status,
                error=error,
                body=body,
            )
        )


def verify_url(
    state: SandboxState,
    timeout: float = 5.0,
    settings_for: Callable[[SandboxState], PushSettings | None] = current_settings,
) -> dict[str, object]:
    """Do what the console does when the push URL is saved: GET with signature/timestamp/nonce/echostr.

    Returns ``{"ok": bool, "status": int | None, "echostr": str, "body": str, "error": str | None}``;
    ``ok`` means the receiver echoed ``echostr`` verbatim.
    """
    settings = settings_for(state)
    if settings is None:
        return {"ok": False, "status": None, "echostr": "", "body": "", "error": "PUSH_URL is not set"}
    timestamp = str(int(state.now()))
    nonce = str(secrets.randbelow(10**10))
    echostr = str(secrets.randbelow(10**18))
    params = {
        "signature": signature(settings.token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": echostr,
    }
    try:
        with requests.get(settings.url, params=params, timeout=timeout) as response:
            return {
                "ok": response.status_code == 200 and response.text == echostr,
                "status": response.status_code,
                "echostr": echostr,
                "body": response.text[:200],
                "error": None,
            }
    except requests.RequestException as exc:
        return {"ok": False, "status": None, "echostr": echostr, "body": "", "error": str(exc)}
