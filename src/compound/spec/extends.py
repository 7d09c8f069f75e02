"""``extends``: a service built on another one, in the same file or another.

Resolved per file before the files are merged, like Compose: a service can
extend only services of its own file, or of the file named by
``extends.file`` (relative to the extending file). The base is resolved
first (recursively, with cycle detection), then the extending service is
merged onto it with the usual merge rules. Relative paths of a service taken
from another file are made absolute against that file's directory, so they
keep pointing where its author meant.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable

from compound.errors import SpecError

from .merge import merge_service
from .nodes import Node, location_of
from .shortsyntax import SyntaxProblem, parse_volume

LoadFile = Callable[[str], Node]  # absolute path → interpolated document

_REMOTE_PREFIXES = ("https://", "http://", "git://", "ssh://", "github.com/", "git@")

ServiceKey = tuple[str, str]  # (file, service)
MAX_CHAIN = 100


class ExtendsResolver:
    def __init__(self, load_file: LoadFile) -> None:
        self._load_file = load_file
        self._memo: dict[ServiceKey, Node] = {}

    def apply(self, doc: Node, file: str) -> Node:
        """``doc`` with every service's ``extends`` resolved."""
        services = doc.get("services")
        if services is None or not isinstance(services.value, dict):
            return doc
        resolved = {name: self._resolve(file, services.value, name, ()) for name in services.value}
        return doc.with_value({**doc.value, "services": services.with_value(resolved)})

    def _resolve(
        self, file: str, services: dict[str, Node], name: str, stack: tuple[ServiceKey, ...]
    ) -> Node:
        key = (file, name)
        if key in stack:
            raise self._cycle(services[name], file, name, stack)
        if len(stack) > MAX_CHAIN:
            at = services[name].get("extends") or services[name]
            raise SpecError(
                f"extends chain longer than {MAX_CHAIN} services",
                location=location_of(at.entry_mark(), ("services", name, "extends")),
            )
        if key in self._memo:
            return self._memo[key]
        service = services[name]
        ext = service.get("extends")
        if ext is None:
            self._memo[key] = service
            return service
        ref, ref_file = _parse_extends(ext, name)
        if ref_file is None:
            base_file, base_services = file, services
        else:
            base_file = os.path.normpath(
                os.path.join(os.path.dirname(file), os.path.expanduser(ref_file))
            )
            base_services = self._services_of(base_file, ext, name)
        if ref not in base_services:
            raise _not_found(ext, name, ref, base_file, base_services, file)
        base = self._resolve(base_file, base_services, ref, (*stack, key))
        if base_file != file:
            base = rebase_paths(base, os.path.dirname(base_file))
        if not isinstance(base.value, dict):
            base = base.with_value({})
        own = service.with_value({k: v for k, v in service.value.items() if k != "extends"})
        merged = merge_service(base.with_value(dict(base.value)), own, name)
        merged = Node(merged.value, service.mark, service.key_mark)
        self._memo[key] = merged
        return merged

    def _services_of(self, path: str, ext: Node, name: str) -> dict[str, Node]:
        try:
            doc = self._load_file(path)
        except SpecError as exc:
            if exc.location is not None and exc.location.line is None:
                # the file itself could not be read (missing, a device, too
                # large): say so where extends names it
                raise SpecError(
                    f"cannot extend service {name!r}: {exc.message}",
                    location=location_of(ext.entry_mark(), ("services", name, "extends", "file")),
                    hint=exc.hint,
                ) from None
            raise
        services = doc.get("services")
        if services is None or not isinstance(services.value, dict):
            raise SpecError(
                f"cannot extend service {name!r}: {path} has no services",
                location=location_of(ext.entry_mark(), ("services", name, "extends")),
            )
        return services.value

    def _cycle(
        self, service: Node, file: str, name: str, stack: tuple[ServiceKey, ...]
    ) -> SpecError:
        start = stack.index((file, name))
        chain = [*stack[start:], (file, name)]
        several_files = len({f for f, _ in chain}) > 1
        names = [f"{n} ({os.path.basename(f)})" if several_files else n for f, n in chain]
        first_name = chain[0][1]
        ext = service.get("extends") or service
        return SpecError(
            "extends cycle: " + " → ".join(names),
            location=location_of(ext.entry_mark(), ("services", first_name, "extends")),
            hint="a service cannot extend itself, directly or through others",
        )


def _parse_extends(ext: Node, name: str) -> tuple[str, str | None]:
    where = ("services", name, "extends")
    if isinstance(ext.value, str):
        return ext.value, None
    if isinstance(ext.value, dict):
        service = ext.get("service")
        file = ext.get("file")
        if service is None or not isinstance(service.value, str):
            raise SpecError(
                "extends needs 'service': the name of the service to extend",
                location=location_of(ext.entry_mark(), where),
            )
        if file is not None and not isinstance(file.value, str):
            raise SpecError(
                "extends.file must be a string",
                location=location_of(file.entry_mark(), (*where, "file")),
            )
        return service.value, file.value if file is not None else None
    raise SpecError(
        "extends must be a service name or a mapping with 'service' (and 'file')",
        location=location_of(ext.entry_mark(), where),
    )


def _not_found(
    ext: Node, name: str, ref: str, file: str, services: dict[str, Node], extending_file: str
) -> SpecError:
    close = difflib.get_close_matches(ref, [s for s in services if s != name], n=1)
    where = ""
    if file != extending_file:
        where = f" in {os.path.relpath(file, os.path.dirname(extending_file))}"
    return SpecError(
        f"cannot extend service {name!r}: there is no service {ref!r}{where}",
        location=location_of(ext.entry_mark(), ("services", name, "extends")),
        hint=f"did you mean {close[0]!r}?" if close else None,
    )


# --- relative paths ---------------------------------------------------------


def _is_local_context(path: str) -> bool:
    return not ("://" in path or path.startswith("service:") or path.startswith(_REMOTE_PREFIXES))


def absolute_path(node: Node, base_dir: str, *, local_only: bool = False) -> Node:
    value = node.value
    if not isinstance(value, str) or not value or value.startswith(("/", "~")):
        return node
    if local_only and not _is_local_context(value):
        return node
    return node.with_value(os.path.normpath(os.path.join(base_dir, value)))


def _map_items(node: Node, fn: Callable[[Node], Node]) -> Node:
    if isinstance(node.value, dict):
        return node.with_value({k: fn(v) for k, v in node.value.items()})
    return node


def _rebase_volume(item: Node, base_dir: str) -> Node:
    value = item.value
    if isinstance(value, str):
        try:
            vol = parse_volume(value)
        except SyntaxProblem:
            return item
        if vol.type == "bind" and vol.source and vol.source.startswith("."):
            absolute = os.path.normpath(os.path.join(base_dir, vol.source))
            return item.with_value(absolute + value[len(vol.source) :])
        return item
    if isinstance(value, dict) and (t := item.get("type")) is not None and t.value == "bind":
        source = item.get("source")
        if source is not None:
            return item.with_value({**value, "source": absolute_path(source, base_dir)})
    return item


def rebase_paths(service: Node, base_dir: str) -> Node:
    """``service`` with relative host paths made absolute against ``base_dir``."""
    if not isinstance(service.value, dict):
        return service
    out = dict(service.value)
    build = out.get("build")
    if build is not None:
        if isinstance(build.value, str):
            out["build"] = absolute_path(build, base_dir, local_only=True)
        elif isinstance(build.value, dict):
            b = dict(build.value)
            if "context" in b:
                b["context"] = absolute_path(b["context"], base_dir, local_only=True)
            if "additional_contexts" in b:
                b["additional_contexts"] = _map_items(
                    b["additional_contexts"], lambda n: absolute_path(n, base_dir, local_only=True)
                )
            out["build"] = build.with_value(b)
    for key in ("env_file", "label_file"):
        node = out.get(key)
        if node is None:
            continue
        if isinstance(node.value, str):
            out[key] = absolute_path(node, base_dir)
        elif isinstance(node.value, list):
            items = []
            for item in node.value:
                if isinstance(item.value, dict) and "path" in item.value:
                    items.append(
                        item.with_value(
                            {**item.value, "path": absolute_path(item.value["path"], base_dir)}
                        )
                    )
                else:
                    items.append(absolute_path(item, base_dir))
            out[key] = node.with_value(items)
    volumes = out.get("volumes")
    if volumes is not None and isinstance(volumes.value, list):
        out["volumes"] = volumes.with_value([_rebase_volume(v, base_dir) for v in volumes.value])
    return service.with_value(out)
