"""Parsers of environment values: each takes (variable, raw text) and returns the value, or
raises SettingsError naming the variable, the value and what it must be."""
from __future__ import annotations

from app.core.lenses.sre import parse_error_statuses


class SettingsError(ValueError):
    """A setting has a bad value; the message names the variable and the fix."""


def parse_int(name: str, raw: str, minimum: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer; set {name} to a whole number") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    return value


def parse_float(name: str, raw: str, minimum: float | None = None, maximum: float | None = None) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number; set {name} to a number") from None
    if value != value:  # NaN passes every comparison below
        raise SettingsError(f"{name}={raw!r} is not a number; set {name} to a number")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise SettingsError(f"{name}={raw!r} must be between {minimum} and {maximum}")
    return value


def parse_int_range(name: str, raw: str, minimum: int, maximum: int) -> int:
    value = parse_int(name, raw, minimum)
    if value > maximum:
        raise SettingsError(f"{name}={raw!r} must be at most {maximum}")
    return value


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; set {name} to true or false")


def parse_replication(name: str, raw: str) -> int:
    value = parse_int(name, raw, -1)
    if value == 0:
        raise SettingsError(f"{name}=0 is not a replication factor; give -1 (the broker's "
                            f"default.replication.factor) or a count of at least 1")
    return value


def parse_str(name: str, raw: str) -> str:
    if not raw.strip():
        raise SettingsError(f"{name} is empty; unset it to use the default or give a value")
    return raw.strip()


def parse_choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    value = raw.strip()
    if value not in allowed:
        raise SettingsError(f"{name}={raw!r} must be one of {', '.join(allowed)}")
    return value


def parse_choices(name: str, raw: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = tuple(dict.fromkeys(v.strip().lower() for v in raw.split(",") if v.strip()))
    wrong = [v for v in values if v not in allowed]
    if wrong or not values:
        raise SettingsError(f"{name}={raw!r}: give a comma-separated list of {', '.join(allowed)}")
    return values


def parse_csv(name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def parse_quantiles(name: str, raw: str) -> tuple[float, ...]:
    values = []
    for part in parse_csv(name, raw):
        q = parse_float(name, part, 0.0, 1.0)
        if not 0.0 < q < 1.0:
            raise SettingsError(f"{name}={raw!r}: each quantile must be strictly between 0 and 1, e.g. 0.5,0.95,0.99")
        values.append(q)
    if not values:
        raise SettingsError(f"{name} is empty; give quantiles such as 0.5,0.95,0.99")
    return tuple(values)


def parse_status_ranges(name: str, raw: str) -> str:
    try:
        parse_error_statuses(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from None
    return raw
