"""A bad value as a short text for error messages, whatever its size, depth or type.

JSON, not repr: the producer wrote `true` and `"200"`, not `True` and `'200'`.
Bounded by construction: the renderer stops as soon as it has written `limit`
characters, so a 1 MB string costs a 60-character slice, a 5,000-element array
its first few elements, and nesting recurses at most `limit` levels (every
level writes at least one character), far inside Python's recursion limit.
"""
import json
import math
import reprlib
import traceback
from collections.abc import Iterable
from typing import Any

import orjson

MAX_SHOWN_CHARS = 60
_MAX_INT_BITS = 192  # ~58 decimal digits: longer integers are described, not printed
_LOG10_2 = math.log10(2)


def show_value(value: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """`value` rendered as JSON, cut to `limit` characters (ending in `...` when cut)."""
    out: list[str] = []
    _render(value, out, limit + 1)
    text = "".join(out)
    if len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    return text


def _render(value: object, out: list[str], budget: int) -> int:
    """Append the rendering of `value` to `out` until `budget` characters; return what is left."""
    if budget <= 0:
        return 0
    # Exact types, not isinstance: a subclass (a caller outside the decoder) is not JSON.
    if type(value) is dict:
        return _render_items(value.items(), "{", "}", out, budget)
    if type(value) is list or type(value) is tuple:
        return _render_items(value, "[", "]", out, budget)
    text = _scalar(value, budget)
    out.append(text)
    return budget - len(text)


def _render_items(items: Iterable[Any], opening: str, closing: str, out: list[str], budget: int) -> int:
    out.append(opening)
    budget -= 1
    for i, item in enumerate(items):
        if budget <= 0:
            return 0
        if i:
            out.append(",")
            budget -= 1
        if opening == "{":
            key, item = item
            budget = _render(key if type(key) is str else _scalar(key, budget), out, budget)
            out.append(":")
            budget -= 1
        budget = _render(item, out, budget)
    out.append(closing)
    return budget - 1


def _scalar(value: object, budget: int) -> str:
    if value is None or value is True or value is False:
        return "null" if value is None else ("true" if value else "false")
    if type(value) is str:
        return _string(value[:budget])
    if type(value) is int:
        bits = value.bit_length()
        if bits <= _MAX_INT_BITS:
            return str(value)
        # str() of a huge integer is slow, and refused beyond 4,300 digits.
        return f"<an integer of {int(bits * _LOG10_2) + 1} digits>"
    if type(value) is float:
        if math.isfinite(value):
            return orjson.dumps(value).decode()
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    # Not a JSON value (a caller outside the decoder): reprlib bounds size and depth.
    return reprlib.repr(value)[:budget]


def _string(text: str) -> str:
    try:
        return orjson.dumps(text).decode()
    except TypeError:  # a lone surrogate (never from orjson input): escape it instead
        return json.dumps(text)


def raised_at(exc: BaseException) -> str:
    """`file.py:line in function` of the innermost frame that raised `exc` (for error texts
    of unexpected exceptions: the decoder's guard and the agents' safety net)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown location"
    frame = frames[-1]
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}"
