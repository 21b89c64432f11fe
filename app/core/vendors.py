"""Vendor RUM exports -> our RUM event objects (owned by the CX lens work; identity until it lands)."""


def to_native_rum(obj: dict) -> list[dict]:
    """Return our native RUM event objects for one decoded JSON object."""
    return [obj]
