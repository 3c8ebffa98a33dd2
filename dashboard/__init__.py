"""Tongzhi: the operations console for WeChat mini-program subscribe messages."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from . import config as config_module
from .models.types import utcnow

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure an instance of the dashboard.

    Settings come from the environment (see ``dashboard.config``); ``test_config`` overrides them
    and skips the environment entirely, so tests never depend on the shell they run in.
    """
    app = Flask(
        __name__,
        # Where SQLite, the generated key and the Huey queue file live; a checkout's instance/ by default.
        instance_path=(test_config or {}).get("INSTANCE_PATH")
        or os.environ.get("TONGZHI_INSTANCE_PATH")
        or None,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    instance_path = Path(app.instance_path)
    app.config.update(config_module.STATIC_DEFAULTS)
    if test_config is None:
        app.config.update(config_module.settings_from_environment(instance_path))
    else:
        # Tests never read the shell's environment, nor write a generated key into the instance folder.
        defaults = {"TONGZHI_ENV": "embedded", "SECRET_KEY": "test-only-secret-key-not-for-use"}
        app.config.update(config_module.load_settings(defaults, instance_path))
        app.config.update(test_config)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        instance_path.mkdir(parents=True, exist_ok=True)
    _trust_proxies(app)

    _configure_logging(app)
    _init_extensions(app)
    from . import body_limit, storable

    storable.register_converters(app)  # before the blueprints: each rule binds its converters when added
    _register_blueprints(app)
    body_limit.init_app(app)
    storable.init_app(app)

    from . import access, cli, errors, labels, security

    access.init_app(app)
    labels.init_app(app)
    errors.register_error_handlers(app)
    security.init_app(app)
    cli.init_app(app)
    app.jinja_env.globals["now_utc"] = utcnow
    # The navigation lists every area of the product map; areas not built yet show as such.
    app.jinja_env.globals["has_endpoint"] = lambda endpoint: endpoint in app.view_functions

    if app.config.get("AUTO_MIGRATE") and not app.config.get("TESTING"):
        from .database import upgrade_to_head

        upgrade_to_head(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind ``TRUSTED_PROXY_HOPS`` reverse proxies, take the client's address and scheme from the
    X-Forwarded-For/-Proto entries those proxies appended (the per-IP rate limit, the audit log, secure
    URLs). With 0 the headers are ignored: a client could write anything in them."""
    hops = int(app.config["TRUSTED_PROXY_HOPS"])
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def _configure_logging(app: Flask) -> None:
    from .log_redaction import SecretRedactor

    app.extensions["secret_redactor"] = SecretRedactor.from_config(app.config)
    if not app.debug and not app.testing:
        app.logger.setLevel(logging.INFO)


def _init_extensions(app: Flask) -> None:
    from . import campaigns, database, i18n
    from .auth.cookie_session import OperatorCookieSession
    from .auth.services import load_operator
    from .dispatch import tasks as dispatch_tasks
    from .extensions import csrf, db, login_manager, migrate

    database.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    app.session_interface = OperatorCookieSession()
    login_manager.user_loader(load_operator)
    i18n.init_app(app)
    dispatch_tasks.init_app(app)
    campaigns.init_app(app)


def _register_blueprints(app: Flask) -> None:
    from .api import v1_campaigns, v1_segments, v1_users  # noqa: F401 (their routes join the /api/v1 blueprint)
    from .api.v1 import bp as api_v1_bp
    from .api.views import bp as mp_api_bp
    from .apikeys.views import bp as apikeys_bp
    from .audience.views import bp as audience_bp
    from .audit.views import bp as audit_bp
    from .auth.views import bp as auth_bp
    from .campaigns.compose_views import bp as campaign_compose_bp
    from .campaigns.views import bp as campaigns_bp
    from .catalog.views import bp as catalog_bp
    from .deliveries.views import bp as deliveries_bp
    from .home.views import bp as home_bp
    from .oa.channels import bp as channels_bp
    from .oa.template_views import bp as oa_templates_bp
    from .oa.views import bp as oa_push_bp
    from .operators.views import bp as operators_bp
    from .push.views import bp as push_bp
    from .segments.views import bp as segments_bp
    from .settings.views import bp as settings_bp
    from .user_attributes.views import bp as user_attributes_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(home_bp)
    app.register_blueprint(catalog_bp)
    app.register_blueprint(oa_templates_bp)
    app.register_blueprint(deliveries_bp, url_prefix="/deliveries")
    app.register_blueprint(campaigns_bp, url_prefix="/campaigns")
    app.register_blueprint(campaign_compose_bp, url_prefix="/campaigns")
    app.register_blueprint(operators_bp, url_prefix="/settings/operators")
    app.register_blueprint(audit_bp, url_prefix="/settings/audit")
    app.register_blueprint(apikeys_bp, url_prefix="/settings/api-keys")
    app.register_blueprint(user_attributes_bp, url_prefix="/settings/user-attributes")
    app.register_blueprint(channels_bp, url_prefix="/settings/channels")
    app.register_blueprint(settings_bp, url_prefix="/settings")
    app.register_blueprint(audience_bp, url_prefix="/users")
    app.register_blueprint(segments_bp, url_prefix="/segments")
    app.register_blueprint(mp_api_bp, url_prefix="/api/mp")
    app.register_blueprint(api_v1_bp, url_prefix="/api/v1")
    app.register_blueprint(push_bp, url_prefix="/wechat")
    app.register_blueprint(oa_push_bp, url_prefix="/wechat")
