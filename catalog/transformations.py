"""A whitelisted expression language for `mode: expression` on-demand views.

Transformation code never travels over the network (DESIGN.md): an expression is a
small arithmetic/logic formula over the view's input fields, parsed with `ast` and
checked node by node against a whitelist before it is ever evaluated. Anything not
listed below (attribute access, subscripts, lambdas, comprehensions, calls to other
functions, dunder names) is rejected when the view is applied, not when it runs.

Allowed: numbers, strings, True/False/None, input field names, `+ - * / // % **`,
unary `-`/`+`, comparisons (`== != < <= > >=`, chained), `and`/`or`/`not`,
`a if cond else b`, and the functions in `FUNCTIONS`.

Nulls propagate as in SQL: arithmetic, comparisons and functions given None give
None (except `is_null` and `coalesce`, which exist to handle them); division by
zero gives None; `and`/`or`/`not` follow three-valued logic; a None condition picks
the `else` branch.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

MAX_EXPRESSION_LENGTH = 1000
MAX_NODES = 200
MAX_POWER_BITS = 4096  # an integer ** result larger than this is refused
MAX_STRING_LENGTH = 10_000  # `"ab" * n` larger than this is refused


class ExpressionError(ValueError):
    """An expression that does not parse under the whitelist, or fails at run time."""


Evaluator = Callable[[Mapping[str, Any]], Any]


def _null_safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        if any(a is None for a in args):
            return None
        return fn(*args)

    return wrapper


def _round(x: Any, ndigits: Any = None) -> Any:
    return round(x) if ndigits is None else round(x, ndigits)


def _is_null(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _coalesce(*args: Any) -> Any:
    return next((a for a in args if not _is_null(a)), None)


def _checked_len(x: Any) -> int:
    if not isinstance(x, str | list | tuple | bytes):
        raise ExpressionError(f"len() needs a string or a list, got {type(x).__name__}")
    return len(x)


# name -> (function, min args, max args)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "abs": (_null_safe(abs), 1, 1),
    "min": (_null_safe(min), 2, 8),
    "max": (_null_safe(max), 2, 8),
    "round": (_null_safe(_round), 1, 2),
    "float": (_null_safe(float), 1, 1),
    "int": (_null_safe(int), 1, 1),
    "str": (_null_safe(str), 1, 1),
    "len": (_null_safe(_checked_len), 1, 1),
    "is_null": (_is_null, 1, 1),
    "coalesce": (_coalesce, 1, 8),
}


def _power(base: Any, exp: Any) -> Any:
    if isinstance(base, int) and isinstance(exp, int) and not isinstance(base, bool):
        if exp < 0:
            return float(base) ** exp if base else None
        if abs(base) > 1 and max(abs(base).bit_length() - 1, 1) * exp > MAX_POWER_BITS:
            raise ExpressionError(f"{base} ** {exp} is too large (limit {MAX_POWER_BITS} bits)")
    result = base**exp
    return None if isinstance(result, complex) else result


def _multiply(a: Any, b: Any) -> Any:
    if isinstance(a, str | list) or isinstance(b, str | list):
        size = len(a) if isinstance(a, str | list) else len(b)
        count = b if isinstance(a, str | list) else a
        if isinstance(count, int) and size * max(count, 0) > MAX_STRING_LENGTH:
            raise ExpressionError(f"repeating a value {count} times is too large (limit {MAX_STRING_LENGTH})")
    return a * b


def _divide(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def divide(a: Any, b: Any) -> Any:
        try:
            return op(a, b)
        except ZeroDivisionError:
            return None

    return divide


_BINARY: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", _multiply),
    ast.Div: ("/", _divide(operator.truediv)),
    ast.FloorDiv: ("//", _divide(operator.floordiv)),
    ast.Mod: ("%", _divide(operator.mod)),
    ast.Pow: ("**", _power),
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_CONSTANT_TYPES = (int, float, str, bool, type(None))


def _truth(value: Any) -> bool | None:
    return None if value is None else bool(value)


@dataclass(frozen=True)
class CompiledExpression:
    """A checked expression: `inputs` are the field names it reads."""

    text: str
    inputs: frozenset[str]
    _run: Evaluator = field(repr=False, compare=False)

    def evaluate(self, row: Mapping[str, Any]) -> Any:
        """Value of the expression for one row (a mapping of input name to value)."""
        missing = [name for name in self.inputs if name not in row]
        if missing:
            raise ExpressionError(f"{self.text!r}: missing input {', '.join(sorted(missing))}")
        try:
            return self._run(row)
        except ExpressionError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise ExpressionError(f"{self.text!r}: {exc}") from exc


class _Compiler:
    """Turns a whitelisted AST into nested closures (faster than re-walking per row)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.inputs: set[str] = set()
        self.nodes = 0

    def reject(self, node: ast.AST, what: str, hint: str = "") -> ExpressionError:
        col = getattr(node, "col_offset", None)
        where = f" at column {col + 1}" if col is not None else ""
        return ExpressionError(f"{what} is not allowed in expressions{where}{f' ({hint})' if hint else ''}")

    def compile(self, node: ast.AST) -> Evaluator:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"expression is too complex (more than {MAX_NODES} parts)")
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise self.reject(node, _describe(node))
        return method(node)

    def _Constant(self, node: ast.Constant) -> Evaluator:
        value = node.value
        if not isinstance(value, _CONSTANT_TYPES):
            raise self.reject(node, f"a {type(value).__name__} literal")
        return lambda row: value

    def _Name(self, node: ast.Name) -> Evaluator:
        name = node.id
        if name.startswith("__"):
            raise self.reject(node, f"the name {name!r}")
        if name in FUNCTIONS:
            raise ExpressionError(f"{name!r} is a function: call it as {name}(...)")
        self.inputs.add(name)
        return lambda row: row[name]

    def _BinOp(self, node: ast.BinOp) -> Evaluator:
        spec = _BINARY.get(type(node.op))
        if spec is None:
            raise self.reject(node, f"the operator {type(node.op).__name__}")
        fn = spec[1]
        left, right = self.compile(node.left), self.compile(node.right)

        def run(row: Mapping[str, Any]) -> Any:
            a, b = left(row), right(row)
            return None if a is None or b is None else fn(a, b)

        return run

    def _UnaryOp(self, node: ast.UnaryOp) -> Evaluator:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda row: (lambda v: None if v is None else not v)(operand(row))
        if isinstance(node.op, ast.USub):
            return lambda row: (lambda v: None if v is None else -v)(operand(row))
        if isinstance(node.op, ast.UAdd):
            return lambda row: (lambda v: None if v is None else +v)(operand(row))
        raise self.reject(node, "the operator ~")

    def _BoolOp(self, node: ast.BoolOp) -> Evaluator:
        parts = [self.compile(v) for v in node.values]
        is_and = isinstance(node.op, ast.And)

        def run(row: Mapping[str, Any]) -> bool | None:
            seen_null = False
            for part in parts:
                value = _truth(part(row))
                if value is None:
                    seen_null = True
                elif value is not is_and:  # False decides an `and`, True decides an `or`
                    return value
            return None if seen_null else is_and

        return run

    def _Compare(self, node: ast.Compare) -> Evaluator:
        ops = []
        for op in node.ops:
            fn = _COMPARE.get(type(op))
            if fn is None:
                hint = "use is_null(x) for None checks" if isinstance(op, ast.Is | ast.IsNot) else ""
                raise self.reject(node, f"the comparison {type(op).__name__}", hint)
            ops.append(fn)
        operands = [self.compile(node.left)] + [self.compile(c) for c in node.comparators]

        def run(row: Mapping[str, Any]) -> bool | None:
            left = operands[0](row)
            for fn, right_fn in zip(ops, operands[1:], strict=True):
                right = right_fn(row)
                if left is None or right is None:
                    return None
                if not fn(left, right):
                    return False
                left = right
            return True

        return run

    def _IfExp(self, node: ast.IfExp) -> Evaluator:
        test, body, orelse = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
        return lambda row: body(row) if test(row) else orelse(row)

    def _Call(self, node: ast.Call) -> Evaluator:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else _describe(node.func)
            raise ExpressionError(f"calling {name} is not allowed (allowed functions: {', '.join(FUNCTIONS)})")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.reject(node, "keyword or * arguments")
        fn, low, high = FUNCTIONS[node.func.id]
        if not low <= len(node.args) <= high:
            raise ExpressionError(f"{node.func.id}() takes {low}..{high} arguments, got {len(node.args)}")
        args = [self.compile(a) for a in node.args]
        return lambda row: fn(*(a(row) for a in args))


def _describe(node: ast.AST) -> str:
    names = {
        "Attribute": "attribute access",
        "Subscript": "subscripts",
        "Lambda": "lambda",
        "ListComp": "comprehensions",
        "SetComp": "comprehensions",
        "DictComp": "comprehensions",
        "GeneratorExp": "comprehensions",
        "NamedExpr": "assignment (:=)",
        "Await": "await",
        "JoinedStr": "f-strings",
        "List": "list literals",
        "Tuple": "tuple literals",
        "Dict": "dict literals",
        "Set": "set literals",
        "Starred": "* unpacking",
    }
    return names.get(type(node).__name__, type(node).__name__)


@lru_cache(maxsize=1024)
def compile_expression(text: str) -> CompiledExpression:
    """Parse and check `text`; raise ExpressionError naming the first forbidden construct."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg} at column {exc.offset or 0}") from exc
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"expression does not parse: {exc}") from exc
    compiler = _Compiler(text)
    run = compiler.compile(tree.body)
    return CompiledExpression(text=text, inputs=frozenset(compiler.inputs), _run=run)


def evaluate_columns(expressions: Mapping[str, str], columns: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """Evaluate each named expression over columnar input (name -> list of values, all
    the same length) and return the output columns in the same shape."""
    compiled = {name: compile_expression(text) for name, text in expressions.items()}
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ExpressionError("input columns have different lengths")
    n = lengths.pop() if lengths else 0
    names = list(columns)
    out: dict[str, list[Any]] = {name: [] for name in compiled}
    for i in range(n):
        row = {name: columns[name][i] for name in names}
        for name, expr in compiled.items():
            out[name].append(expr.evaluate(row))
    return out
