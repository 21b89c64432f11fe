"""Pure: the rows and ratios of the bench, its issue-6 targets, and the printed table."""
from __future__ import annotations

from app.bench.stats import ratio_summary, summarize

ROWS = {
    "1": "lensbridge, 1 event/message (both lenses + joiner)",
    "2a": "lensbridge, JSON arrays of 100 events",
    "2n": "lensbridge, NDJSON, 100 lines/message",
    "3": "textbook Faust: windowed table + tdigest per event",
    "4": "Faust ceiling: iterate stream + orjson",
    "5": "aiokafka getmany+orjson+fastdigest, 1 event/msg",
    "5a": "aiokafka getmany+orjson+fastdigest, JSON arrays",
    "5n": "aiokafka getmany+orjson+fastdigest, NDJSON",
    "6": "Quix Streams: tumbling window reduce + t-digest",
    "6a": "Quix Streams, JSON arrays: expand + group_by + same",
}

# (name, numerator row, denominator row, what it answers)
RATIOS = [
    ("1/3", "1", "3", "lensbridge single vs textbook Faust"),
    ("1/4", "1", "4", "lensbridge single vs Faust's own ceiling"),
    ("2a/5a", "2a", "5a", "lensbridge arrays vs physical ceiling (arrays)"),
    ("2n/5n", "2n", "5n", "lensbridge NDJSON vs physical ceiling (NDJSON)"),
    ("2a/5", "2a", "5", "lensbridge arrays vs physical ceiling (1 event/msg)"),
    ("1/6", "1", "6", "lensbridge single vs Quix Streams"),
    ("2a/6a", "2a", "6a", "lensbridge arrays vs Quix Streams arrays"),
]


def row_summary(runs: list[dict]) -> dict:
    """Median/min/max over the runs of one row."""
    return {
        "events_per_s": summarize(r["events_per_s"] for r in runs),
        "cpu_s_per_m_events": summarize(r["cpu_s_per_m_events"] for r in runs),
        "peak_rss_bytes": summarize(r["peak_rss_bytes"] for r in runs),
        "changelog_bytes_per_event": summarize(
            r["changelog_bytes"] / r["events_total"] if r.get("changelog_bytes") is not None
            and r.get("events_total") else None for r in runs),
    }


def ratios(rows: dict[str, dict]) -> dict[str, dict | None]:
    """Each ratio from the runs of the same round (run i of one row / run i of the other)."""
    out = {}
    for name, num, den, _ in RATIOS:
        if num in rows and den in rows:
            out[name] = ratio_summary([r["events_per_s"] for r in rows[num]["runs"]],
                                      [r["events_per_s"] for r in rows[den]["runs"]])
    return out


def _median(d: dict | None, *path: str):
    for key in path:
        if d is None:
            return None
        d = d.get(key)
    return d


def evaluate_targets(results: dict) -> list[dict]:
    """Where each issue-6 target lands: value, goal and met (None when not measured)."""
    rows, rat = results.get("rows", {}), results.get("ratios", {})
    out = []

    def add(name: str, value, goal: str, met):
        out.append({"target": name, "value": value, "goal": goal, "met": met})

    r14, r13, r16 = (_median(rat, k, "median") for k in ("1/4", "1/3", "1/6"))
    add("single-event >= 80% of Faust's ceiling (row 1 / row 4)", r14, ">= 0.80", None if r14 is None else r14 >= 0.8)
    add("single-event >= 5x textbook Faust (row 1 / row 3)", r13, ">= 5", None if r13 is None else r13 >= 5)
    for key, ceiling in (("2a", "2a/5a"), ("2n", "2n/5n")):
        eps = _median(rows.get(key), "summary", "events_per_s", "median")
        add(f"batched ({key}) >= 200k events/s", eps, ">= 200000", None if eps is None else eps >= 200_000)
        r = _median(rat, ceiling, "median")
        add(f"batched ({key}) >= 40% of the physical ceiling ({ceiling})", r, ">= 0.40",
            None if r is None else r >= 0.4)
    add("ahead of Quix Streams, 1 event/message (row 1 / row 6)", r16, "> 1", None if r16 is None else r16 > 1)
    r26 = _median(rat, "2a/6a", "median")
    add("ahead of Quix Streams, JSON arrays (row 2a / row 6a)", r26, "> 1", None if r26 is None else r26 > 1)
    p99 = _median(results.get("latency"), "summary", "all_messages", "p99")
    add("alert latency p99 after the window closes", p99, "< 2 s", None if p99 is None else p99 < 2.0)
    mem = results.get("memory", {}).get("per_slot", [])
    sre10k = [m for m in mem if m["lens"] == "sre" and m["subjects"] >= 10_000 and m["mode"] == "rss"]
    if sre10k:
        value = sre10k[0]["bytes_per_slot_after_checkpoint"]
        add("memory per open window-subject (SRE, 10k services, after checkpoint)", value, "<= 4096 B",
            value <= 4096)
    cl1 = _median(rows.get("1"), "summary", "changelog_bytes_per_event", "median")
    cl3 = _median(rows.get("3"), "summary", "changelog_bytes_per_event", "median")
    factor = cl3 / cl1 if cl1 and cl3 else None
    add("changelog bytes per event, textbook / lensbridge (row 3 / row 1)", factor, ">= 100",
        None if factor is None else factor >= 100)
    return out


# ---- text --------------------------------------------------------------------------------
def _num(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def _spread(s: dict | None, digits: int = 0, scale: float = 1.0) -> str:
    if not s:
        return "-"
    return (f"{_num(s['median'] / scale, digits)} [{_num(s['min'] / scale, digits)}"
            f"..{_num(s['max'] / scale, digits)}]")


def format_rows(rows: dict[str, dict]) -> list[str]:
    head = (f"{'row':<4} {'what':<52} {'events':>9}  {'events/s median [min..max]':<30} "
            f"{'CPU s / M events':<24} {'peak RSS MB':<18} {'changelog B/event':>17}")
    lines = [head, "-" * len(head)]
    for key, label in ROWS.items():
        row = rows.get(key)
        if row is None:
            continue
        if row.get("error"):
            lines.append(f"{key:<4} {label:<52} not measured: {row['error']}")
            continue
        s = row["summary"]
        cl = s.get("changelog_bytes_per_event")
        lines.append(f"{key:<4} {label:<52} {_num(row['events']):>9}  {_spread(s['events_per_s']):<30} "
                     f"{_spread(s['cpu_s_per_m_events'], 1):<24} {_spread(s['peak_rss_bytes'], 0, 1 << 20):<18} "
                     f"{(_num(cl['median'], 1) if cl else '-'):>17}")
    return lines


def format_ratios(rat: dict[str, dict | None]) -> list[str]:
    lines = ["ratios of events/s, paired per run (median [min..max]):"]
    for name, _, _, what in RATIOS:
        s = rat.get(name)
        if s is not None:
            lines.append(f"  {name:<6} {what:<52} {_spread(s, 2)}")
    return lines


def format_targets(targets: list[dict]) -> list[str]:
    lines = ["issue-6 targets:"]
    for t in targets:
        v = t["value"]
        value = "-" if v is None else (f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}")
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        lines.append(f"  {t['target']:<72} {value:>12}  goal {t['goal']:<10} {verdict}")
    return lines


def format_latency(lat: dict | None) -> list[str]:
    if not lat:
        return []
    if lat.get("error"):
        return [f"alert latency: not measured: {lat['error']}"]
    s = lat["summary"]
    lines = [f"alert latency (demo scenario live at {lat['speed']}x, {lat['alert_messages']} alert messages, "
             f"{lat['expected_found']}/{lat['expected_verdicts']} expected verdicts found):"]
    for key, what in (("all_messages", "after the deciding window closed, every alert message"),
                      ("first_firing", "after the deciding window closed, first firing per incident"),
                      ("joiner_only", "after the last watermark record (joiner + correlator + produce)"),
                      ("from_incident_window_close", "after the incident window closed (incl. 1-window lag)")):
        p = s[key]
        lines.append(f"  {what:<70} n={p['n']:<3} p50 {_num(p['p50'], 2)} s  p99 {_num(p['p99'], 2)} s  "
                     f"max {_num(p['max'], 2)} s")
    if s["after_input_end"]:
        lines.append(f"  ({len(s['after_input_end'])} alert(s) about windows closed by the end-of-input idle rule "
                     f"not counted)")
    return lines


def format_memory(mem: dict | None) -> list[str]:
    if not mem:
        return []
    lines = ["memory per open window-subject (pure core, 2 open windows; B = bytes):"]
    for m in mem.get("per_slot", []):
        lines.append(f"  {m['lens']:<4} {m['subjects']:>6} subjects x {m['windows']} windows, "
                     f"{m['events_per_slot']:>5} {'events' if m['lens'] == 'sre' else 'sessions'}/slot, "
                     f"{m['mode']:<6}: {_num(m['bytes_per_slot_after_fold'])} B after fold, "
                     f"{_num(m['bytes_per_slot_after_checkpoint'])} B after checkpoint "
                     f"(checkpoint value {_num(m['checkpoint_bytes_per_slot'])} B, "
                     f"{_num(m['digest_centroids_mean'])} centroids)")
    acc = mem.get("accuracy", [])
    if acc:
        lines.append("  t-digest accuracy on 100k lognormal latencies (relative error; merged = 4 partitions):")
        for a in acc:
            merged = (f"  merged p99 {a['merged_err_p99']:.2%} p99.9 {a['merged_err_p999']:.2%}"
                      if "merged_err_p99" in a else "")
            lines.append(f"    {a['digest']:<44} c={str(a['compression']):<5} {a['centroids']:>4} centroids "
                         f"{a['wire_bytes']:>6} B json: p50 {a['single_err_p50']:.2%} p99 {a['single_err_p99']:.2%} "
                         f"p99.9 {a['single_err_p999']:.2%}{merged}")
    return lines


def format_report(results: dict) -> str:
    m = results.get("machine", {})
    lines = [f"lensbridge bench {results.get('started_at', '')}: {m.get('cpu_model', '?')}, {m.get('nproc', '?')} CPUs, "
             f"load {m.get('load_start', '?')} -> {m.get('load_end', '?')}; {results.get('config', {}).get('runs')} "
             f"runs per row, in rounds", ""]
    lines += format_rows(results.get("rows", {}))
    lines += [""] + format_ratios(results.get("ratios", {}))
    for part in (format_latency(results.get("latency")), format_memory(results.get("memory"))):
        if part:
            lines += [""] + part
    lines += [""] + format_targets(results.get("targets", []))
    return "\n".join(lines)
