"""Bounded decoding of the YAML and JSON documents users hand us (request files, prefect.yaml's inline requests).

A small hostile document can be enormous once read: nine nested YAML anchors, each alias list repeating the one
before (``b: &b [*a,*a,...]``), stand for 9^9 values that every later walk (validation, size checks, JSON
encoding) would visit one by one. So before a value leaves this module its text size, nesting depth and
*expanded* size (what it would weigh written out, each alias counted at every use) are bounded, measured on
YAML's node graph with each node measured once. A refusal is one ``RequestError`` naming the cause.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from codex_orchestrator.errors import RequestError

# A request is at most 384 KiB as data; its file may carry comments and layout besides. These bound the parse
# itself: JSON's C decoder reads 16 MiB in about a tenth of a second (so an oversize field is still named by the
# request's own checks); YAML builds a Python node per value, about 3 s a MiB of one-letter values on 2 busy cores.
MAX_YAML_BYTES = 1024 * 1024
MAX_JSON_BYTES = 16 * 1024 * 1024
# The deepest field of a request is a handful of levels down (steps[i].retry.retry_on_exit_codes[j]).
MAX_DEPTH = 64


def load_document(text: str, *, name: str, json_format: bool, max_expanded_bytes: int) -> Any:
    """Decode ``text`` (JSON when ``json_format``, else YAML) within the bounds above; ``name`` is how a refusal
    names the document (its path)."""
    size = len(text.encode("utf-8"))
    limit = MAX_JSON_BYTES if json_format else MAX_YAML_BYTES
    if size > limit:
        raise RequestError(f"{name} is {size} bytes; the limit is {limit} bytes")
    if json_format:
        return _load_json(text, name)
    return _load_yaml(text, name, max_expanded_bytes)


def check_shape(data: Any, *, name: str, max_expanded_bytes: int) -> None:
    """The same bounds for a value built in Python (a deployment's inline request, an API caller's dict): no
    deeper than ``MAX_DEPTH``, no cycle, and shared sub-values (the Python form of an alias) not expanding it
    beyond ``max_expanded_bytes``."""

    def children(value: Any) -> Iterable[Any] | None:
        if isinstance(value, dict):
            return [item for pair in value.items() for item in pair]
        if isinstance(value, (list, tuple)):
            return value
        return None

    _Measure(children, _scalar_bytes, name=name, aliases="shared values").check(data, max_expanded_bytes)


def _load_json(text: str, name: str) -> Any:
    try:
        data = json.loads(text)
    except RecursionError:
        raise _too_deep(name) from None
    # JSON has no aliases: its expanded size is its text's, bounded above; only the depth is left to check.
    check_shape(data, name=name, max_expanded_bytes=MAX_JSON_BYTES)
    return data


def _load_yaml(text: str, name: str, max_expanded_bytes: int) -> Any:
    import yaml  # ~10 ms: only for a request file (an `exec` reads none)

    # libyaml's parser (PyYAML's C loader) where present: linear on any input and bounded in nesting; the pure
    # Python scanner slows down quadratically on deeply nested flow collections.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        try:
            node = loader.get_single_node()  # the node graph: an alias is the very node its anchor names
        except RecursionError:
            raise _too_deep(name) from None
        except yaml.YAMLError as exc:
            if "maximum nesting depth" in str(exc):  # libyaml's own bound (1000 levels)
                raise _too_deep(name) from None
            raise
        if node is None:
            return None

        def children(item: Any) -> Iterable[Any] | None:
            if isinstance(item, yaml.SequenceNode):
                return list(item.value)
            if isinstance(item, yaml.MappingNode):
                return [part for pair in item.value for part in pair]
            return None

        def scalar_bytes(item: Any) -> int:
            return _scalar_bytes(item.value)

        measure = _Measure(children, scalar_bytes, name=name, aliases="YAML aliases", scalar_aliases=True)
        measure.check(node, max_expanded_bytes)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _scalar_bytes(value: Any) -> int:
    # About what the value weighs in JSON: its text plus quotes and a separator.
    return len(value.encode("utf-8")) + 3 if isinstance(value, str) else len(str(value)) + 1


def _too_deep(name: str) -> RequestError:
    return RequestError(f"{name} is nested more than {MAX_DEPTH} levels deep")


class _Measure:
    """One walk over a value graph, each node measured once (``id``-keyed): depth, cycles, expanded size."""

    def __init__(
        self,
        children: Callable[[Any], Iterable[Any] | None],
        scalar_bytes: Callable[[Any], int],
        *,
        name: str,
        aliases: str,
        scalar_aliases: bool = False,
    ) -> None:
        self._children = children
        self._scalar_bytes = scalar_bytes
        self._name = name
        self._aliases = aliases
        self._sizes: dict[int, tuple[int, int]] = {}  # node id -> (expanded bytes, levels below it)
        self._open: set[int] = set()
        self._scalar_aliases = scalar_aliases
        self.shared = False  # some node is reached by more than one path: an alias

    def check(self, root: Any, max_expanded_bytes: int) -> None:
        size, _ = self._size(root, 1)
        # Without sharing the size is the text's own (bounded by the file's limit); the request's own checks
        # then name the field over its limit. With it, the expansion itself is the cause.
        if self.shared and size > max_expanded_bytes:
            raise RequestError(
                f"{self._name}: {self._aliases} expand it to {size} bytes, beyond the limit of "
                f"{max_expanded_bytes} bytes; write the values out instead of repeating an anchor"
            )

    def _size(self, node: Any, depth: int) -> tuple[int, int]:
        """``node``'s expanded size and height; ``depth`` is its own level (the root's is 1)."""
        if depth > MAX_DEPTH:
            raise _too_deep(self._name)
        kids = self._children(node)
        key = id(node)
        known = self._sizes.get(key)
        if known is not None:
            # A node met again is an alias; Python's own shared scalars (small ints, interned strings) are not.
            self.shared = self.shared or kids is not None or self._scalar_aliases
            if depth + known[1] > MAX_DEPTH:  # measured once, but reached here at a deeper level
                raise _too_deep(self._name)
            return known
        if kids is None:
            size = self._scalar_bytes(node)
            self._sizes[key] = (size, 0)
            return size, 0
        if key in self._open:
            raise RequestError(f"{self._name}: {self._aliases} make a value contain itself")
        self._open.add(key)
        total, height = 2, 0
        for kid in kids:
            size, below = self._size(kid, depth + 1)
            total += size + 1
            height = max(height, below + 1)
        self._open.discard(key)
        self._sizes[key] = (total, height)
        return total, height
