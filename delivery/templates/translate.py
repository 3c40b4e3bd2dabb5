"""A parsed Liquid template translated to one Python function, for the subset templates use.

python-liquid walks its syntax tree for every render, which makes each
output cost more than MJML's whole compilation is worth per recipient
(bench/README.md, "Templates"). This translation turns the tree of a version, once,
into Python source (static text as constants, each output one lookup and
one escape), and reuses python-liquid's own pieces for what decides a value
(its filters, stringification, truthiness and comparisons), so the two
agree; a property test holds them to the same output.

It covers text, outputs with filters, `if`/`elsif`/`else`, `unless`, `for`
(with `limit`, `offset`, `reversed`, `else` and `forloop`) and `comment`. A template using anything else is not translated (`translate`
returns None) and renders through python-liquid. At render time, a value
the translation does not handle the way python-liquid would (a loop over a
string, say) raises `FallbackError`, and that one render goes through
python-liquid instead.
"""

import contextlib
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from itertools import count
from typing import Any

from liquid import BoundTemplate, Environment
from liquid.ast import BlockNode, ConditionalBlockNode, Node
from liquid.builtin.content import ContentNode
from liquid.builtin.expressions import logical
from liquid.builtin.expressions.arguments import PositionalArgument
from liquid.builtin.expressions.filtered import FilteredExpression
from liquid.builtin.expressions.path import Path
from liquid.builtin.expressions.primitive import (
    FalseLiteral,
    FloatLiteral,
    IntegerLiteral,
    Nil,
    StringLiteral,
    TrueLiteral,
)
from liquid.builtin.output import OutputNode
from liquid.builtin.tags.comment_tag import CommentNode
from liquid.builtin.tags.for_tag import ForNode
from liquid.builtin.tags.if_tag import IfNode
from liquid.builtin.tags.unless_tag import UnlessNode
from liquid.exceptions import LiquidError
from liquid.stringify import to_liquid_string

from delivery.templates.language import LOOP_ITERATIONS, OUTPUT_LIMIT

Rendered = Callable[[Mapping[str, Any]], str]
_FORLOOP = {
    "index": "({i} + 1)",
    "index0": "{i}",
    "rindex": "({n} - {i})",
    "rindex0": "({n} - {i} - 1)",
    "first": "({i} == 0)",
    "last": "({i} == {n} - 1)",
    "length": "{n}",
}
_COMPARISONS = {
    logical.EqExpression: "_eq({l}, {r})",
    logical.NeExpression: "(not _eq({l}, {r}))",
    logical.LtExpression: "_lt(None, {l}, {r})",
    logical.GtExpression: "_lt(None, {r}, {l})",
    logical.LeExpression: "_le({l}, {r})",
    logical.GeExpression: "_le({r}, {l})",
    logical.ContainsExpression: "_contains(None, {l}, {r})",
}


_FIXED: dict[type, str] = {TrueLiteral: "True", FalseLiteral: "False", Nil: "None"}
_JUNCTIONS = {
    logical.LogicalAndExpression: "(_truthy({l}) and _truthy({r}))",
    logical.LogicalOrExpression: "(_truthy({l}) or _truthy({r}))",
}


class UnsupportedError(Exception):
    """The template uses something this translation does not cover."""


class FallbackError(Exception):
    """This render met a value the translation does not handle; render it with python-liquid."""


class LimitError(Exception):
    """A loop ran too many times, or the output grew too large."""


class _Writer:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self.names = count()
        # The scope's names the template reads, each looked up once a render.
        self.roots: dict[str, str] = {}
        # Loop variables in scope: Liquid name -> (Python item, index, length).
        self.loops: list[tuple[str, str, str, str]] = []

    def constant(self, value: Any) -> str:
        name = f"_k{next(self.names)}"
        self.constants[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def write(self, depth: int, value: str, size: int | None = None) -> None:
        """Append `value` (Python); in a loop, count it against the output limit as it grows."""
        if not self.loops:
            self.emit(depth, f"_w({value})")
        elif size is not None:
            self.emit(depth, f"_w({value})")
            self.emit(depth, f"_written += {size}")
        else:
            self.emit(depth, f"_t = {value}")
            self.emit(depth, "_w(_t)")
            self.emit(depth, "_written += len(_t)")

    # --- expressions ---------------------------------------------------------

    def expression(self, node: Any) -> str:
        if isinstance(node, Path):
            return self.path(node)
        if isinstance(node, StringLiteral | IntegerLiteral | FloatLiteral):
            return self.constant(node.value)
        fixed = _FIXED.get(type(node))
        if fixed is not None:
            return fixed
        if isinstance(node, FilteredExpression):
            return self.filtered(node)
        if isinstance(node, logical.BooleanExpression):
            return f"_truthy({self.expression(node.expression)})"
        junction = _JUNCTIONS.get(type(node))
        form = junction or _COMPARISONS.get(type(node))
        if form is None:
            raise UnsupportedError(type(node).__name__)
        return form.format(l=self.expression(node.left), r=self.expression(node.right))

    def path(self, node: Path) -> str:
        segments = list(node.path)
        if not segments or not all(isinstance(s, str | int) for s in segments):
            raise UnsupportedError("a computed path")
        root, rest = segments[0], segments[1:]
        if not isinstance(root, str):
            raise UnsupportedError("a path that starts with an index")
        if root == "forloop":
            if not self.loops or len(rest) != 1 or str(rest[0]) not in _FORLOOP:
                raise UnsupportedError("forloop")
            _, _, index, length = self.loops[-1]
            return _FORLOOP[str(rest[0])].format(i=index, n=length)
        for name, item, _, _ in reversed(self.loops):
            if root == name:
                return self.lookup(item, rest)
        local = self.roots.get(root)
        if local is None:
            local = self.roots[root] = f"_r{len(self.roots)}"
        return self.lookup(local, rest)

    def lookup(self, value: str, keys: list[Any]) -> str:
        """`value` (a local name) followed through `keys`."""
        if not keys:
            return value
        if len(keys) == 1:
            # The common case inline (a loop item's field): a dict that has the key.
            key = self.constant(keys[0])
            return (
                f"(_y if type({value}) is dict and (_y := {value}.get({key}, _MISSING)) "
                f"is not _MISSING else _get1({value}, {key}))"
            )
        if len(keys) <= _UNROLLED:
            return f"_get{len(keys)}({value}, {', '.join(self.constant(k) for k in keys)})"
        return f"_get({value}, {self.constant(tuple(keys))})"

    def filtered(self, node: FilteredExpression) -> str:
        value = self.expression(node.left)
        for f in node.filters or ():
            func = self.env.filters.get(f.name)
            if func is None or getattr(func, "with_context", False):
                raise UnsupportedError(f"filter {f.name}")
            if getattr(func, "with_environment", False):
                func = partial(func, environment=self.env)
            args = []
            for arg in f.args:
                if not isinstance(arg, PositionalArgument):
                    raise UnsupportedError("a keyword argument")
                args.append(self.expression(arg.value))
            if f.name == "default" and len(args) <= 1:
                value = f"_default({value}{''.join(', ' + a for a in args)})"
                continue
            value = f"{self.constant(func)}({value}{''.join(', ' + a for a in args)})"
        return value

    # --- nodes ---------------------------------------------------------------

    def body(self, block: BlockNode, depth: int) -> None:
        """A control-flow block; one of only whitespace renders nothing, as in python-liquid."""
        if block.blank and self.env.suppress_blank_control_flow_blocks:
            self.emit(depth, "pass")
        else:
            self.block(block.nodes, depth)

    def block(self, nodes: Sequence[Node], depth: int) -> None:
        wrote = False
        run: list[str] = []  # text and outputs in a row, written as one string
        for node in nodes:
            piece = self.piece(node)
            if piece is not None:
                run.append(piece)
                continue
            wrote = self.flush(run, depth) or wrote
            run = []
            wrote = self.node(node, depth) or wrote
        wrote = self.flush(run, depth) or wrote
        if not wrote:
            self.emit(depth, "pass")

    def piece(self, node: Node) -> str | None:
        """The Python expression of a text or output node, or None for any other node."""
        if isinstance(node, ContentNode):
            return self.constant(node.text) if node.text else ""
        if isinstance(node, OutputNode):
            return self.output(node)
        return None

    def output(self, node: OutputNode) -> str:
        # A string, the common case, goes straight to the escape: no call to _str.
        return f"(_esc(_x) if type(_x := {self.expression(node.expression)}) is str else _str(_x))"

    def flush(self, run: list[str], depth: int) -> bool:
        parts = [p for p in run if p]
        if not parts:
            return False
        value = parts[0] if len(parts) == 1 else "".join("{" + p + "}" for p in parts)
        self.write(depth, value if len(parts) == 1 else f'f"{value}"')
        return True

    def node(self, node: Node, depth: int) -> bool:  # noqa: PLR0911 - one branch per kind
        if isinstance(node, ContentNode):
            if node.text:
                self.write(depth, self.constant(node.text), len(node.text))
                return True
            return False
        if isinstance(node, OutputNode):
            self.write(depth, self.output(node))
            return True
        if isinstance(node, CommentNode):
            return False
        if isinstance(node, BlockNode):
            self.body(node, depth)
            return True
        if isinstance(node, IfNode | UnlessNode):
            self.conditional(node, depth)
            return True
        if isinstance(node, ForNode):
            self.loop(node, depth)
            return True
        raise UnsupportedError(type(node).__name__)

    def test(self, expression: Any) -> str:
        found = self.expression(expression)
        # A condition is a BooleanExpression, already made true or false.
        return found if isinstance(expression, logical.BooleanExpression) else f"_truthy({found})"

    def conditional(self, node: IfNode | UnlessNode, depth: int) -> None:
        condition = self.test(node.condition)
        if isinstance(node, UnlessNode):
            condition = f"not {condition}"
        self.emit(depth, f"if {condition}:")
        self.body(node.consequence, depth + 1)
        for alternative in node.alternatives:
            if not isinstance(alternative, ConditionalBlockNode):
                raise UnsupportedError("an alternative")
            self.emit(depth, f"elif {self.test(alternative.expression)}:")
            self.body(alternative.block, depth + 1)
        if node.default is not None:
            self.emit(depth, "else:")
            self.body(node.default, depth + 1)

    def loop(self, node: ForNode, depth: int) -> None:
        loop = node.expression
        if getattr(loop, "cols", None) is not None:
            raise UnsupportedError("cols")
        n = next(self.names)
        items, item, index, length = f"_s{n}", f"_v{n}", f"_i{n}", f"_n{n}"
        limit = "None" if loop.limit is None else self.expression(loop.limit)
        offset = "None" if loop.offset is None else self.expression(loop.offset)
        if isinstance(loop.offset, StringLiteral) and loop.offset.value == "continue":
            raise UnsupportedError("offset: continue")
        self.emit(
            depth,
            f"{items} = _items({self.expression(loop.iterable)}, {limit}, {offset}, "
            f"{bool(loop.reversed)})",
        )
        self.emit(depth, f"{length} = len({items})")
        self.emit(depth, f"if {length}:")
        self.emit(depth + 1, f"_count[0] += {length}")
        self.emit(depth + 1, "if _count[0] > _LOOPS: raise _Limit('loop iteration limit reached')")
        self.emit(depth + 1, f"for {index}, {item} in enumerate({items}):")
        self.loops.append((loop.identifier, item, index, length))
        self.body(node.block, depth + 2)
        self.loops.pop()
        self.emit(depth + 2, "if _written > _OUTPUT: raise _Limit('output stream limit reached')")
        if node.default is not None:
            self.emit(depth, "else:")
            self.body(node.default, depth + 1)


def _in_mapping(value: Mapping[Any, Any], key: Any, undefined: Any) -> Any:
    if key in value:
        return value[key]
    if key == "size":
        return len(value)
    if key in ("first", "last"):
        raise FallbackError
    return undefined


def _in_list(value: Sequence[Any], key: Any, undefined: Any) -> Any:
    if isinstance(key, int):
        return value[key] if -len(value) <= key < len(value) else undefined
    if key == "size":
        return len(value)
    if key in ("first", "last") and value:
        return value[0 if key == "first" else -1]
    return undefined


def _getter(undefined: Any) -> Callable[[Any, tuple[Any, ...]], Any]:
    """A path's value as python-liquid's `RenderContext.get` finds it, for mappings and lists."""

    def get(value: Any, path: tuple[Any, ...]) -> Any:
        for key in path:
            if value is undefined:
                return undefined
            if type(value) is dict and key in value:
                value = value[key]
            elif isinstance(value, Mapping):
                value = _in_mapping(value, key, undefined)
            elif isinstance(value, list | tuple) and not isinstance(key, bool):
                value = _in_list(value, key, undefined)
            elif value is None:
                return undefined
            else:
                raise FallbackError
        return value

    return get


_UNROLLED = 3
_MISSING = object()


def _unrolled(get: Callable[[Any, tuple[Any, ...]], Any]) -> dict[str, Callable[..., Any]]:
    """`_get1` to `_get3`: a path of one to three keys through dicts, one lookup a key."""

    def get1(value: Any, a: Any) -> Any:
        if type(value) is dict:
            found = value.get(a, _MISSING)
            if found is not _MISSING:
                return found
        return get(value, (a,))

    def get2(value: Any, a: Any, b: Any) -> Any:
        if type(value) is dict:
            found = value.get(a, _MISSING)
            if found is not _MISSING:
                return get1(found, b)
        return get(value, (a, b))

    def get3(value: Any, a: Any, b: Any, c: Any) -> Any:
        if type(value) is dict:
            found = value.get(a, _MISSING)
            if found is not _MISSING:
                return get2(found, b, c)
        return get(value, (a, b, c))

    return {"_get1": get1, "_get2": get2, "_get3": get3}


_PLAIN = frozenset({str, int, float, list, dict, tuple, bool})


def _truthy(value: Any) -> bool:
    """Liquid's truth (only nil, false and undefined are false), quickly for plain values."""
    if type(value) in _PLAIN:
        return value is not False
    return logical.is_truthy(value)


def _defaulter(liquid_default: Callable[..., Any], undefined: Any) -> Callable[..., Any]:
    """python-liquid's `default` filter, without its wrapper for the common kinds of value."""

    def default(value: Any, fallback: Any = "") -> Any:
        if value is undefined:
            return fallback
        kind = type(value)
        if kind is str or kind is list or kind is dict:
            return value or fallback
        if kind is int or kind is float:
            return value
        if value is None or value is False:
            return fallback
        return liquid_default(value, fallback)

    return default


def _items_of(undefined: Any) -> Callable[[Any, Any, Any, bool], list[Any]]:
    def items(value: Any, limit: Any, offset: Any, backwards: bool) -> list[Any]:
        if value is undefined or value is None:
            return []
        if not isinstance(value, list | tuple):
            raise FallbackError
        if not (isinstance(limit, int | None) and isinstance(offset, int | None)):
            raise FallbackError
        length = len(value)
        start = int(offset or 0)
        stop = None if limit is None else limit + start
        first = min(max(start, 0), length)
        last = min(stop or length, length)
        chosen = list(value[first:last])
        return chosen[::-1] if backwards else chosen

    return items


def translate(template: BoundTemplate, *, html: bool) -> Rendered | None:
    """The template as a Python function of the scope, or None when it uses more than the subset."""
    env = template.env
    writer = _Writer(env)
    try:
        writer.block(template.nodes, 1)
    except UnsupportedError:
        return None
    undefined = env.undefined("")
    names: dict[str, Any] = {
        **writer.constants,
        "_UNDEF": undefined,
        "_get": (get := _getter(undefined)),
        **_unrolled(get),
        "_default": _defaulter(env.filters["default"], undefined),
        "_items": _items_of(undefined),
        "_truthy": _truthy,
        "_MISSING": _MISSING,
        "_eq": logical._eq,  # noqa: SLF001 - python-liquid's own comparison, so both agree
        "_lt": logical._lt,  # noqa: SLF001
        "_le": logical._le,  # noqa: SLF001
        "_contains": logical._contains,  # noqa: SLF001
        "_Errors": _FILTER_ERRORS,
        "_Fallback": FallbackError,
        "_Limit": LimitError,
        "_LOOPS": LOOP_ITERATIONS,
        "_OUTPUT": OUTPUT_LIMIT,
    }
    body = [
        "def _render(_scope):",
        "    _out = []",
        "    _w = _out.append",
        "    _count = [0]",
        "    _written = 0",
        *(f"    {local} = _scope.get({root!r}, _UNDEF)" for root, local in writer.roots.items()),
        "    try:",
        *("    " + line for line in writer.lines),
        "    except _Errors:",
        "        raise _Fallback from None",
        "    _text = ''.join(_out)",
        "    if len(_text) > _OUTPUT: raise _Limit('output stream limit reached')",
        "    return _text",
    ]
    names["_str"] = _html_string if html else _plain_string
    names["_esc"] = _escape if html else str
    exec(compile("\n".join(body), "<liquid translated>", "exec"), names)  # noqa: S102 - our own source
    rendered: Rendered = names["_render"]
    return rendered


# A filter that fails, or a comparison of values that do not compare: python-liquid
# renders the message instead and raises the error with its place.
_FILTER_ERRORS = (LiquidError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError)


def _replace_escape(text: str) -> str:
    # markupsafe's escaping, which python-liquid's autoescape uses, without its Markup object.
    return (
        text.replace("&", "&amp;")
        .replace(">", "&gt;")
        .replace("<", "&lt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


_escape: Callable[[str], str] = _replace_escape
with contextlib.suppress(ImportError):  # markupsafe's own C escaping, when it was built with it
    from markupsafe._speedups import _escape_inner

    _escape = _escape_inner


def _html_string(value: Any) -> str:
    if type(value) is str:
        return _escape(value)
    return to_liquid_string(value, autoescape=True)


def _plain_string(value: Any) -> str:
    if type(value) is str:
        return value
    return to_liquid_string(value, autoescape=False)
