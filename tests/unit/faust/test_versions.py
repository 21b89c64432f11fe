"""The Faust boundary refuses releases it was not written against, and names the fix."""
import re
import tomllib
from importlib import metadata

import pytest

from app.faust import PINNED, FaustVersionError, check_versions
from tests.paths import ROOT


def test_the_pins_are_pyprojects():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = dict(re.fullmatch(r"([\w.-]+)==([\w.]+)", d).groups() for d in deps if "==" in d)
    assert {p: pinned[p] for p in PINNED} == PINNED


def test_the_installed_releases_pass():
    check_versions()  # what `make install` put in the venv


def test_another_release_is_refused_with_the_fix():
    with pytest.raises(FaustVersionError) as info:
        check_versions(lambda package: "0.16.0" if package == "faust-streaming" else PINNED[package])
    text = str(info.value)
    assert "faust-streaming==0.15.3" in text and "found 0.16.0" in text and "make install" in text


def test_a_missing_package_is_refused():
    def missing(package):
        raise metadata.PackageNotFoundError(package)

    with pytest.raises(FaustVersionError, match="found not installed"):
        check_versions(missing)
