"""Loading and writing :class:`~prunekit.config.PruneConfig` as YAML.

YAML is only a loader: the file is parsed with ``yaml.safe_load`` rules (plus a check that no
mapping repeats a key), then every key is checked against the dataclass fields and the values are
validated by the dataclasses. Every problem is a :class:`~prunekit.errors.ConfigError` whose
message starts with the dotted path of the bad key.

Example::

    version: 1
    criterion: l1
    criterion_options: {}
    scope: local
    round_to: 8
    ignore: [fc]
    exact_only: false
    schedule:
      kind: agp            # one_shot | iterative | agp
      initial: 0.0
      final: 0.5
      start: 0
      end: 10000
      frequency: 1000
    overrides:
      - {pattern: conv1, sparsity: null}            # exact name: never prune
      - {pattern: "re:layer4\\..*", sparsity: 0.7}   # regex (full match)
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from prunekit.config.schema import Override, PruneConfig, ScheduleConfig, kind_fields
from prunekit.engine.options import TARGETS
from prunekit.errors import ConfigError
from prunekit.fileio import write_text
from prunekit.regularizers.config import SparsifyConfig
from prunekit.schedules.registry import SCHEDULES

__all__ = [
    "load_config",
    "config_to_dict",
    "dump_config",
    "parse_yaml",
    "read_yaml_file",
    "build_dataclass",
    "schedule_from",
    "MAX_DEPTH",
    "MAX_NODES",
]

_SCHEDULE_FIELDS = tuple(f.name for f in dataclasses.fields(ScheduleConfig))
#: Deepest nesting of mappings and sequences a config may have (real ones use 3 or 4 levels).
MAX_DEPTH = 64
#: Most nodes a config may expand to once aliases are followed (a "billion laughs" file of a few
#: hundred bytes expands to 10**9 nodes; real configs have a few hundred).
MAX_NODES = 100_000


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader whose mappings may not repeat a key (PyYAML keeps the last one silently).

    The whole document is checked once by :func:`_check_duplicates` before anything is built;
    this override only re-checks the mapping at hand (one level, so building stays linear).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        _check_level(node, "")
        return super().construct_mapping(node, deep=deep)


def _key_of(key_node: yaml.Node, path: str) -> Any:
    if not isinstance(key_node, yaml.ScalarNode):
        where = path or "config"
        raise ConfigError(
            f"{where}: a key must be a plain value, but got a {key_node.id} (line {key_node.start_mark.line + 1})",
            module=where,
        )
    return key_node.value


def _check_level(node: yaml.MappingNode, path: str) -> None:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = _key_of(key_node, path)
        if key in seen:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: duplicate key (line {key_node.start_mark.line + 1})", module=where)
        seen.add(key)


def _check_duplicates(node: yaml.Node, path: str) -> None:
    """Raises on the first repeated or non-scalar key, naming its dotted path and line.

    Each node is visited once, however many aliases point at it, and the number of nodes the
    document would expand to is counted on the way (without expanding anything), so a small
    file of nested aliases is refused at once instead of walking 10**9 nodes.
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, str, bool]] = [(node, path, False)]
    while stack:  # iterative post-order: depth was bounded by the event scan, but stay flat
        current, where, done = stack.pop()
        if id(current) in sizes and not done:
            continue
        if isinstance(current, yaml.ScalarNode):
            sizes[id(current)] = 1
            continue
        children = (
            [child for pair in current.value for child in pair]
            if isinstance(current, yaml.MappingNode)
            else list(current.value)
        )
        if done:
            sizes[id(current)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(current)] > MAX_NODES:
                raise ConfigError(
                    f"{where or 'config'}: the document expands to more than {MAX_NODES} values "
                    "(nested aliases?); write it out without aliases",
                    module=where or "config",
                )
            continue
        sizes[id(current)] = 0  # visiting: a recursive alias meets this and adds nothing
        stack.append((current, where, True))
        if isinstance(current, yaml.MappingNode):
            _check_level(current, where)
            for key_node, value_node in current.value:
                stack.append((key_node, where, False))
                stack.append((value_node, f"{where}.{key_node.value}" if where else str(key_node.value), False))
        else:
            for i, item in enumerate(current.value):
                stack.append((item, f"{where}[{i}]", False))


def _check_depth(text: str, source: str) -> None:
    """Refuses nesting deeper than :data:`MAX_DEPTH` from the event stream (PyYAML composes
    recursively, so a 5000-deep file would otherwise end in a RecursionError)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise ConfigError(f"{source}: nested more than {MAX_DEPTH} levels deep (line {line})", module=source)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def parse_yaml(text: str, source: str) -> Any:
    """Parses YAML text with safe rules, no repeated keys, bounded depth and alias expansion."""
    if "\x00" in text:
        raise ConfigError(f"{source}: holds a NUL byte; a config is a text file", module=source)
    try:
        _check_depth(text, source)
        loader = _UniqueKeyLoader(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {_one_line(e)}", module=source) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_duplicates(node, "")  # full dotted paths before anything is built
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {_one_line(e)}", module=source) from None
    finally:
        loader.dispose()


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def read_yaml_file(path: str | os.PathLike[str], *, what: str = "config", allow_empty: bool = True) -> Any:
    """Reads and parses a YAML file (see :func:`load_config`); ``None`` for an empty one.

    Raises:
        ConfigError: naming the file: unreadable, not UTF-8, a NUL byte, invalid YAML, too deep,
            too many aliases, a repeated key; or empty when ``allow_empty`` is False.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what}: {e.strerror}", module=str(path)) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: the {what} is not UTF-8 text (byte {e.start})", module=str(path)) from None
    data = parse_yaml(text, str(path))
    if data is None and not allow_empty:
        raise ConfigError(f"{path}: the {what} file is empty", module=str(path))
    return data


def _check_keys(
    data: object, cls: type, path: str, allowed: tuple[str, ...] | None = None, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``data`` as a dict whose keys are YAML fields of ``cls`` (or ``extra``), else the error
    names the dotted path; with ``allowed``, only those fields."""
    where = path or "config"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping, but got {data!r} ({type(data).__name__})", module=where)
    fields = [f.name for f in dataclasses.fields(cls) if f.metadata.get("yaml", True)] + list(extra)
    for key in data:
        dotted = f"{path}.{key}" if path else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" Known keys: {', '.join(fields)}"
            raise ConfigError(f"{dotted}: unknown key{hint}", module=dotted)
        if allowed is not None and key not in allowed:
            raise ConfigError(
                f"{dotted}: not used by schedule kind {data.get('kind')!r} (it reads {', '.join(allowed)})",
                module=dotted,
            )
    return dict(data)


def build_dataclass(cls: type, kwargs: dict[str, Any], path: str) -> Any:
    """Constructs ``cls``, prefixing the path to the field name its validation reports."""
    try:
        return cls(**kwargs)
    except ConfigError as e:
        field_path = f"{path}.{e.module}" if path and e.module else (e.module or path)
        message = str(e)
        raise ConfigError(f"{path}.{message}" if path else message, module=field_path, detail=e.detail) from None


def schedule_from(data: object, path: str, *, lenient: bool = False) -> ScheduleConfig:
    """A :class:`ScheduleConfig` from a mapping: the keys its kind reads (:func:`kind_fields`);
    a registered schedule's own parameters go to ``params``. ``lenient`` drops the standard
    fields the kind does not read instead of refusing them (the CLI passes them all)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: must be a mapping, but got {data!r} ({type(data).__name__})", module=path)
    kind = data.get("kind", ScheduleConfig.kind)
    reads = kind_fields(kind) if isinstance(kind, str) and kind in SCHEDULES else None
    extra = tuple(k for k in reads or () if k not in _SCHEDULE_FIELDS)
    if lenient and reads is not None:
        data = {k: v for k, v in data.items() if k in reads or k not in _SCHEDULE_FIELDS}
    raw = _check_keys(data, ScheduleConfig, path, allowed=reads, extra=extra)
    params = {k: raw.pop(k) for k in extra if k in raw}
    return build_dataclass(ScheduleConfig, {**raw, "params": params} if params else raw, path)


def _config_from(data: object) -> PruneConfig:
    raw = _check_keys(data, PruneConfig, "")
    target = next((k for k in TARGETS if raw.get(k) is not None), None)
    if target and isinstance(raw.get("schedule"), Mapping) and "final" in raw["schedule"]:
        raise ConfigError(
            f"schedule.final: give exactly one of schedule.final and {target} (it sets how much to prune)",
            module="schedule.final",
        )
    if "schedule" in raw:
        raw["schedule"] = schedule_from(raw["schedule"], "schedule")
    if "ignore" in raw:
        ignore = raw["ignore"]
        if isinstance(ignore, str) or not isinstance(ignore, (list, tuple)):
            raise ConfigError(f"ignore: must be a list of module names, but got {ignore!r}", module="ignore")
        raw["ignore"] = tuple(ignore)
    if raw.get("sparsify") is not None:
        section = _check_keys(raw["sparsify"], SparsifyConfig, "sparsify")
        raw["sparsify"] = build_dataclass(SparsifyConfig, section, "sparsify")
    if "criterion_options" in raw and raw["criterion_options"] is None:
        raw["criterion_options"] = {}
    if "overrides" in raw:
        items = raw["overrides"] or []
        if not isinstance(items, (list, tuple)):
            raise ConfigError(
                f"overrides: must be a list of {{pattern, sparsity}}, but got {items!r}", module="overrides"
            )
        raw["overrides"] = tuple(
            build_dataclass(Override, _check_keys(o, Override, f"overrides[{i}]"), f"overrides[{i}]")
            for i, o in enumerate(items)
        )
    return build_dataclass(PruneConfig, raw, "")


def load_config(source: str | os.PathLike[str] | Mapping[str, Any] | PruneConfig) -> PruneConfig:
    """Builds a validated :class:`PruneConfig` from a YAML file path or a plain mapping.

    Raises:
        ConfigError: with the dotted path of the bad key for an unknown key (with a suggestion),
            a duplicate key, a wrong type, a value out of range, a bad regex, an unknown
            criterion or schedule kind; or if the file cannot be read.
    """
    if isinstance(source, PruneConfig):
        return source
    if isinstance(source, Mapping):
        return _config_from(source)
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"source must be a path or a mapping, but got {type(source).__name__}", module="source")
    data = read_yaml_file(source)
    return _config_from({} if data is None else data)


def config_to_dict(cfg: PruneConfig) -> dict[str, Any]:
    """The config as plain YAML-ready data; ``load_config(config_to_dict(cfg)) == cfg``.

    The schedule keeps only the keys its kind reads, so the dict loads back without error.
    """
    out = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.metadata.get("yaml", True)}
    out["criterion_options"] = dict(cfg.criterion_options)
    out["ignore"] = list(cfg.ignore)
    sched = cfg.schedule
    out["schedule"] = {k: sched.params[k] if k in sched.params else getattr(sched, k) for k in kind_fields(sched.kind)}
    if cfg.target is not None:
        del out["schedule"]["final"]  # the target says how much to prune
    else:
        for key in TARGETS:
            del out[key]
    out["overrides"] = [{"pattern": o.pattern, "sparsity": o.sparsity} for o in cfg.overrides]
    if cfg.sparsify is None:
        del out["sparsify"]
    else:
        out["sparsify"] = cfg.sparsify.to_dict()
    return out


def dump_config(cfg: PruneConfig, path: str | os.PathLike[str]) -> Path:
    """Writes the resolved config as YAML, atomically (a temp file, then ``os.replace``)."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)
    return write_text(path, text)
