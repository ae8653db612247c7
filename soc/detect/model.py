"""Types shared by the rule engine, the correlation engine and the alert store.

The flow: the engine (``soc.detect.engine``) matches each event against the
compiled detection rules and yields :class:`Detection` objects; a matching event
is also fed to the correlation engine (``soc.detect.correlation``), which yields
further :class:`Detection` objects when a correlation rule's condition holds; the
alert store (``soc.alerts``) turns detections into alerts (exceptions, then
deduplication) and keeps them in the SOC database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from collectors.event import Event

RuleKind = Literal["detection", "correlation"]

# ATT&CK tactic tags of Sigma (attack.<tactic-shortname>) → tactic name.
TACTICS: dict[str, str] = {
    "reconnaissance": "Reconnaissance",
    "resource_development": "Resource Development",
    "resource-development": "Resource Development",
    "initial_access": "Initial Access",
    "initial-access": "Initial Access",
    "execution": "Execution",
    "persistence": "Persistence",
    "privilege_escalation": "Privilege Escalation",
    "privilege-escalation": "Privilege Escalation",
    "defense_evasion": "Defense Evasion",
    "defense-evasion": "Defense Evasion",
    "credential_access": "Credential Access",
    "credential-access": "Credential Access",
    "discovery": "Discovery",
    "lateral_movement": "Lateral Movement",
    "lateral-movement": "Lateral Movement",
    "collection": "Collection",
    "command_and_control": "Command and Control",
    "command-and-control": "Command and Control",
    "exfiltration": "Exfiltration",
    "impact": "Impact",
}
_TECHNIQUE = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """What an alert needs to know about the rule that raised it."""

    id: str
    title: str
    level: str = "medium"
    """informational | low | medium | high | critical"""
    kind: RuleKind = "detection"
    name: str | None = None
    """The Sigma ``name`` a correlation rule may reference this rule by."""
    status: str | None = None
    description: str = ""
    tags: tuple[str, ...] = ()
    path: str | None = None
    logsource: dict[str, str] = field(default_factory=dict)
    references: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()

    @property
    def tactics(self) -> list[str]:
        out: list[str] = []
        for tag in self.tags:
            if tag.lower().startswith("attack."):
                name = TACTICS.get(tag[7:].lower())
                if name and name not in out:
                    out.append(name)
        return out

    @property
    def techniques(self) -> list[str]:
        out: list[str] = []
        for tag in self.tags:
            m = _TECHNIQUE.match(tag)
            if m and m.group(1).upper() not in out:
                out.append(m.group(1).upper())
        return out


@dataclass(slots=True)
class Detection:
    """A rule fired: one event for a detection rule, a window of events for a
    correlation rule. Not yet an alert (exceptions and deduplication come next)."""

    rule: RuleInfo
    events: list[Event]
    """Contributing events (for correlations at most a bounded number, newest kept)."""
    event_ids: list[str]
    """Ids of all contributing events (bounded the same way)."""
    first_seen: str
    """ISO UTC ``@timestamp`` of the first contributing event."""
    last_seen: str
    group: dict[str, Any] = field(default_factory=dict)
    """Correlation group-by values; empty for single-event rules."""
    value: float | None = None
    """Correlation aggregate (count, distinct count, sum …) that met the condition."""
    event_count: int = 1
    """How many events contributed (may exceed ``len(event_ids)``)."""
    retro: bool = False
    """Found by a retro-hunt over stored history rather than in the stream."""
