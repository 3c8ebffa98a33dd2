"""The models, one module per aggregate. Domain packages import from here; models import no domain code."""

from .audit import AuditEvent
from .operator import Operator, Role
from .types import UTCDateTime, utcnow
from .wechat import AccessTokenCache

__all__ = ["AccessTokenCache", "AuditEvent", "Operator", "Role", "UTCDateTime", "utcnow"]
