"""The correlator's state cut per subject: exact round trip, eviction, bounded values."""
import orjson
import pytest

from app.core.detect import corr_state
from app.core.detect.correlate import Correlator
from app.core.detect.dips import DetectionConfig
from tests.unit.core.detect.scripted import GAP, MIXED, SERVICES, dumps, script, step


class PartStore:
    """What the joiner's table holds: the global value and one value per subject."""

    def __init__(self):
        self.data: dict[str, bytes] = {}
        self.writes = 0

    def save(self, corr: Correlator) -> None:
        for lens, subject in sorted(corr.take_changed()):
            key, part = corr_state.subject_key(lens, subject), corr.subject_state(lens, subject)
            if part is None:
                self.data.pop(key, None)
            else:
                self.data[key] = dumps(part)
            self.writes += 1
        self.data[corr_state.GLOBAL_KEY] = dumps(corr.global_state())

    def load(self, cfg=None) -> Correlator:
        parts = {corr_state.parse_key(k): orjson.loads(v) for k, v in self.data.items()
                 if corr_state.parse_key(k)}
        return Correlator.from_parts(orjson.loads(self.data[corr_state.GLOBAL_KEY]), parts, cfg)


DEPARTING = [("sre", "search", range(60, 200), GAP), ("cx", "mobile", range(70, 200), GAP)]
CFG = DetectionConfig(traffic_windows=40)


def test_the_parts_join_to_the_live_state_after_every_window():
    windows, corr, store = script(120, MIXED + DEPARTING), Correlator(CFG), PartStore()
    for i, pair in enumerate(windows):
        step(corr, pair, i)
        store.save(corr)
        assert dumps(store.load(CFG).to_state()) == dumps(corr.to_state()), f"window {i}"


def test_idle_subjects_are_evicted_and_tombstoned():
    windows, corr, store = script(120, MIXED + DEPARTING), Correlator(CFG), PartStore()
    for i, pair in enumerate(windows):
        step(corr, pair, i)
        store.save(corr)
        if i == 80:
            assert corr_state.subject_key("sre", "search") in store.data  # idle 20 windows
    assert corr.subjects() == {("sre", "checkout"), ("cx", "web")}
    assert sorted(k for k in store.data if k != corr_state.GLOBAL_KEY) == [
        "corr|cx|web", "corr|sre|checkout"]


def test_only_changed_subjects_are_written():
    services = {f"svc-{n}": 2000 for n in range(20)}
    windows = script(40, [("sre", "svc-3", range(0, 40), GAP)], services=services)
    corr, store = Correlator(CFG), PartStore()
    for i, pair in enumerate(windows[:39]):
        step(corr, pair, i)
        store.save(corr)
    before = store.writes
    step(corr, windows[39], 39)
    store.save(corr)
    assert store.writes - before == 19 + 2  # the services with a window, the two cohorts


@pytest.mark.parametrize("stop", [15, 16, 17, 19, 41, 65, 90])
def test_restore_from_the_parts_gives_the_alerts_of_an_unbroken_run(stop):
    windows = script(110, MIXED + DEPARTING)
    reference, corr = [], Correlator(CFG)
    for i, pair in enumerate(windows):
        reference += step(corr, pair, i)
    first, store = Correlator(CFG), PartStore()
    alerts = []
    for i, pair in enumerate(windows[:stop]):
        alerts += step(first, pair, i)
        store.save(first)
    restored = store.load(CFG)
    assert restored.active_alerts() == first.active_alerts()
    for i, pair in enumerate(windows[stop:], stop):
        alerts += step(restored, pair, i)
    assert reference and dumps(alerts) == dumps(reference)


def test_each_subject_value_is_bounded_by_the_windows_kept():
    services = {**SERVICES, **{f"svc-{n}": 2500 for n in range(30)}}
    windows = script(300, MIXED, services=services)
    corr, store = Correlator(), PartStore()
    for i, pair in enumerate(windows):
        step(corr, pair, i)
        store.save(corr)
    cfg = corr.cfg
    sizes = {k: len(v) for k, v in store.data.items()}
    for key, size in sizes.items():
        if key == corr_state.GLOBAL_KEY:
            assert size < 1_000
            continue
        part = orjson.loads(store.data[key])
        assert len(part.get("records", {})) <= max(cfg.baseline_windows, cfg.link_windows) + 1
        assert len(part.get("detections", {})) <= 2 * cfg.correlation_lag_windows + 1
        assert len(part["traffic"]["values"]) <= cfg.traffic_windows
        assert all(len(s["values"]) <= cfg.baseline_windows for s in part["values"].values())
        assert size < 20_000, key  # ~10 KB: 240 traffic values, 30 per metric, 31 records
    assert sum(sizes.values()) > 32 * 8_000  # the whole was one value before


def test_no_state_is_a_fresh_correlator():
    assert dumps(Correlator.from_parts(None, {}).to_state()) == dumps(Correlator().to_state())
    assert corr_state.parse_key(corr_state.GLOBAL_KEY) is None
    assert corr_state.parse_key("corr|sre|a|b") == ("sre", "a|b")
