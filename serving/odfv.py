"""On-demand feature views evaluated at request time.

Inputs, one column (a list, one value per entity row) per name:
- every feature of each source view, by its bare name (the first source wins a clash)
  and by its full name `<view>__<feature>`; null where the entity has no row;
- the join keys of the request;
- the request-source fields, taken from the request's `entities` columns.

Expression mode evaluates the view's whitelisted expressions
(catalog.transformations, checked when the view was applied); python mode imports the
view's dotted path (validated at apply time: the function must be importable on the
server) and calls it with a dict of those columns, expecting a dict of output columns
back. Either failing is a definition problem: a 500 naming the view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from catalog.repo.normalize import import_function
from catalog.transformations import ExpressionError, compile_expression, evaluate_columns

from .errors import TransformationFailed
from .registry_cache import OnDemandViewMeta


@lru_cache(maxsize=256)
def transformation(path: str) -> Callable[[dict[str, list[Any]]], Mapping[str, Any]]:
    """The python-mode function at `path`, imported once per process."""
    return import_function(path)


def needed_inputs(odfv: OnDemandViewMeta, outputs: list[str]) -> set[str] | None:
    """The input names the requested outputs read (expression mode), or None for all (python mode)."""
    if odfv.mode != "expression":
        return None
    names: set[str] = set()
    for output in outputs:
        names |= compile_expression(odfv.expressions[output]).inputs
    return names


def evaluate(odfv: OnDemandViewMeta, outputs: list[str], inputs: dict[str, list[Any]], rows: int) -> dict[str, list]:
    """The requested output columns of `odfv` over `rows` entity rows."""
    if odfv.mode == "expression":
        missing = [name for name in outputs if name not in odfv.expressions]
        if missing:
            raise TransformationFailed(f"on-demand feature view {odfv.name} has no expression for {missing}")
        try:
            out = evaluate_columns({name: odfv.expressions[name] for name in outputs}, inputs)
        except ExpressionError as exc:
            raise TransformationFailed(f"on-demand feature view {odfv.name} failed: {exc}") from exc
        if not inputs:  # constant expressions: evaluate_columns saw no rows
            out = {name: [compile_expression(odfv.expressions[name]).evaluate({})] * rows for name in outputs}
        return out
    try:
        function = transformation(odfv.function)
    except (ImportError, TypeError) as exc:
        raise TransformationFailed(f"on-demand feature view {odfv.name}: {exc}") from exc
    try:
        result = function({name: list(values) for name, values in inputs.items()})
    except Exception as exc:  # the user's code: any failure is the view's, reported as such
        raise TransformationFailed(
            f"on-demand feature view {odfv.name}: {odfv.function} raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(result, Mapping):
        raise TransformationFailed(
            f"on-demand feature view {odfv.name}: {odfv.function} returned {type(result).__name__}, not a dict"
        )
    columns: dict[str, list] = {}
    for name in outputs:
        values = result.get(name)
        if values is None:
            raise TransformationFailed(f"on-demand feature view {odfv.name}: {odfv.function} returned no {name!r}")
        values = values.tolist() if hasattr(values, "tolist") else list(values)
        if len(values) != rows:
            raise TransformationFailed(
                f"on-demand feature view {odfv.name}: {odfv.function} returned {len(values)} values "
                f"for {name!r}, expected {rows}"
            )
        columns[name] = values
    return columns
