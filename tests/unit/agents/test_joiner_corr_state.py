"""The joiner's correlator keys: per subject, crash-safe, the legacy single value migrated."""
from __future__ import annotations

import orjson
import pytest

from app.core.detect import corr_state
from app.core.detect.correlate import Correlator
from app.core.joiner_table import LEGACY_CORRELATOR
from tests.unit.agents.builders import joiner_runner
from tests.unit.core.detect.scripted import GAP, MIXED, dumps, script, step

DEPARTING = [("sre", "search", range(45, 400), GAP)]


def _apply(data: dict, writes: dict) -> None:
    for key, value in writes.items():
        if value is None:
            data.pop(key.encode(), None)
        else:
            data[key.encode()] = value


def _restored(data: dict):
    joiner = joiner_runner(data=data)
    joiner.merger = joiner._restore()
    return joiner


def _reference(windows, cfg):
    corr, alerts = Correlator(cfg), []
    for i, pair in enumerate(windows):
        alerts += step(corr, pair, i)
    return alerts


@pytest.mark.parametrize("stop", [16, 17, 19, 30, 50])
@pytest.mark.parametrize("cut", [None, 1, 3])
def test_a_restart_even_mid_write_gives_the_alerts_of_an_unbroken_run(stop, cut):
    """`cut`: the crash lets only the first `cut` records of the last write land."""
    windows = script(300, MIXED + DEPARTING)
    data: dict = {}
    joiner = _restored(data)
    reference = _reference(windows, joiner.correlator.cfg)
    alerts = []
    for i, pair in enumerate(windows[:stop]):
        produced = step(joiner.correlator, pair, i)
        writes = joiner.corr_table.writes(joiner.correlator)
        if cut is not None and i == stop - 1:
            _apply(data, dict(list(writes.items())[:cut]))  # torn: window stop-1 is redone
            break
        alerts += produced
        _apply(data, writes)
    redo = stop - 1 if cut is not None else stop
    joiner = _restored(data)
    for i, pair in enumerate(windows[redo:], redo):
        alerts += step(joiner.correlator, pair, i)
        _apply(data, joiner.corr_table.writes(joiner.correlator))
    assert reference and dumps(alerts) == dumps(reference)
    keys = sorted(k.decode() for k in data)
    assert keys == ["corr|_global", "corr|cx|mobile", "corr|cx|web", "corr|sre|checkout"]


def test_the_table_holds_one_small_value_per_subject():
    windows = script(100, MIXED)
    data: dict = {}
    joiner = _restored(data)
    for i, pair in enumerate(windows):
        step(joiner.correlator, pair, i)
        _apply(data, joiner.corr_table.writes(joiner.correlator))
    full = len(dumps(joiner.correlator.to_state()))
    sizes = {k.decode(): len(v) for k, v in data.items()}
    assert len(sizes) == 5 and sizes["corr|_global"] < 500
    assert max(sizes.values()) < full  # each value a part of the whole, with its previous part


def test_the_legacy_single_value_is_read_and_replaced():
    windows = script(40, MIXED)
    corr = Correlator()  # the defaults are the settings' defaults
    for i, pair in enumerate(windows[:30]):
        step(corr, pair, i)
    data = {LEGACY_CORRELATOR.encode(): dumps(corr.to_state())}
    joiner = _restored(data)
    assert dumps(joiner.correlator.to_state()) == dumps(corr.to_state())
    _apply(data, joiner.corr_table.writes(joiner.correlator))
    assert LEGACY_CORRELATOR.encode() not in data
    again = _restored(data)
    assert dumps(again.correlator.to_state()) == dumps(corr.to_state())


def test_unusable_state_is_replaced_and_its_keys_evicted():
    data = {corr_state.GLOBAL_KEY.encode(): orjson.dumps(corr_state.global_envelope(3, {
                "version": 99})),
            b"corr|sre|gone": corr_state.envelope(3, b'{"episode":{"start":0,"healthy":0}}', None)}
    joiner = _restored(data)
    assert joiner.correlator.subjects() == set()
    _apply(data, joiner.corr_table.writes(joiner.correlator))
    assert orjson.loads(data[b"corr|sre|gone"])["cur"] is None  # evicted...
    _apply(data, joiner.corr_table.writes(joiner.correlator))
    assert b"corr|sre|gone" not in data  # ...and tombstoned once that write completed
