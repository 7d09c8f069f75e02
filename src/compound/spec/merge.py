"""Merging Compose documents (``-f a -f b``) and ``extends``, per the Compose spec.

General rule: mappings merge key by key, sequences are concatenated, any
other value is replaced; a ``null`` in the later file keeps the earlier
value. Per-field exceptions, as in compose-go:

* replaced whole: ``command``, ``entrypoint``, ``healthcheck.test``, each ulimit;
* merged as maps after turning ``K=V`` lists into maps (later keys win):
  ``environment``, ``labels``, ``annotations``, ``sysctls``, ``extra_hosts``,
  ``build.args``/``labels``/``extra_hosts``/``additional_contexts``,
  ``deploy.labels`` and the ``labels`` of top-level resources;
* lists made maps first, then merged: ``depends_on``, service ``networks``;
* ``build: path`` counts as ``build: {context: path}``;
* ``logging`` is replaced when the driver changes;
* sequences with an identity, where a later entry replaces the earlier one in
  place: ``ports`` (ip, published, target, protocol), ``volumes`` and
  ``devices`` (target), ``secrets``/``configs`` (target), ``env_file``
  (path), and plain-string lists such as ``dns`` or ``cap_add`` (the value).

The YAML tags ``!reset`` (drop the inherited value) and ``!override``
(replace instead of merging) apply in the later document. Results are new
trees; input trees are not modified.
"""

from __future__ import annotations

from collections.abc import Callable

from .nodes import OVERRIDE, RESET, Node, Path, to_plain
from .shortsyntax import port_identity, split_extra_host, split_key_value, volume_target

Rule = Callable[[Node, Node, Path], Node]
Identity = Callable[[object], object]


def merge_documents(base: Node, over: Node) -> Node:
    """``over`` (a later ``-f`` file) merged onto ``base``."""
    merged = _merge(base, over, ())
    return merged if merged is not None else base.with_value({})


def merge_service(base: Node, over: Node, name: str) -> Node:
    """A service extending ``base``: the merge rules of ``services.<name>``."""
    merged = _merge(base, over, ("services", name))
    return merged if merged is not None else over


def _merge(base: Node, over: Node, path: Path) -> Node | None:
    """The merged node, or None when ``over`` resets the value."""
    if over.tag == RESET:
        return None
    if over.tag == OVERRIDE:
        return Node(over.value, over.mark, over.key_mark)
    if base.tag == RESET:
        return over
    rule = _rule_for(path)
    if rule is not None:
        return rule(base, over, path)
    return _default(base, over, path)


def _default(base: Node, over: Node, path: Path) -> Node | None:
    if over.value is None:
        return base
    if isinstance(base.value, dict) and isinstance(over.value, dict):
        return base.with_value(_merge_maps(base.value, over.value, path))
    if isinstance(base.value, list) and isinstance(over.value, list):
        return base.with_value(base.value + over.value)
    return over


def _merge_maps(base: dict[str, Node], over: dict[str, Node], path: Path) -> dict[str, Node]:
    merged = dict(base)
    for key, value in over.items():
        if key in merged:
            result = _merge(merged[key], value, (*path, key))
            if result is None:
                del merged[key]
            else:
                merged[key] = result
        elif value.tag != RESET:
            merged[key] = Node(value.value, value.mark, value.key_mark)
    return merged


# --- per-field rules -------------------------------------------------------


def _replace(_base: Node, over: Node, _path: Path) -> Node:
    return over if over.value is not None else _base


def _as_pairs(node: Node, split: Callable[[str], tuple[str, str | None]]) -> dict[str, Node] | None:
    """A ``K=V`` list or a mapping as key → value node; None if neither."""
    if isinstance(node.value, dict):
        return dict(node.value)
    if not isinstance(node.value, list):
        return None
    pairs: dict[str, Node] = {}
    for item in node.value:
        if not isinstance(item.value, str):
            return None
        try:
            key, value = split(item.value)
        except ValueError:
            return None
        pairs[key] = Node(value, item.mark, item.mark)
    return pairs


def _key_value_rule(split: Callable[[str], tuple[str, str | None]]) -> Rule:
    def rule(base: Node, over: Node, path: Path) -> Node:
        if over.value is None:
            return base
        left, right = _as_pairs(base, split), _as_pairs(over, split)
        if left is None or right is None:
            return over  # malformed: let the schema report it
        for key, value in right.items():
            if value.tag == RESET:
                left.pop(key, None)
            else:
                left[key] = value  # a later null still wins: `FOO` unsets FOO
        return base.with_value(left)

    return rule


def _extra_host_pair(item: str) -> tuple[str, str | None]:
    return split_extra_host(item)


def _list_to_map_rule(default: Callable[[], object]) -> Rule:
    def to_map(node: Node) -> Node:
        if not isinstance(node.value, list):
            return node
        items: dict[str, Node] = {}
        for item in node.value:
            if not isinstance(item.value, str):
                return node
            items[item.value] = _synthetic(default(), item)
        return node.with_value(items)

    def rule(base: Node, over: Node, path: Path) -> Node:
        result = _default(to_map(base), to_map(over), path)
        return result if result is not None else base

    return rule


def _synthetic(value: object, at: Node) -> Node:
    if isinstance(value, dict):
        return Node({k: _synthetic(v, at) for k, v in value.items()}, at.mark, at.mark)
    return Node(value, at.mark, at.mark)


def _build_rule(base: Node, over: Node, path: Path) -> Node:
    def as_map(node: Node) -> Node:
        if isinstance(node.value, str):
            return node.with_value({"context": Node(node.value, node.mark, node.mark)})
        return node

    result = _default(as_map(base), as_map(over), path)
    return result if result is not None else base


def _logging_rule(base: Node, over: Node, path: Path) -> Node:
    b, o = base.get("driver"), over.get("driver")
    if b is not None and o is not None and b.value != o.value:
        return over
    result = _default(base, over, path)
    return result if result is not None else base


def _unique_rule(identity: Identity, *, string_or_list: bool = False) -> Rule:
    def as_list(node: Node) -> Node:
        if string_or_list and isinstance(node.value, str):
            return node.with_value([Node(node.value, node.mark, node.mark)])
        return node

    def rule(base: Node, over: Node, path: Path) -> Node:
        left, right = as_list(base), as_list(over)
        if right.value is None:
            return base
        if not (isinstance(left.value, list) and isinstance(right.value, list)):
            return over
        items = list(left.value)
        index: dict[object, int] = {}
        for i, item in enumerate(items):
            index.setdefault(_safe_identity(identity, item), i)
        for item in right.value:
            key = _safe_identity(identity, item)
            if key in index:
                items[index[key]] = item  # replaced in place, keeping order
            else:
                index[key] = len(items)
                items.append(item)
        return left.with_value(items)

    return rule


def _safe_identity(identity: Identity, item: Node) -> object:
    value = to_plain(item)
    try:
        key = identity(value)
    except (TypeError, ValueError):
        key = None
    return key if key is not None else ("raw", repr(value))


def _by_value(value: object) -> object:
    return value if isinstance(value, str | int | float) else None


def _mount_identity(default_dir: str) -> Identity:
    def identity(value: object) -> object:
        if isinstance(value, str):
            return f"{default_dir}/{value}"
        if isinstance(value, dict):
            target = value.get("target")
            if isinstance(target, str):
                return target if target.startswith("/") else f"{default_dir}/{target}"
            return f"{default_dir}/{value.get('source')}"
        return None

    return identity


def _device_identity(value: object) -> object:
    if isinstance(value, dict):
        return value.get("target") or value.get("source")
    if isinstance(value, str):
        parts = value.split(":")
        return parts[1] if len(parts) > 1 else parts[0]
    return None


def _env_file_identity(value: object) -> object:
    if isinstance(value, dict):
        return value.get("path")
    return value if isinstance(value, str) else None


_KV = _key_value_rule(split_key_value)
_SERVICE_RULES: dict[tuple[str, ...], Rule] = {
    ("command",): _replace,
    ("entrypoint",): _replace,
    ("healthcheck", "test"): _replace,
    ("ulimits", "*"): _replace,
    ("environment",): _KV,
    ("labels",): _KV,
    ("annotations",): _KV,
    ("sysctls",): _KV,
    ("extra_hosts",): _key_value_rule(_extra_host_pair),
    ("build", "args"): _KV,
    ("build", "labels"): _KV,
    ("build", "additional_contexts"): _KV,
    ("build", "extra_hosts"): _key_value_rule(_extra_host_pair),
    ("deploy", "labels"): _KV,
    ("depends_on",): _list_to_map_rule(lambda: {"condition": "service_started", "required": True}),
    ("networks",): _list_to_map_rule(lambda: None),
    ("build",): _build_rule,
    ("logging",): _logging_rule,
    ("ports",): _unique_rule(port_identity),
    ("volumes",): _unique_rule(volume_target),
    ("devices",): _unique_rule(_device_identity),
    ("secrets",): _unique_rule(_mount_identity("/run/secrets")),
    ("configs",): _unique_rule(_mount_identity("")),
    ("env_file",): _unique_rule(_env_file_identity, string_or_list=True),
    ("dns",): _unique_rule(_by_value, string_or_list=True),
    ("dns_search",): _unique_rule(_by_value, string_or_list=True),
    ("tmpfs",): _unique_rule(_by_value, string_or_list=True),
    ("dns_opt",): _unique_rule(_by_value),
    ("cap_add",): _unique_rule(_by_value),
    ("cap_drop",): _unique_rule(_by_value),
    ("profiles",): _unique_rule(_by_value),
    ("links",): _unique_rule(_by_value),
    ("external_links",): _unique_rule(_by_value),
    ("expose",): _unique_rule(_by_value),
    ("networks", "*", "aliases"): _unique_rule(_by_value),
}
_TOP_RULES: dict[tuple[str, ...], Rule] = {
    ("networks", "*", "labels"): _KV,
    ("volumes", "*", "labels"): _KV,
    ("secrets", "*", "labels"): _KV,
    ("configs", "*", "labels"): _KV,
    ("networks", "*", "ipam", "config"): _unique_rule(
        lambda v: v.get("subnet") if isinstance(v, dict) else None
    ),
}


def _pattern_matches(pattern: tuple[str, ...], path: Path) -> bool:
    return len(pattern) == len(path) and all(
        p == "*" or p == q for p, q in zip(pattern, path, strict=True)
    )


def _rule_for(path: Path) -> Rule | None:
    if len(path) >= 3 and path[0] == "services":
        sub = path[2:]
        for pattern, rule in _SERVICE_RULES.items():
            if _pattern_matches(pattern, sub):
                return rule
        return None
    for pattern, rule in _TOP_RULES.items():
        if _pattern_matches(pattern, path):
            return rule
    return None
