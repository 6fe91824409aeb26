"""YAML read with bounds, so a hostile recipe fails fast instead of hanging or crashing.

``yaml.safe_load`` constructs no objects, but it still trusts its input's shape:
a few hundred bytes of nested aliases expand to billions of values for any
code that walks the result, and a document nested thousands of levels deep
makes the composer (and everything after it) hit Python's recursion limit.
``check`` walks the parser's event stream once, before anything is composed:
it stops at the first collection deeper than ``MAX_DEPTH`` and counts every
alias at the size of the node it names (computed once, when that node
closes), stopping as soon as the expanded document exceeds ``MAX_VALUES``.
The event parser is iterative (libyaml's when installed), so this costs
milliseconds on a recipe and at most about a second on any input under
``MAX_BYTES``. ``duplicate_key`` then visits
each composed node once (a shared alias node is not walked again).
"""

from __future__ import annotations

import yaml

MAX_BYTES = 1 << 20
"""A recipe is a few hundred lines; anything over 1 MiB is not one."""
MAX_DEPTH = 100
"""Nesting levels of mappings and sequences (recipes use 2-4; free-form configs a few more)."""
MAX_VALUES = 10_000
"""Scalars and collections in the document with every alias expanded (a recipe has a few hundred)."""
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # events only: nothing is constructed


class Unsafe(ValueError):
    """The document exceeds a bound; the message says which and where."""


def _where(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def check(text: str) -> None:
    """Raise ``Unsafe`` for a document too large, too deep or expanding too far through aliases;
    ``yaml.YAMLError`` for a syntax error met on the way."""
    if len(text) > MAX_BYTES:
        raise Unsafe(f"{len(text)} characters, more than the {MAX_BYTES} a recipe may have")
    try:
        _walk(text)
    except yaml.YAMLError as e:
        # PyYAML 6.0.4's libyaml scanner refuses 1,000 levels itself, scanning ahead of the events we count.
        if "maximum nesting depth" not in str(e):
            raise
        mark = getattr(e, "problem_mark", None)
        raise Unsafe(f"nested more than {MAX_DEPTH} levels deep" + (f" at {_where(mark)}" if mark else "")) from None


def _walk(text: str) -> None:
    sizes: dict[str, int] = {}  # anchor -> expanded size of the node it names (known once that node closes)
    stack: list[list] = []  # open collections: [anchor, expanded size of their content so far]
    total = 0  # values in the document so far, every alias expanded
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, inner = stack.pop()
            if anchor is not None:
                sizes[anchor] = 1 + inner
            if stack:
                stack[-1][1] += 1 + inner
            continue
        if isinstance(event, yaml.CollectionStartEvent):
            stack.append([event.anchor, 0])
            if len(stack) > MAX_DEPTH:
                raise Unsafe(f"nested more than {MAX_DEPTH} levels deep at {_where(event.start_mark)}")
            size = 1  # added to its parent when it closes
        elif isinstance(event, yaml.ScalarEvent):
            size = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
            if stack:
                stack[-1][1] += 1
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in sizes:
                if any(frame[0] == event.anchor for frame in stack):
                    raise Unsafe(f"alias *{event.anchor} at {_where(event.start_mark)} refers to a node "
                                 "that contains it (a recursive alias)")
                continue  # an undefined alias: the composer reports it with its position
            size = sizes[event.anchor]
            if stack:
                stack[-1][1] += size
        else:
            continue
        total += size
        if total > MAX_VALUES:
            raise Unsafe(f"more than {MAX_VALUES} values with every alias expanded (at {_where(event.start_mark)}): "
                         "not a recipe")


def duplicate_key(text: str) -> str | None:
    """'duplicate key ... at line L, column C' for the first key given twice in one mapping
    (YAML lets the last silently win); composes nodes, constructs nothing, visits each node once."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    stack, seen_nodes = [root], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys:
                        return f"duplicate key {key.value!r} at {_where(key.start_mark)}"
                    keys.add(key.value)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None
