"""The models, one module per aggregate. Domain packages import from here; models import no domain code."""

from .audit import AuditEvent
from .operator import Role, Operator
from .types import UTCDateTime, utcnow

__all__ = ["AuditEvent", "Operator", "Role", "UTCDateTime", "utcnow"]
