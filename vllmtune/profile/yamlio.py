"""YAML in (with the line of every key, duplicate keys refused) and YAML out (one safe dumper).

PyYAML's composer keeps a start mark on every node; we build plain Python values from the
node tree ourselves so that each key path remembers its file and line, which is what lets
every error say ``profile.yaml:14: speculative.model: ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from vllmtune.errors import Problem, ProfileError

# libyaml when available: same nodes, faster.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path_ = tuple[str | int, ...]


@dataclass
class Located:
    """A document's plain value plus ``path -> (file, line)`` for every key and item."""

    value: Any
    lines: dict[Path_, tuple[str, int]] = field(default_factory=dict)

    def where(self, path: Path_) -> tuple[str, int | None]:
        """The closest located ancestor of ``path`` (a missing key points at its parent)."""
        p = tuple(path)
        while True:
            if p in self.lines:
                return self.lines[p]
            if not p:
                return ("", None)
            p = p[:-1]


def format_path(path: Path_) -> str:
    """``("server", "extra_args", 2)`` -> ``server.extra_args[2]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


# Limits on what one profile document may expand to: a profile is a few hundred values, so
# these only ever refuse hostile input (billion laughs, recursive aliases, deep nesting).
MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_NUMBER_CHARS = 64


def _check_graph(root: yaml.Node, file: str) -> None:
    """Refuse a node graph whose alias expansion is cyclic, too deep or too large.

    Aliases share nodes, so the sizes are memoised per node: linear in the file, not in
    its expansion.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_stack: set[int] = set()

    def where(node: yaml.Node) -> int:
        return int(node.start_mark.line) + 1

    def visit(node: yaml.Node, level: int) -> None:
        key = id(node)
        if key in size:
            if level + depth[key] - 1 > MAX_DEPTH:
                raise too_deep(node)
            return
        if key in on_stack:
            raise ProfileError([Problem(file, where(node), "", "recursive alias (an anchor used inside itself)")])
        if level > MAX_DEPTH:
            raise too_deep(node)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                children += [k, v]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        on_stack.add(key)
        total, deepest = 1, 0
        for child in children:
            visit(child, level + 1)
            total += size[id(child)]
            deepest = max(deepest, depth[id(child)])
        on_stack.discard(key)
        if total > MAX_NODES:
            raise ProfileError(
                [
                    Problem(
                        file,
                        where(node),
                        "",
                        f"aliases expand to more than {MAX_NODES:,} values; write the values out or use fewer aliases",
                    )
                ]
            )
        size[key], depth[key] = total, deepest + 1

    def too_deep(node: yaml.Node) -> ProfileError:
        return ProfileError([Problem(file, where(node), "", f"nested more than {MAX_DEPTH} levels deep")])

    visit(root, 1)


def _scalar(node: yaml.Node, ctor: Any, file: str, path: Path_, problems: list[Problem]) -> Any:
    line = int(node.start_mark.line) + 1
    if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and len(node.value) > MAX_NUMBER_CHARS:
        problems.append(
            Problem(
                file,
                line,
                format_path(path),
                f"number too long ({len(node.value):,} characters, at most {MAX_NUMBER_CHARS}); quote it if it is text",
            )
        )
        return None
    try:
        value = ctor.construct_object(node, deep=True)
    except (ValueError, OverflowError) as exc:  # e.g. a timestamp 2026-13-45
        text = node.value if len(node.value) <= 40 else node.value[:40] + "..."
        problems.append(Problem(file, line, format_path(path), f"cannot read {text!r} ({exc}); quote it if it is text"))
        return None
    if isinstance(value, str) and "\x00" in value:
        problems.append(
            Problem(
                file,
                line,
                format_path(path),
                "contains a NUL character (\\0), which no command line, environment or shell can carry; remove it",
            )
        )
        return None
    return value


def _construct(node: yaml.Node, ctor: Any, file: str, path: Path_, doc: Located, problems: list[Problem]) -> Any:
    doc.lines.setdefault(path, (file, node.start_mark.line + 1))
    if isinstance(node, yaml.MappingNode):
        ctor.flatten_mapping(node)  # YAML merge keys (<<: *anchor)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            key = _scalar(key_node, ctor, file, path, problems) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                shown = key if isinstance(key_node, yaml.ScalarNode) else "a " + key_node.id
                problems.append(
                    Problem(file, line, format_path(path), f"keys must be strings, got {shown!r}; quote the key")
                )
                continue
            if key in out:
                first = doc.lines[(*path, key)][1]
                problems.append(
                    Problem(
                        file,
                        line,
                        format_path((*path, key)),
                        f"duplicate key (first defined on line {first}); keep one of them",
                    )
                )
                continue
            doc.lines[(*path, key)] = (file, line)
            out[key] = _construct(value_node, ctor, file, (*path, key), doc, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, ctor, file, (*path, i), doc, problems) for i, item in enumerate(node.value)]
    return _scalar(node, ctor, file, path, problems)


def load_yaml(text: str | bytes, file: str) -> Located:
    """Parse one YAML document into plain values with line numbers; raise ProfileError."""
    if isinstance(text, bytes):
        raw = text
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ProfileError(
                [
                    Problem(
                        file,
                        line,
                        "",
                        f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save the file as UTF-8",
                    )
                ]
            ) from None
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        doc = Located(None)
        problems: list[Problem] = []
        if root is not None:
            _check_graph(root, file)
            doc.value = _construct(root, loader, file, (), doc, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = mark.line + 1 if mark else None
        msg = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise ProfileError([Problem(file, where, "", f"invalid YAML: {msg}")]) from None
    except yaml.YAMLError as exc:
        raise ProfileError([Problem(file, None, "", f"invalid YAML: {exc}")]) from None
    except RecursionError:  # the composer itself recurses on very deep nesting
        raise ProfileError([Problem(file, None, "", f"nested more than {MAX_DEPTH} levels deep")]) from None
    finally:
        loader.dispose()
    if problems:
        raise ProfileError(problems)
    return doc


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases, multi-line strings as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


# Line breaks YAML 1.1 knows besides \n: PyYAML writes them raw in plain, single-quoted and
# literal styles, where a reader folds U+0085 into a space. Double quotes escape them (\N \L \P).
_OTHER_BREAKS = ("\x85", "\u2028", "\u2029")


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data and data == data.strip("\n") + "\n" * data.endswith("\n") else None
    if any(c in data for c in _OTHER_BREAKS):
        style = '"'
    node = dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)
    return node


_Dumper.add_representer(str, _str_representer)


def dump_yaml(data: Any) -> str:
    """The one YAML writer: deterministic, keeps key order, always ends with a newline."""
    text: str = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    )
    return text if text.endswith("\n") else text + "\n"


def dump_yaml_stream(docs: list[Any]) -> str:
    """Several documents separated by ``---``."""
    return "".join("---\n" + dump_yaml(d) for d in docs)
