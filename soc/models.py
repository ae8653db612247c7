"""Every table of the SOC database, imported together so ``Base.metadata`` is whole
(Alembic's environment and the tests' schema comparison need all of them)."""

from soc.alerts.models import Alert
from soc.audit.models import AuditEntry, AuditHead
from soc.identity.models import TokenRow, UserRow
from soc.inventory.models import AgencyRow, IngestKeyRow, LogSourceRow, SystemRow
from soc.notify.models import NotificationCursor, NotificationDelivery
from soc.triage.models import AlertComment, Incident

__all__ = ["AgencyRow", "Alert", "AlertComment", "AuditEntry", "AuditHead", "Incident", "IngestKeyRow",
           "LogSourceRow", "NotificationCursor", "NotificationDelivery", "SystemRow", "TokenRow", "UserRow"]
