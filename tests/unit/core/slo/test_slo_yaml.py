"""SLO files: the example loads, Sloth / OpenSLO habits work, and every bad line is named
with its line number and the reason."""
import textwrap

import pytest

from app.core.slo.engine import SloConfig, SloEngine
from app.core.slo.loader import load_slos
from app.core.slo.spec import LATENCY, PAGE, TICKET, WORKBOOK_WINDOWS, Slo, SloConfigError
from tests.paths import ROOT

EXAMPLE = ROOT / "slo.example.yaml"


def load(text, window_s=60):
    return load_slos(textwrap.dedent(text), "slo.yaml", window_s)


def errors_of(text, window_s=60):
    with pytest.raises(SloConfigError) as info:
        load(text, window_s)
    assert str(info.value) == "\n".join(info.value.errors)
    return info.value.errors


def test_the_example_file_loads_and_feeds_an_engine():
    slos = load_slos(EXAMPLE.read_text(), EXAMPLE.name)
    by_name = {(s.service, s.name): s for s in slos}
    avail = by_name["checkout", "requests-availability"]
    assert (avail.objective_percent, avail.sli, avail.period_s) == (99.9, "errors", 30 * 86400)
    assert avail.windows == WORKBOOK_WINDOWS and dict(avail.labels) == {"team": "payments"}
    latency = by_name["checkout", "latency-300ms"]
    assert (latency.sli, latency.threshold_ms, latency.min_requests) == (LATENCY, 300.0, 2000)
    assert {w.action for w in latency.windows} == {PAGE}  # ticket_alert: {disable: true}
    search = by_name["search", "requests-availability"]
    assert search.objective_percent == 99.5 and search.period_s == 28 * 86400  # target: 0.995
    assert search.where == "slo.example.yaml:30"  # the line of its "- name:"
    SloEngine(slos, SloConfig())


def test_custom_windows_and_guard_switch():
    (slo,) = load("""
        service: api
        slos:
          - name: avail
            objective: 99
            sli: {type: errors}
            alerting:
              windows:
                - {action: page, long: 2h, short: 10m, burn_rate: 10}
                - {action: ticket, long: 1d, short: 2h, burn_rate: 2, guard: true}
        """)
    assert [(w.action, w.long_s, w.short_s, w.factor, w.guarded) for w in slo.windows] == [
        (PAGE, 7200, 600, 10.0, True), (TICKET, 86400, 7200, 2.0, True)]


BAD_FILES = [
    ("objective out of range", """
        service: checkout
        slos:
          - name: availability
            objective: 120
            sli: {type: errors}
        """, 5, "objective must be between 0 and 100 (got 120)"),
    ("service missing", """
        slos:
          - name: availability
            objective: 99.9
            sli: {type: errors}
        """, 2, "service is required"),
    ("typo in a field", """
        service: checkout
        slos:
          - name: availability
            objectve: 99.9
            sli: {type: errors}
        """, 5, "unknown field 'objectve' in an SLO"),
    ("bad duration", """
        service: checkout
        period: 30x
        slos:
          - {name: availability, objective: 99.9, sli: {type: errors}}
        """, 3, "period is not a duration like 30d, 6h, 5m or 1h30m (got '30x')"),
    ("window not a multiple of window_s", """
        service: checkout
        slos:
          - name: availability
            objective: 99.9
            sli: {type: errors}
            alerting:
              windows:
                - action: page
                  long: 1h
                  short: 90s
                  burn_rate: 14.4
        """, 11, "window 1m30s is not a whole number of 60 s windows"),
    ("latency without threshold", """
        service: checkout
        slos:
          - name: latency
            objective: 99
            sli:
              type: latency
        """, 7, "threshold_ms is required for type latency"),
    ("unreachable burn rate", """
        service: checkout
        slos:
          - name: availability
            objective: 90
            sli: {type: errors}
        """, 5, "burn_rate 14.4 can never trip with objective 90 (it needs an error ratio "
                "of 144%)"),
    ("Sloth query SLI", """
        service: checkout
        slos:
          - name: availability
            objective: 99.9
            sli:
              events:
                error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))
        """, 7, "sli.events is Sloth's Prometheus query form"),
    ("duplicate SLO", """
        service: checkout
        slos:
          - {name: availability, objective: 99.9, sli: {type: errors}}
          - {name: availability, objective: 99.5, sli: {type: errors}}
        """, 5, "duplicate SLO 'availability' for service 'checkout'"),
    ("period shorter than a burn window", """
        service: checkout
        slos:
          - {name: availability, objective: 99.9, period: 1d, sli: {type: errors}}
        """, 4, "period 1d is shorter than the longest burn window 3d"),
    ("YAML syntax", """
        service: checkout
        slos:
          - {name: availability, objective: 99.9
        """, 5, "not valid YAML"),
    ("objective not a number", """
        service: checkout
        slos:
          - {name: availability, objective: high, sli: {type: errors}}
        """, 4, "objective must be a number (got 'high')"),
]


@pytest.mark.parametrize("text, line, reason", [c[1:] for c in BAD_FILES],
                         ids=[c[0] for c in BAD_FILES])
def test_a_bad_file_names_the_line_and_the_reason(text, line, reason):
    errors = errors_of(text)
    assert any(e.startswith(f"slo.yaml:{line}: ") and reason in e for e in errors), errors


def test_every_problem_is_listed_in_line_order():
    errors = errors_of("""
        service: checkout
        slos:
          - name: availability
            objective: 120
            sli: {type: errors}
          - name: bad name!
            target: 2
            sli: {type: speed}
        """)
    assert [e.split(":")[1] for e in errors] == ["5", "7", "8", "9"]


def test_window_length_that_does_not_divide_the_default_pairs():
    errors = errors_of("""
        service: checkout
        slos:
          - {name: availability, objective: 99.9, sli: {type: errors}}
        """, window_s=90)
    assert errors == ["slo.yaml:4: default burn window 5m is not a whole number of 90 s windows "
                      "(LENSBRIDGE_WINDOW_SECONDS); set alerting.windows"]


def test_an_empty_file_defines_nothing_and_is_refused():
    assert errors_of("# nothing yet\n") == ["slo.yaml:1: defines no SLOs"]


def test_slos_built_in_code_get_the_same_checks_from_the_engine():
    with pytest.raises(SloConfigError, match="5m is not a whole number of 7 s windows"):
        SloEngine([Slo("checkout", "availability", 99.9)], SloConfig(window_s=7))
    with pytest.raises(SloConfigError, match="objective must be between 0 and 100"):
        SloEngine([Slo("checkout", "availability", 100.0)])
    with pytest.raises(SloConfigError, match="duplicate SLO"):
        SloEngine([Slo("checkout", "a", 99.9), Slo("checkout", "a", 99.0)])
