"""Format parsers. Importing this package registers every built-in parser."""

from collectors.parsers import (  # noqa: F401  (imported for their registrations)
    cisco_asa,
    ecs_doc,
    fortigate,
    json_audit,
    linux_auth,
    mail,
    suricata,
    syslog,
    wazuh_alert,
    web_access,
    windows,
)
from collectors.parsers.base import (
    LINE_PARSERS,
    OBJECT_PARSERS,
    JsonMapping,
    ParseContext,
    ParseError,
    known_formats,
    resolve_format,
)
from collectors.parsers.dispatch import Dispatcher, failure_event

__all__ = [
    "LINE_PARSERS",
    "OBJECT_PARSERS",
    "Dispatcher",
    "JsonMapping",
    "ParseContext",
    "ParseError",
    "failure_event",
    "known_formats",
    "resolve_format",
]
