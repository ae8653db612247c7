"""The pipeline's ``detect`` transform: every event is checked against every enabled
rule as it passes, and detections become alerts in the SOC database at once.

Configured in ``config/soc.yaml``::

    transforms:
      - type: parse
      - type: enrich
      - type: detect
        options:
          rules: [../rules]              # directories or .zip archives of Sigma rules
          placeholders: {ioc_bad_ips: ../rules/iocs/bad_ips.txt}
          exceptions_dir: exceptions     # allowlists (config/exceptions/*.yaml)
          dedup_window: 3600             # seconds
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collectors.batch import Origin
from collectors.event import Event
from soc.alerts.exceptions import ExceptionSet
from soc.alerts.store import AlertStore
from soc.config import ConfigError
from soc.db import database_url, make_engine, migrate
from soc.detect.loader import RuleSet, load_rules
from soc.detect.runner import Detector
from soc.pipeline.stages import StageContext, Transform, register_transform

log = logging.getLogger("soc.detect")


class DetectOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Path] = [Path("../rules")]
    placeholders: dict[str, Path | list[str]] = {}
    """Values for Sigma ``expand`` placeholders: a list, or a file with one value a line."""
    exceptions_dir: Path | None = Path("exceptions")
    dedup_window: float = Field(3600.0, gt=0)
    max_keys: int = Field(100_000, gt=0)
    lateness: float = Field(60.0, ge=0)
    max_events_per_alert: int = Field(100, gt=0)


def read_placeholders(values: dict[str, Path | list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in values.items():
        if isinstance(value, list):
            out[name] = [str(v) for v in value]
        else:
            lines = value.read_text(encoding="utf-8").splitlines()
            out[name] = [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]
    return out


def _fingerprint(paths: list[Path]) -> tuple[tuple[str, float], ...]:
    marks: list[tuple[str, float]] = []
    for root in paths:
        if root.is_file():
            marks.append((str(root), root.stat().st_mtime))
            continue
        for path in sorted(root.rglob("*.y*ml")):
            marks.append((str(path), path.stat().st_mtime))
    return tuple(marks)


class DetectStage(Transform):
    name = "detect"

    def __init__(self, options: DetectOptions, alerts: AlertStore) -> None:
        self.options = options
        self.alerts = alerts
        self._lock = threading.Lock()
        self._fingerprint = _fingerprint(options.rules)
        self.ruleset = self._load()
        self.detector = self._detector(self.ruleset)

    def _load(self) -> RuleSet:
        ruleset = load_rules(self.options.rules, placeholders=read_placeholders(self.options.placeholders))
        for skipped in ruleset.skipped:
            log.warning("rule skipped: %s (%s): %s", skipped.path, skipped.rule_id, skipped.reason)
        log.info("detection: %d rules, %d correlations, %d skipped", len(ruleset.rules),
                 len(ruleset.correlations), len(ruleset.skipped))
        return ruleset

    def _detector(self, ruleset: RuleSet) -> Detector:
        o = self.options
        return Detector(ruleset, max_keys=o.max_keys, lateness=o.lateness,
                        max_events_per_alert=o.max_events_per_alert)

    def apply(self, events: list[Event], origin: Origin) -> list[Event]:
        with self._lock:
            detections = self.detector.process(events)
        if detections:
            self.alerts.raise_detections(detections)
        return events

    def tick(self) -> int:
        """Close correlation windows due by the clock; returns alerts raised."""
        with self._lock:
            detections = self.detector.tick(time.time())
        if detections:
            self.alerts.raise_detections(detections)
        return len(detections)

    def reload_if_changed(self) -> bool:
        """Reload the rules when a rule file changed (open correlation windows restart)."""
        mark = _fingerprint(self.options.rules)
        if mark == self._fingerprint:
            return False
        ruleset = self._load()
        detector = self._detector(ruleset)
        with self._lock:
            self.ruleset, self.detector, self._fingerprint = ruleset, detector, mark
        return True

    def reload_exceptions(self) -> None:
        if self.options.exceptions_dir is not None and self.options.exceptions_dir.is_dir():
            self.alerts.exceptions = ExceptionSet.load(self.options.exceptions_dir)

    def close(self) -> None:
        detections = self.detector.flush()
        if detections:
            self.alerts.raise_detections(detections)


def resolve_options(ctx: StageContext) -> DetectOptions:
    where = ctx.config.config_path if ctx.config is not None else Path("config/soc.yaml")
    try:
        options = DetectOptions.model_validate(ctx.options)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = "transforms.detect.options." + ".".join(str(p) for p in err["loc"])
        raise ConfigError(where or "config/soc.yaml", key, err["msg"], "sửa giá trị / correct the value") from None
    base = where.parent if where is not None else Path.cwd()

    def under(path: Path) -> Path:
        return path if path.is_absolute() else (base / path).resolve()

    return options.model_copy(update={
        "rules": [under(p) for p in options.rules],
        "placeholders": {k: (under(v) if isinstance(v, Path) else v) for k, v in options.placeholders.items()},
        "exceptions_dir": under(options.exceptions_dir) if options.exceptions_dir else None,
    })


def open_alert_store(config: Any, options: DetectOptions) -> AlertStore:
    url = database_url(config)
    migrate(url)
    exceptions = None
    if options.exceptions_dir is not None and options.exceptions_dir.is_dir():
        exceptions = ExceptionSet.load(options.exceptions_dir)
    return AlertStore(make_engine(url), dedup_window=options.dedup_window, exceptions=exceptions)


@register_transform("detect")
def _detect(ctx: StageContext) -> Transform:
    options = resolve_options(ctx)
    return DetectStage(options, open_alert_store(ctx.config, options))
