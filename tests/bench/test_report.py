"""The bench's table, ratios and target verdicts, from hand-made results."""
from app.bench.report import evaluate_targets, format_report, format_rows, ratios, row_summary


def _run(eps: float, cpu: float = 100.0, rss: int = 80 << 20, changelog: int | None = None,
         events: int = 100_000) -> dict:
    return {"events_per_s": eps, "cpu_s_per_m_events": cpu, "peak_rss_bytes": rss,
            "changelog_bytes": changelog, "events_total": events}


def _rows() -> dict:
    runs = {
        "1": [_run(8000, changelog=4_000_000), _run(6000, changelog=4_000_000), _run(7000, changelog=4_000_000)],
        "2a": [_run(250_000), _run(150_000), _run(210_000)],
        "2n": [_run(90_000), _run(80_000), _run(85_000)],
        "3": [_run(1000, changelog=250_000_000, events=10_000), _run(1000, changelog=250_000_000, events=10_000),
              _run(1000, changelog=250_000_000, events=10_000)],
        "4": [_run(10_000), _run(7_000), _run(9_000)],
        "5": [_run(300_000), _run(300_000), _run(300_000)],
        "5a": [_run(500_000), _run(500_000), _run(500_000)],
        "5n": [_run(400_000), _run(400_000), _run(400_000)],
        "6": [_run(14_000), _run(14_000), _run(14_000)],
        "6a": [_run(14_000), _run(14_000), _run(14_000)],
    }
    return {k: {"events": 100_000, "runs": v, "summary": row_summary(v)} for k, v in runs.items()}


def test_row_summary_takes_median_min_max_and_changelog_per_event():
    s = row_summary([_run(8000, changelog=4_000_000), _run(6000, changelog=2_000_000), _run(7000)])
    assert s["events_per_s"] == {"median": 7000, "min": 6000, "max": 8000, "n": 3}
    assert s["changelog_bytes_per_event"] == {"median": 30.0, "min": 20.0, "max": 40.0, "n": 2}


def test_ratios_are_medians_of_per_round_ratios():
    r = ratios(_rows())
    assert r["1/4"] == {"median": 0.8, "min": 0.7777777777777778, "max": 6000 / 7000, "n": 3}
    assert r["1/3"]["median"] == 7.0
    assert r["2a/5a"]["median"] == 0.42


def test_targets_name_what_was_met_and_missed():
    rows = _rows()
    results = {"rows": rows, "ratios": ratios(rows),
               "latency": {"summary": {"all_messages": {"p99": 2.5}}},
               "memory": {"per_slot": [{"lens": "sre", "subjects": 10_000, "mode": "rss",
                                        "bytes_per_slot_after_checkpoint": 3000.0}]}}
    verdicts = {t["target"]: t["met"] for t in evaluate_targets(results)}
    assert verdicts["single-event >= 80% of Faust's ceiling (row 1 / row 4)"] is True
    assert verdicts["single-event >= 5x textbook Faust (row 1 / row 3)"] is True
    assert verdicts["batched (2a) >= 200k events/s"] is True
    assert verdicts["batched (2n) >= 200k events/s"] is False
    assert verdicts["batched (2a) >= 40% of the physical ceiling (2a/5a)"] is True
    assert verdicts["ahead of Quix Streams, 1 event/message (row 1 / row 6)"] is False
    assert verdicts["alert latency p99 after the window closes"] is False
    assert verdicts["memory per open window-subject (SRE, 10k services, after checkpoint)"] is True
    # 25 000 B/event for the textbook vs 40 B/event: 625x fewer
    assert verdicts["changelog bytes per event, textbook / lensbridge (row 3 / row 1)"] is True


def test_targets_not_measured_when_rows_are_missing():
    verdicts = evaluate_targets({"rows": {}, "ratios": {}})
    assert all(t["met"] is None for t in verdicts)


def test_table_lists_rows_in_order_with_spread_and_failed_rows():
    rows = _rows()
    rows["6"] = {"events": 0, "runs": [], "error": "quixstreams is not installed"}
    lines = format_rows(rows)
    assert lines[0].startswith("row")
    body = [line.split()[0] for line in lines[2:]]
    assert body == ["1", "2a", "2n", "3", "4", "5", "5a", "5n", "6", "6a"]
    row1 = next(line for line in lines if line.startswith("1 "))
    assert "7,000 [6,000..8,000]" in row1 and "40.0" in row1
    assert "not measured: quixstreams is not installed" in next(line for line in lines if line.startswith("6 "))


def test_full_report_renders_without_optional_sections():
    rows = _rows()
    text = format_report({"rows": rows, "ratios": ratios(rows), "targets": evaluate_targets({"rows": rows}),
                          "machine": {"cpu_model": "Test CPU", "nproc": 2}, "config": {"runs": 3}})
    assert "Test CPU, 2 CPUs" in text
    assert "1/3" in text and "issue-6 targets:" in text
