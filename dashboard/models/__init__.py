"""The models, one module per aggregate. Domain packages import from here; models import no domain code.

Every module of this package is imported below, so the metadata Alembic compares is always complete.
"""

import importlib
import pkgutil

from .api_key import ApiKey
from .audience import UserAttributeValue, UserTag, WechatUser
from .audit import AuditEvent
from .delivery import Channel, Delivery, DeliveryAttempt, DeliverySource, DeliveryState
from .dispatch import DispatchState
from .operator import Operator, Role
from .push_nonce import PushNonce
from .segment import Segment
from .types import UTCDateTime, utcnow
from .user_attribute import UserAttribute
from .wechat import AccessTokenCache

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "AccessTokenCache",
    "ApiKey",
    "AuditEvent",
    "Channel",
    "Delivery",
    "DeliveryAttempt",
    "DeliverySource",
    "DeliveryState",
    "DispatchState",
    "Operator",
    "PushNonce",
    "Role",
    "Segment",
    "UTCDateTime",
    "UserAttribute",
    "UserAttributeValue",
    "UserTag",
    "WechatUser",
    "utcnow",
]
