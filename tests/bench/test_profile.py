"""Summaries of py-spy collapsed stacks."""
import pytest

from app.bench.profile import area, format_profile, frame_name, parse_collapsed, summarize_profile

RAW = """\
main (app/cli.py:46);run (asyncio/base_events.py:640);on_event (agents/lens.py:110);decode_requests (app/core/ingest/decode.py:80) 6
main (app/cli.py:46);run (asyncio/base_events.py:640);on_event (agents/lens.py:112);fold (app/core/windows/partition.py:95) 3
main (app/cli.py:46);run (asyncio/base_events.py:641);_drain_messages (faust/transport/consumer.py:900) 1
garbage line without count
"""


def test_parse_collapsed_reads_stacks_and_counts():
    stacks = parse_collapsed(RAW)
    assert len(stacks) == 3
    assert stacks[0][1] == 6 and stacks[0][0][-1] == "decode_requests (app/core/ingest/decode.py:80)"


def test_frame_names_merge_lines_and_shorten_paths():
    assert frame_name("f (app/core/ingest/decode.py:80)") == "f (app/core/ingest/decode.py)"
    assert frame_name("g (/work/main/.venv/lib/python3.11/site-packages/faust/streams.py:12)") \
        == "g (faust/streams.py)"
    assert frame_name("<module> (<frozen runpy>)") == "<module> (<frozen runpy>)"


def test_areas_by_package():
    assert area("f (app/core/ingest/decode.py:1)") == "lensbridge core"
    assert area("f (agents/lens.py:1)") == "lensbridge agents"
    assert area("f (app/faust/outbox.py:1)") == "lensbridge app"
    assert area("f (faust/streams.py:1)") == "faust"
    assert area("f (selectors.py:1)") == "python stdlib"


def test_summary_shares_self_and_inclusive_time():
    s = summarize_profile(RAW)
    assert s["samples"] == 10
    assert s["self"][0] == ("decode_requests (app/core/ingest/decode.py)", 0.6)
    inclusive = dict(s["inclusive"])
    assert inclusive["on_event (agents/lens.py)"] == pytest.approx(0.9)  # two lines, one function
    assert "main (app/cli.py)" not in inclusive  # every stack has it: it says nothing
    assert inclusive["run (asyncio/base_events.py)"] == 1.0
    assert dict(s["areas"]) == {"lensbridge core": 0.9, "faust": 0.1}
    text = format_profile("row 1", s)
    assert "10 samples" in text and "lensbridge core 90%" in text


def test_empty_profile():
    assert summarize_profile("")["samples"] == 0
