"""What counts as a number in the JSON the core reads: int or float, never bool (a bool is
an int to Python, but `true` is not a count or a measurement); `is_finite_number` also
refuses NaN and the infinities."""
import math
from typing import Any, TypeGuard


def is_number(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_finite_number(v: Any) -> TypeGuard[int | float]:
    return is_number(v) and math.isfinite(v)
