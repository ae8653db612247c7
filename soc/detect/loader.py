"""Loading Sigma rules: files and .zip archives → processed, compiled rules.

Every file is parsed on its own (one broken file never stops the others), then
filters are applied, ``expand`` placeholders replaced, the processing pipelines of
``rules/pipelines/`` applied (log source conditions and field renames,
docs/detection-logsources.md) and each detection rule compiled once
(:mod:`soc.detect.compiler`). Correlation rules are kept as pySigma objects with their
rule references resolved across the whole set, for :mod:`soc.detect.correlation`.

Nothing is dropped silently: a rule that cannot be used is a :class:`Skipped` with the
reason; a rule that loads but looks wrong (its log source selects nothing we parse, it
reads a field our parsers never emit) is a :class:`RuleWarning`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection, deep_dict_update
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.filters import SigmaFilter
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaDetection, SigmaRule, SigmaRuleBase
from sigma.types import Placeholder, SigmaExpansion, SigmaRegularExpression, SigmaString, SigmaType

from collectors.ecs_fields import FIELD_TYPES
from collectors.event import stable_id
from soc.detect.compiler import KEYWORD_FIELDS, LOGSOURCE_ITEM_PREFIX, CompiledRule, CompileError, compile_rule
from soc.detect.correlation import split_range_condition
from soc.detect.model import RuleInfo

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PIPELINES = REPO / "rules" / "pipelines"
RULE_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A rule (or file) that could not be used, and why."""

    path: str
    rule_id: str | None
    title: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class RuleWarning:
    """A rule that loads but will probably not do what its author expects."""

    path: str
    rule_id: str | None
    message: str


Warning = RuleWarning
"""The issue's name for :class:`RuleWarning`."""


@dataclass(slots=True)
class RuleSet:
    """What :func:`load_rules` produced."""

    rules: list[CompiledRule] = field(default_factory=list)
    """Compiled detection rules (including inactive ones, see :attr:`CompiledRule.active`)."""
    correlations: list[tuple[SigmaCorrelationRule, RuleInfo]] = field(default_factory=list)
    """Correlation rules (pipeline-processed, references resolved) with their info."""
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[RuleWarning] = field(default_factory=list)

    def infos(self) -> list[RuleInfo]:
        """Every loaded rule: detections, then correlations."""
        return [*(r.info for r in self.rules), *(info for _, info in self.correlations)]

    @property
    def active(self) -> list[CompiledRule]:
        """The detection rules the engine runs."""
        return [r for r in self.rules if r.active]


# --- rule metadata -----------------------------------------------------------------

def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    name = getattr(value, "name", None)
    return str(name if name is not None else value).lower()


def _path_of(rule: SigmaRuleBase) -> str | None:
    source = getattr(rule, "source", None)
    return str(source.path) if source is not None else None


def rule_id(rule: SigmaRuleBase) -> str:
    """The rule's id; a rule without one gets a stable id from its path and title."""
    if rule.id is not None:
        return str(rule.id)
    return stable_id("sigma-rule", _path_of(rule) or "", rule.title or "")


def rule_info(rule: SigmaRule | SigmaCorrelationRule) -> RuleInfo:
    """What alerts need to know about a rule."""
    logsource: dict[str, str] = {}
    if isinstance(rule, SigmaRule):
        for key in ("category", "product", "service"):
            value = getattr(rule.logsource, key)
            if value is not None:
                logsource[key] = str(value)
    return RuleInfo(
        id=rule_id(rule),
        title=rule.title or "",
        level=_enum_name(rule.level) or "medium",
        kind="correlation" if isinstance(rule, SigmaCorrelationRule) else "detection",
        name=rule.name,
        status=_enum_name(rule.status),
        description=rule.description or "",
        tags=tuple(str(t) for t in rule.tags),
        path=_path_of(rule),
        logsource=logsource,
        references=tuple(str(r) for r in rule.references),
        falsepositives=tuple(str(f) for f in rule.falsepositives),
    )


# --- reading files -----------------------------------------------------------------

@dataclass(slots=True)
class _Source:
    path: str
    text: str | None
    error: str | None = None


def _decode(data: bytes) -> str:
    return data.decode("utf-8-sig")


def _is_rule_file(name: str) -> bool:
    return name.lower().endswith(RULE_SUFFIXES)


def _sources(paths: Sequence[Path], exclude: Path | None) -> Iterator[_Source]:
    for root in paths:
        if not root.exists():
            yield _Source(str(root), None, "no such file or directory")
        elif root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file() and _is_rule_file(p.name)):
                # The pipelines live next to the rules (rules/pipelines): they are not rules.
                if exclude is not None and path.resolve().is_relative_to(exclude):
                    continue
                yield _read_file(path)
        elif zipfile.is_zipfile(root):
            yield from _read_zip(root)
        else:
            yield _read_file(root)


def _read_file(path: Path) -> _Source:
    try:
        return _Source(str(path), _decode(path.read_bytes()))
    except (OSError, UnicodeDecodeError) as exc:
        return _Source(str(path), None, f"cannot read: {exc}")


def _read_zip(archive: Path) -> Iterator[_Source]:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.is_dir() or not _is_rule_file(info.filename):
                    continue
                where = str(archive / info.filename)
                try:
                    yield _Source(where, _decode(zf.read(info)))
                except (OSError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
                    yield _Source(where, None, f"cannot read: {exc}")
    except (OSError, zipfile.BadZipFile) as exc:
        yield _Source(str(archive), None, f"cannot read archive: {exc}")


def _yaml_documents(text: str) -> list[tuple[int, Any]]:
    """(first line, data) of each document; raises yaml.YAMLError with its position."""
    loader = yaml.SafeLoader(text)
    docs: list[tuple[int, Any]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1 if node is not None else 0
            docs.append((line, loader.construct_document(node) if node is not None else None))
    finally:
        loader.dispose()
    return docs


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"YAML error{where}: {problem}" + (f" ({context})" if context else "")


def _sigma_error(exc: Exception) -> str:
    if isinstance(exc, SigmaError):
        message = str(exc.args[0]) if exc.args else type(exc).__name__
        line = getattr(exc.source, "line", None)
        return f"{message} (line {line})" if line else message
    return f"{type(exc).__name__}: {exc}"


# --- the load ----------------------------------------------------------------------

@dataclass(slots=True)
class _Parsed:
    """A rule object with where it came from."""

    rule: SigmaRule | SigmaCorrelationRule | SigmaFilter
    path: str
    line: int
    multi: bool

    def where(self, reason: str) -> str:
        return _where(self.line, self.multi, reason)


def _where(line: int, multi: bool, reason: str) -> str:
    return f"document at line {line}: {reason}" if multi else reason


def load_pipeline(pipelines: Path = DEFAULT_PIPELINES) -> ProcessingPipeline:
    """All pipeline files of a directory (or one file), ordered by priority."""
    files = [pipelines] if pipelines.is_file() else sorted(
        p for p in pipelines.iterdir() if p.is_file() and _is_rule_file(p.name))
    loaded = [ProcessingPipeline.from_yaml(p.read_text(encoding="utf-8")) for p in files]
    loaded.sort(key=lambda p: p.priority)
    if not loaded:
        return ProcessingPipeline()
    total = loaded[0]
    for more in loaded[1:]:
        total = total + more
    return total


def load_rules(paths: Sequence[Path], *, pipelines: Path = DEFAULT_PIPELINES,
               placeholders: dict[str, list[str]] | None = None) -> RuleSet:
    """Load Sigma rules from directories (recursively), files and .zip archives."""
    out = RuleSet()
    pipeline = load_pipeline(pipelines)
    exclude = pipelines.resolve() if pipelines.is_dir() else None
    parsed: list[_Parsed] = []
    for source in _sources(paths, exclude):
        parsed.extend(_parse_source(source, out))
    rules, correlations, filters = _split_unique(parsed, out)
    _apply_filters(filters, rules, out)
    compiled = _compile_rules(rules, pipeline, placeholders or {}, out)
    out.rules = compiled
    out.correlations = _correlations(correlations, compiled, pipeline, out)
    return out


def _parse_source(source: _Source, out: RuleSet) -> list[_Parsed]:
    if source.text is None:
        out.skipped.append(Skipped(source.path, None, None, source.error or "cannot read"))
        return []
    try:
        docs = _yaml_documents(source.text)
    except yaml.YAMLError as exc:
        out.skipped.append(Skipped(source.path, None, None, _yaml_error(exc)))
        return []
    docs = [(line, doc) for line, doc in docs if doc is not None]
    if not docs:
        out.skipped.append(Skipped(source.path, None, None, "no Sigma rule in the file"))
        return []
    multi = len(docs) > 1
    where = SigmaRuleLocation(Path(source.path))
    result: list[_Parsed] = []
    # The collection actions of multi-document files (pySigma's SigmaCollection.from_dicts),
    # one document at a time so that every rule keeps its own line and errors.
    global_doc: dict[str, Any] = {}
    previous: dict[str, Any] = {}
    for line, doc in docs:
        def at(reason: str, line: int = line) -> str:
            return _where(line, multi, reason)

        if not isinstance(doc, dict):
            out.skipped.append(Skipped(source.path, None, None, at(f"a {type(doc).__name__}, not a Sigma rule")))
            continue
        action = doc.get("action")
        try:
            if action == "global":
                global_doc = {k: v for k, v in doc.items() if k != "action"}
                previous = global_doc
                continue
            if action == "reset":
                global_doc = {}
                continue
            if action == "repeat":
                previous = deep_dict_update(previous, doc)
                rule: SigmaRule | SigmaCorrelationRule | SigmaFilter = SigmaRule.from_dict(
                    previous, collect_errors=True, source=where)
            elif action is not None:
                raise SigmaError(f"unknown Sigma collection action {action!r}")
            elif "correlation" in doc:
                # pySigma keeps one operator of a range condition; the correlation
                # engine reads the whole range from a custom attribute.
                rule = SigmaCorrelationRule.from_dict(split_range_condition(doc), collect_errors=True, source=where)
            elif "filter" in doc:
                rule = SigmaFilter.from_dict(doc, collect_errors=True, source=where)
            else:
                merged = deep_dict_update(doc, global_doc)
                rule = SigmaRule.from_dict(merged, collect_errors=True, source=where)
                previous = doc
        except Exception as exc:  # pySigma raises assorted types on malformed input
            out.skipped.append(Skipped(source.path, _str_or_none(doc.get("id")), _str_or_none(doc.get("title")),
                                       at(_sigma_error(exc))))
            continue
        if rule.errors:
            reason = "; ".join(dict.fromkeys(_sigma_error(e) for e in rule.errors))
            out.skipped.append(Skipped(source.path, _id_text(rule), rule.title, at(reason)))
            continue
        if isinstance(rule, SigmaRule) and not _is_detection(rule):
            out.skipped.append(Skipped(source.path, _id_text(rule), rule.title, at("no detection")))
            continue
        result.append(_Parsed(rule, source.path, line, multi))
    return result


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _is_detection(rule: SigmaRule) -> bool:
    return bool(getattr(rule.detection, "detections", None))


def _id_text(rule: SigmaRuleBase) -> str | None:
    return str(rule.id) if rule.id is not None else None


def _split_unique(parsed: list[_Parsed], out: RuleSet
                  ) -> tuple[list[_Parsed], list[_Parsed], list[_Parsed]]:
    """Rules, correlations and filters; a second rule with an id already loaded is
    skipped (alerts, exceptions and correlations refer to rules by id)."""
    seen: dict[str, str] = {}
    rules: list[_Parsed] = []
    correlations: list[_Parsed] = []
    filters: list[_Parsed] = []
    for item in parsed:
        rule = item.rule
        if isinstance(rule, SigmaFilter):
            filters.append(item)
            continue
        rid = rule_id(rule)
        if rid in seen:
            out.skipped.append(Skipped(item.path, rid, rule.title,
                                       item.where(f"duplicate rule id (already loaded from {seen[rid]})")))
            continue
        seen[rid] = item.path
        (correlations if isinstance(rule, SigmaCorrelationRule) else rules).append(item)
        if rule.id is None:
            out.warnings.append(RuleWarning(item.path, rid, item.where(f"rule has no id; using {rid}")))
    return rules, correlations, filters


def _apply_filters(filters: list[_Parsed], rules: list[_Parsed], out: RuleSet) -> None:
    for item in filters:
        flt = item.rule
        assert isinstance(flt, SigmaFilter)
        applied = 0
        for target in rules:
            rule = target.rule
            assert isinstance(rule, SigmaRule)
            try:
                before = list(rule.detection.condition)
                target.rule = flt.apply_on_rule(rule)
                applied += isinstance(target.rule, SigmaRule) and target.rule.detection.condition != before
            except Exception as exc:  # a broken filter must not take the rule down
                out.skipped.append(Skipped(item.path, _id_text(flt), flt.title,
                                           item.where(f"filter cannot apply to {rule_id(target.rule)}: "
                                                      f"{_sigma_error(exc)}")))
                break
        if applied == 0:
            out.warnings.append(RuleWarning(item.path, _id_text(flt), item.where("filter matches no loaded rule")))


# --- placeholders ------------------------------------------------------------------

def _expand_value(value: SigmaType, values: dict[str, list[str]]) -> list[SigmaType]:
    def replacement(p: Placeholder) -> Iterator[SigmaString]:
        options = values.get(p.name)
        if not options:
            raise CompileError(f"placeholder %{p.name}% has no values (configure it in detect placeholders)")
        for option in options:
            yield SigmaString(option)

    if isinstance(value, SigmaExpansion):
        return [SigmaExpansion([x for v in value.values for x in _expand_value(v, values)])]
    if isinstance(value, SigmaString | SigmaRegularExpression) and value.contains_placeholder():
        return list(value.replace_placeholders(replacement))
    return [value]


def _expand_detection(detection: SigmaDetection, values: dict[str, list[str]]) -> None:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            _expand_detection(item, values)
        else:
            expanded = [x for v in item.value for x in _expand_value(v, values)]
            if expanded != item.value:
                item.value = expanded


# --- compile -----------------------------------------------------------------------

def _compile_rules(items: list[_Parsed], pipeline: ProcessingPipeline, placeholders: dict[str, list[str]],
                   out: RuleSet) -> list[CompiledRule]:
    compiled: list[CompiledRule] = []
    for item in items:
        rule = item.rule
        assert isinstance(rule, SigmaRule)
        try:
            for detection in rule.detection.detections.values():
                _expand_detection(detection, placeholders)
            pipeline.apply(rule)
            # A rule no log source item applied to selects nothing we parse.
            active = any(i.startswith(LOGSOURCE_ITEM_PREFIX) for i in pipeline.applied_ids)
            c = compile_rule(rule, rule_info(rule), active=active)
        except CompileError as exc:
            out.skipped.append(Skipped(item.path, rule_id(rule), rule.title, item.where(str(exc))))
            continue
        except (SigmaError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # pySigma's transformations and condition parser fail in assorted ways on
            # rules they cannot handle; the rule is skipped, never the whole load.
            out.skipped.append(Skipped(item.path, rule_id(rule), rule.title, item.where(_sigma_error(exc))))
            continue
        compiled.append(c)
        out.warnings.extend(_validate(c, item))
    return compiled


def _known_field(name: str) -> bool:
    if name in FIELD_TYPES or name in KEYWORD_FIELDS:
        return True
    # Objects kept as they come (winlog.event_data, fortinet.firewall …) hold any key.
    parts = name.split(".")
    return any(FIELD_TYPES.get(".".join(parts[:i])) == "flattened" for i in range(1, len(parts)))


def _validate(c: CompiledRule, item: _Parsed) -> list[RuleWarning]:
    rid = c.info.id
    if not c.active:
        logsource = ", ".join(f"{k}: {v}" for k, v in c.info.logsource.items()) or "none"
        return [RuleWarning(item.path, rid, item.where(
            f"log source ({logsource}) selects no events our parsers produce "
            "(not in docs/detection-logsources.md): the rule never fires"))]
    unknown = sorted(f for f in c.fields if not _known_field(f))
    if unknown:
        return [RuleWarning(item.path, rid, item.where(
            "reads fields our parsers never emit for this log source: " + ", ".join(unknown)))]
    return []


def _correlations(items: list[_Parsed], compiled: list[CompiledRule], pipeline: ProcessingPipeline,
                  out: RuleSet) -> list[tuple[SigmaCorrelationRule, RuleInfo]]:
    """Resolve references against what loaded (a correlation over a skipped rule is
    skipped too), then apply the pipelines (group-by and alias fields get ECS names)."""
    pending = [i for i in items if isinstance(i.rule, SigmaCorrelationRule)]
    while True:
        usable = SigmaCollection([*(c.rule for c in compiled), *(i.rule for i in pending)],
                                 resolve_references=False)
        failed: list[tuple[_Parsed, str]] = []
        for item in pending:
            rule = item.rule
            assert isinstance(rule, SigmaCorrelationRule)
            try:
                rule.resolve_rule_references(usable)
            except SigmaError as exc:
                failed.append((item, f"references a rule that is not loaded: {_sigma_error(exc)}"))
        if not failed:
            break
        for item, reason in failed:
            out.skipped.append(Skipped(item.path, rule_id(item.rule), item.rule.title, item.where(reason)))
        dropped = {id(item) for item, _ in failed}
        pending = [i for i in pending if id(i) not in dropped]
    result: list[tuple[SigmaCorrelationRule, RuleInfo]] = []
    for item in pending:
        rule = item.rule
        assert isinstance(rule, SigmaCorrelationRule)
        try:
            pipeline.apply(rule)
        except (SigmaError, ValueError, TypeError) as exc:
            out.skipped.append(Skipped(item.path, rule_id(rule), rule.title, item.where(_sigma_error(exc))))
            continue
        result.append((rule, rule_info(rule)))
    return result
