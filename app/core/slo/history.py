"""Bounded history of (requests, bad events) for one SLO: exact recently, hourly before.

Burn rates need sums over the last 5 m .. 3 d, the error budget over the whole period
(30 d). Keeping every 60 s window of 30 days is 43,200 entries per SLO, too much for a
table value written every minute. So:

- the **fine tier** keeps one entry per window for the last `exact_s` (default 6 h,
  rounded back to a bucket boundary, so 6 to 7 hours): every sum that fits in it is exact;
- older windows are folded into **buckets** of `bucket_s` (default 1 h), aligned on epoch
  multiples of `bucket_s`, kept for the period.

A sum that reaches past the fine tier takes the buckets it covers whole, and of the bucket
its far edge cuts through only the covered share, as if traffic were spread evenly over
that hour. The error is at most one bucket's counts at the far edge, out of a 3 d
(72 buckets) or 30 d (720) sum: docs/SLO.md has the measurement. State size with the
defaults: about 420 fine entries and 720 buckets per SLO (see tests/unit/core/slo/test_slo_history.py).
"""
from typing import Any

Number = int | float


def _floor(t: int, step: int) -> int:
    return t - t % step


def _rounded(x: Number) -> Number:
    # Latency bad events are fractional; three decimals keep the state short and the sums
    # far more precise than the digest they come from. Integers stay integers.
    return round(x, 3) if isinstance(x, float) else x


class BurnHistory:
    __slots__ = ("window_s", "bucket_s", "exact_s", "period_s", "fine_start",
                 "fine_requests", "fine_bad", "bucket_requests", "bucket_bad")

    def __init__(self, window_s: int, bucket_s: int, exact_s: int, period_s: int) -> None:
        if window_s <= 0 or bucket_s % window_s:
            raise ValueError(f"history bucket of {bucket_s} s is not a whole number of "
                             f"{window_s} s windows")
        self.window_s, self.bucket_s, self.exact_s, self.period_s = \
            window_s, bucket_s, exact_s, period_s
        self.fine_start: int | None = None  # bucket-aligned start of fine_requests[0]
        self.fine_requests: list[Number] = []
        self.fine_bad: list[Number] = []
        self.bucket_requests: list[Number] = []  # buckets end where the fine tier starts
        self.bucket_bad: list[Number] = []

    @property
    def end(self) -> int | None:
        """End (exclusive) of the last window pushed."""
        return None if self.fine_start is None else self._fine_end(self.fine_start)

    def _fine_end(self, fine_start: int) -> int:
        return fine_start + len(self.fine_requests) * self.window_s

    def push(self, window_start: int, requests: Number, bad: Number) -> None:
        """Append one window; windows in between (gaps) count as zero."""
        start = self.fine_start
        if start is None:
            start = self.fine_start = _floor(window_start, self.bucket_s)
        if window_start < (end := self._fine_end(start)):
            raise ValueError(f"window {window_start} is not after the history's end {end}")
        keep_from = _floor(window_start + self.window_s - self.exact_s, self.bucket_s)
        if keep_from > start:
            self._fold(start, keep_from)
            start = keep_from
        pad = (window_start - self._fine_end(start)) // self.window_s
        self.fine_requests += [0] * pad + [requests]
        self.fine_bad += [0] * pad + [_rounded(bad)]
        self._forget(start, window_start + self.window_s)

    def _fold(self, fine_start: int, keep_from: int) -> None:
        """Fold the fine windows before `keep_from` (whole buckets) into buckets."""
        count = (keep_from - fine_start) // self.bucket_s
        per = self.bucket_s // self.window_s
        if count * self.bucket_s > self.period_s + self.bucket_s:
            # A gap longer than the period: nothing before it is still needed.
            self.bucket_requests, self.bucket_bad = [], []
        else:
            for i in range(count):
                part = slice(i * per, (i + 1) * per)
                self.bucket_requests.append(_rounded(sum(self.fine_requests[part])))
                self.bucket_bad.append(_rounded(sum(self.fine_bad[part])))
        del self.fine_requests[:count * per]
        del self.fine_bad[:count * per]
        self.fine_start = keep_from

    def _forget(self, fine_start: int, end: int) -> None:
        """Drop buckets that lie wholly before the period ending at `end`."""
        first = fine_start - len(self.bucket_requests) * self.bucket_s
        drop = max(0, (end - self.period_s - first) // self.bucket_s)
        if drop:
            del self.bucket_requests[:drop]
            del self.bucket_bad[:drop]

    def total(self, span_s: int, end_s: int) -> tuple[Number, Number]:
        """(requests, bad) over [end_s - span_s, end_s). Windows not pushed count as zero,
        so a span longer than the history sums what there is."""
        if self.fine_start is None:
            return 0, 0
        lo, w = end_s - span_s, self.window_s
        first = max(0, -(-(lo - self.fine_start) // w))  # first window starting at or after lo
        last = max(0, (end_s - self.fine_start) // w)  # first window starting at or after end_s
        requests = sum(self.fine_requests[first:last])
        bad = sum(self.fine_bad[first:last])
        n, size = len(self.bucket_requests), self.bucket_s
        for i in range(n - 1, -1, -1):
            start = self.fine_start - (n - i) * size
            if start + size <= lo:
                break
            share = (min(start + size, end_s) - max(start, lo)) / size
            if share <= 0:
                continue
            if share < 1:  # the far (or near) edge cuts this bucket: assume even traffic
                requests += self.bucket_requests[i] * share
                bad += self.bucket_bad[i] * share
            else:
                requests += self.bucket_requests[i]
                bad += self.bucket_bad[i]
        return requests, bad

    def to_state(self) -> dict[str, Any]:
        return {"fine_start": self.fine_start, "fine_requests": list(self.fine_requests),
                "fine_bad": list(self.fine_bad), "bucket_requests": list(self.bucket_requests),
                "bucket_bad": list(self.bucket_bad)}

    @classmethod
    def from_state(cls, state: dict[str, Any], window_s: int, bucket_s: int, exact_s: int,
                   period_s: int) -> "BurnHistory":
        h = cls(window_s, bucket_s, exact_s, period_s)
        h.fine_start = state["fine_start"]
        h.fine_requests, h.fine_bad = list(state["fine_requests"]), list(state["fine_bad"])
        h.bucket_requests, h.bucket_bad = list(state["bucket_requests"]), list(state["bucket_bad"])
        if len(h.fine_requests) != len(h.fine_bad) or len(h.bucket_requests) != len(h.bucket_bad):
            raise ValueError("malformed SLO history: lists of different lengths")
        return h
