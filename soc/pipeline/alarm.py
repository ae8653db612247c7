"""The spool alarm: a sink's spool filling up means its destination has been down
for a while, and a full spool means sources are being held back (UDP loses
datagrams). Both must reach a person before the data does not.

:class:`SpoolAlarm` is consulted by the sink after every spool append, refusal and
replay. It moves between three states::

    ok (0) ──fill ≥ ratio──▶ warning (1) ──quota reached / batch refused──▶ full (2)
       ◀──────────────── fill < ratio again (after a replay) ◀────────────────┘

On each transition it logs one bilingual line (WARNING, ERROR; INFO when it
clears), counts the transition for ``/metrics`` and calls ``on_alarm`` with a
:class:`SpoolAlarmEvent` — the service turns warning and full into SOC alerts
(:func:`spool_alert_handler`).

A refusal keeps the alarm at *full* until a replay has drained something: batches
that still fit after a refusal do not make it flap between full and warning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from soc.pipeline.spool import DiskSpool, format_bytes

if TYPE_CHECKING:
    from soc.alerts.store import AlertStore

log = logging.getLogger("soc.pipeline.spool")

AlarmState = Literal["ok", "warning", "full"]
ALARM_LEVELS: dict[str, int] = {"ok": 0, "warning": 1, "full": 2}
"""State → value of the ``soc_spool_alarm`` gauge."""


@dataclass(frozen=True, slots=True)
class SpoolAlarmEvent:
    """A change of a spool's alarm state (what ``on_alarm`` receives)."""

    sink: str
    state: AlarmState
    previous: AlarmState
    pending_bytes: int
    max_bytes: int | None
    fill_ratio: float
    segments: int
    directory: Path
    last_error: str | None
    """The sink's last failure, e.g. ``ConnectionError: cluster unreachable``."""
    at: float = field(default_factory=time.time)

    @property
    def level(self) -> int:
        return ALARM_LEVELS[self.state]

    def message(self) -> str:
        """One bilingual line saying what happened, for logs and alerts."""
        used = format_bytes(self.pending_bytes)
        quota = format_bytes(self.max_bytes) if self.max_bytes else "∞"
        pct = f"{self.fill_ratio:.0%}"
        error = self.last_error or "-"
        if self.state == "full":
            return (f"spool của sink {self.sink} đã đầy ({used} trên {quota}): lô mới bị từ chối, nguồn phải chờ "
                    f"(UDP sẽ mất gói); lỗi cuối: {error} / spool of sink {self.sink} is full ({used} of {quota}): "
                    f"new batches are refused, sources are held back (UDP will drop); last error: {error}")
        if self.state == "warning":
            return (f"spool của sink {self.sink} đầy {pct} ({used} trên {quota}): đích ghi đang lỗi; "
                    f"lỗi cuối: {error} / spool of sink {self.sink} is {pct} full ({used} of {quota}): "
                    f"its destination is failing; last error: {error}")
        return (f"spool của sink {self.sink} đã xuống dưới ngưỡng cảnh báo ({used} trên {quota}, {pct}) / "
                f"spool of sink {self.sink} is back below the alarm threshold ({used} of {quota}, {pct})")

    def fields(self) -> dict[str, Any]:
        """The facts of the event as flat fields (for an alert's key fields)."""
        return {"sink": self.sink, "state": self.state, "spool.bytes": self.pending_bytes,
                "spool.max_bytes": self.max_bytes, "spool.fill_ratio": round(self.fill_ratio, 4),
                "spool.segments": self.segments, "spool.directory": str(self.directory),
                "error.message": self.last_error}


OnAlarm = Callable[[SpoolAlarmEvent], object]


class SpoolAlarm:
    """Watches one sink's spool; see the module docstring."""

    def __init__(self, sink: str, spool: DiskSpool, ratio: float = 0.8, on_alarm: OnAlarm | None = None) -> None:
        if not 0 < ratio <= 1:
            raise ValueError("the alarm ratio must be in (0, 1]")
        self.sink = sink
        self.spool = spool
        self.ratio = ratio
        self.on_alarm = on_alarm
        self.state: AlarmState = "ok"
        self.refused = 0
        """Batches the spool refused (a counter for ``/metrics``)."""
        self.transitions: dict[str, int] = {"ok": 0, "warning": 0, "full": 0}
        """Transitions into each state (a counter for ``/metrics``)."""
        self._refused_at: int | None = None
        """Pending bytes when the last refusal happened; full holds until below it."""
        self._lock = threading.Lock()

    @property
    def level(self) -> int:
        return ALARM_LEVELS[self.state]

    @property
    def refusing(self) -> bool:
        """The spool refused a batch and nothing has drained since."""
        with self._lock:
            # An empty spool has nothing to drain: one that refused a batch larger
            # than its whole quota must not refuse everything after it.
            pending = self.spool.pending_bytes()
            return self._refused_at is not None and pending >= self._refused_at and pending > 0

    def _evaluate(self) -> AlarmState:
        pending = self.spool.pending_bytes()
        if self._refused_at is not None and pending < self._refused_at:
            self._refused_at = None
        quota = self.spool.max_bytes
        if self._refused_at is not None or (quota is not None and pending >= quota):
            return "full"
        if self.spool.fill_ratio() >= self.ratio:
            return "warning"
        return "ok"

    def refuse(self, last_error: str | None) -> SpoolAlarmEvent | None:
        """The spool just refused a batch: the alarm is (or stays) full."""
        with self._lock:
            self.refused += 1
            self._refused_at = self.spool.pending_bytes()
        return self.check(last_error)

    def sink_recovered(self) -> SpoolAlarmEvent | None:
        """The sink took a batch directly: with an empty spool, a refusal no longer
        stands (it was of a batch larger than the whole quota)."""
        with self._lock:
            if self.spool.pending_bytes() == 0:
                self._refused_at = None
        return self.check(None)

    def check(self, last_error: str | None) -> SpoolAlarmEvent | None:
        """Re-evaluate after an append or a replay; on a transition log it, count it
        and call ``on_alarm``. Returns the transition, if any."""
        with self._lock:
            state = self._evaluate()
            if state == self.state:
                return None
            event = self._event(state, last_error)
            self.state = state
            self.transitions[state] += 1
        self._announce(event)
        return event

    def announce_current(self, last_error: str | None) -> SpoolAlarmEvent | None:
        """Tell ``on_alarm`` about a state that was reached before it was attached
        (a service restarting with a full spool); nothing when the state is ok."""
        if self.state == "ok" or self.on_alarm is None:
            return None
        event = self._event(self.state, last_error)
        self._call(event)
        return event

    def _event(self, state: AlarmState, last_error: str | None) -> SpoolAlarmEvent:
        return SpoolAlarmEvent(sink=self.sink, state=state, previous=self.state,
                               pending_bytes=self.spool.pending_bytes(), max_bytes=self.spool.max_bytes,
                               fill_ratio=self.spool.fill_ratio(), segments=self.spool.pending_segments(),
                               directory=self.spool.directory, last_error=last_error)

    def _announce(self, event: SpoolAlarmEvent) -> None:
        level = {"full": logging.ERROR, "warning": logging.WARNING}.get(event.state, logging.INFO)
        log.log(level, "%s", event.message())
        self._call(event)

    def _call(self, event: SpoolAlarmEvent) -> None:
        if self.on_alarm is None:
            return
        try:
            self.on_alarm(event)
        except Exception:
            # The alarm runs inside a batch's write: a failing notification must not
            # turn a batch that is safely spooled into a failed one.
            log.exception("không gửi được cảnh báo spool của sink %s / could not deliver the spool alarm of sink %s",
                          self.sink, self.sink)


def spool_alert_handler(alerts: AlertStore) -> OnAlarm:
    """An ``on_alarm`` callback raising SOC alerts (``soc-internal-spool-warning``,
    ``soc-internal-spool-full``, one per sink while active) for warning and full.
    Clearing raises nothing: resolving internal alerts is left to their owner."""
    from soc.alerts.internal import raise_internal_alert

    def handle(event: SpoolAlarmEvent) -> None:
        if event.state == "ok":
            return
        used = format_bytes(event.pending_bytes)
        quota = format_bytes(event.max_bytes) if event.max_bytes else "∞"
        if event.state == "full":
            raise_internal_alert(
                alerts, kind="spool-full", level="critical", key=event.sink, fields=event.fields(),
                title_vi=f"Spool của sink {event.sink} đã đầy ({quota}), nguồn log bị chặn lại",
                title_en=f"Spool of sink {event.sink} is full ({quota}), log sources are held back")
        else:
            raise_internal_alert(
                alerts, kind="spool-warning", level="high", key=event.sink, fields=event.fields(),
                title_vi=f"Spool của sink {event.sink} sắp đầy ({used} trên {quota}), đích ghi đang lỗi",
                title_en=f"Spool of sink {event.sink} is filling up ({used} of {quota}), its destination fails")

    return handle
