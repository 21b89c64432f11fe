"""The Faust boundary: the only code that touches Faust's or aiokafka's internals.

It builds the Faust app around the runners (app.py, runtime.py), adapts Faust tables and
topics to the runners' ports (store.py, outbox.py, consumer.py), fixes Faust's memory
store for standby replicas (memory_store.py) and aiokafka's reconnect loop (backoff.py).
Those fixes reach into private members of one release, so importing this package checks
that the installed releases are the pinned ones.
"""
from __future__ import annotations

from importlib import metadata
from typing import Callable

# As pinned in pyproject.toml (tests/unit/faust/test_versions.py keeps the two in step).
PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}


class FaustVersionError(RuntimeError):
    """An installed release differs from the one the boundary was written against."""


def check_versions(installed: Callable[[str], str] = metadata.version) -> None:
    for package, pinned in PINNED.items():
        try:
            found = installed(package)
        except metadata.PackageNotFoundError:
            found = "not installed"
        if found != pinned:
            raise FaustVersionError(
                f"lensbridge needs {package}=={pinned} (pyproject.toml), found {found}: app/faust/ "
                f"reaches into that release's internals. Reinstall the project's dependencies: "
                f"`make install`, or `pip install {package}=={pinned}`")


check_versions()
