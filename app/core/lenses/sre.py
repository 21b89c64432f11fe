"""SRE lens maths: per (window, service, partition) accumulator, its partial, the exact merge.

Map-side combine: each input partition folds its own requests and emits
one partial per (window, service, partition) when the window closes; the joiner merges
partials. Counts and slice counts add exactly; t-digests merge (approximate quantiles,
exact `n`). Availability is computed only after slices are summed across partitions:
a slice's up/down verdict depends on all its traffic, not on one partition's share.
"""
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastdigest import TDigest

from app.core.ingest.events import RequestEvent
from app.core.lenses.digest import (
    DEFAULT_COMPRESSION,
    StoredDigest,
    digest_from_any,
    digest_to_wire,
    new_digest,
)
from app.core.lenses.digest import quantiles as digest_quantiles

LENS = "sre"
SCHEMA_VERSION = 2  # of the partial (schemas/sre-partial.schema.json): 2 = binary digest
STATE_VERSION = 2  # of the durable table value (`to_state`): 2 = binary digest, 1 = wire dict
_READABLE_STATE_VERSIONS = (1, 2)
DEFAULT_SLICE_S = 10
DEFAULT_SLICE_ERROR_RATIO = 0.05
DEFAULT_QUANTILES = (0.5, 0.95, 0.99)

ErrorRule = Callable[[int], bool] | frozenset[int]


def is_server_error(status: int) -> bool:
    """The default error rule: 5xx."""
    return status >= 500


def parse_error_statuses(spec: str) -> frozenset[int]:
    """Parse "500-599,429" (statuses and inclusive ranges, comma separated) into a set."""
    hint = "give statuses and inclusive ranges like '500-599,429'"
    if not spec or not spec.strip():
        raise ValueError(f"error status spec is empty: {hint}")
    statuses: set[int] = set()
    for raw_item in spec.split(","):
        item = raw_item.strip()
        low_text, dash, high_text = item.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if dash else low
        except ValueError:
            raise ValueError(
                f"error status spec {spec!r}: {item!r} is not a status or a range; {hint}"
            ) from None
        if not 100 <= low <= high <= 999:
            raise ValueError(
                f"error status spec {spec!r}: {item!r} must lie within 100-999, low <= high"
            )
        statuses.update(range(low, high + 1))
    return frozenset(statuses)


def _error_test(rule: ErrorRule) -> Callable[[int], bool]:
    if isinstance(rule, (frozenset, set)):
        return rule.__contains__
    if callable(rule):
        return rule
    raise TypeError(f"is_error must be a predicate or a set of statuses, got {rule!r}")


class SreAccumulator:
    """Requests, errors, latency digest and per-slice counts of one (window, service, partition).

    An accumulator restored with `from_state` re-emits a byte-identical partial (the digest
    is stored in its exact binary form, see `StoredDigest`).
    """

    __slots__ = ("window_start_s", "availability_slice_s", "requests", "errors",
                 "slices", "_digest")

    def __init__(
        self,
        window_start_s: int,
        availability_slice_s: int = DEFAULT_SLICE_S,
        compression: int = DEFAULT_COMPRESSION,
    ) -> None:
        if availability_slice_s < 1:
            raise ValueError(f"availability_slice_s must be >= 1, got {availability_slice_s}")
        self.window_start_s = window_start_s
        self.availability_slice_s = availability_slice_s
        self.requests = 0
        self.errors = 0
        self.slices: dict[int, list[int]] = {}  # slice_start_s -> [requests, errors]
        self._digest = StoredDigest(compression)

    def fold(self, events: Sequence[RequestEvent], is_error: ErrorRule = is_server_error) -> None:
        """Fold one batch. All or nothing: on ValueError (an event before the window start,
        a non-finite latency) the accumulator is unchanged."""
        if not events:
            return
        test = _error_test(is_error)
        start, slice_s = self.window_start_s, self.availability_slice_s
        batch_slices: dict[int, list[int]] = {}
        latencies: list[float] = []
        append = latencies.append
        batch_errors = 0
        for ts_s, _service, latency_ms, status in events:
            key = start + int((ts_s - start) // slice_s) * slice_s
            counts = batch_slices.get(key)
            if counts is None:
                counts = batch_slices[key] = [0, 0]
            counts[0] += 1
            if test(status):
                counts[1] += 1
                batch_errors += 1
            append(latency_ms)
        if min(batch_slices) < start:
            raise ValueError(f"event before window start {start} folded into its accumulator")
        # One Rust call per batch; it checks finiteness before touching the digest.
        self._digest.add(latencies)
        self.requests += len(latencies)
        self.errors += batch_errors
        for key, (n, e) in batch_slices.items():
            counts = self.slices.setdefault(key, [0, 0])
            counts[0] += n
            counts[1] += e

    def digest_wire(self) -> dict[str, Any]:
        """The latency digest in wire form (the `tdigest` dict)."""
        return self._digest.wire()

    def to_state(self) -> dict[str, Any]:
        """JSON-able value for the durable table; `from_state(s).to_state() == s`."""
        return {
            "state_version": STATE_VERSION,
            "window_start": self.window_start_s,
            "availability_slice_s": self.availability_slice_s,
            "requests": self.requests,
            "errors": self.errors,
            "slices": [[s, n, e] for s, (n, e) in sorted(self.slices.items())],
            "latency_ms_digest": self._digest.to_state(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "SreAccumulator":
        try:
            if state["state_version"] not in _READABLE_STATE_VERSIONS:
                raise ValueError(f"unknown SRE state version {state['state_version']!r}")
            acc = cls(state["window_start"], state["availability_slice_s"])
            acc.requests = state["requests"]
            acc.errors = state["errors"]
            acc.slices = {s: [n, e] for s, n, e in state["slices"]}
            acc._digest = StoredDigest.restore(state["latency_ms_digest"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed SRE accumulator state: {exc!r}") from exc
        return acc

    def to_partial(self, service: str, partition: int, window_s: int) -> dict[str, Any]:
        """The partial summary (schemas/sre-partial.schema.json) for the summaries topic."""
        window_end_s = self.window_start_s + window_s
        if self.slices and max(self.slices) >= window_end_s:
            raise ValueError(f"events after window end {window_end_s} in this accumulator")
        return {
            "lens": LENS,
            "subject": service,
            "window_start": self.window_start_s,
            "window_end": window_end_s,
            "partition": partition,
            "requests": self.requests,
            "errors": self.errors,
            "latency_ms_digest": self._digest.to_state(),  # binary: only the joiner reads it
            "slices": [
                {"start": s, "requests": n, "errors": e}
                for s, (n, e) in sorted(self.slices.items())
            ],
            "schema_version": SCHEMA_VERSION,
        }


_IDENTITY = ("lens", "subject", "window_start", "window_end")


def _check_partial(p: Mapping[str, Any], identity: tuple) -> None:
    """Reject partials that would make the merged window wrong rather than merely odd."""
    if p.get("lens") != LENS:
        raise ValueError(f"not an SRE partial: lens {p.get('lens')!r}")
    if tuple(p.get(k) for k in _IDENTITY) != identity:
        raise ValueError(
            f"partials of different windows or services: {identity} vs "
            f"{tuple(p.get(k) for k in _IDENTITY)}"
        )
    slices = p["slices"]
    if sum(s["requests"] for s in slices) != p["requests"] or sum(
        s["errors"] for s in slices
    ) != p["errors"]:
        raise ValueError(f"partition {p['partition']}: slice counts do not add up to totals")


def _slice_verdicts(partials: Sequence[Mapping[str, Any]], ratio: float) -> tuple[int, int]:
    """(slices up, slices with traffic) after summing each slice across partitions."""
    slices: dict[int, list[int]] = {}
    for p in partials:
        for s in p["slices"]:
            counts = slices.setdefault(s["start"], [0, 0])
            counts[0] += s["requests"]
            counts[1] += s["errors"]
    with_traffic = [(n, e) for n, e in slices.values() if n > 0]
    # e / n <= ratio, not e <= ratio * n: both e / n and the ratio literal are correctly
    # rounded, so a slice exactly at the threshold compares equal; the product does not
    # (0.29 * 100 == 28.999999999999996 would call 29 errors in 100 down at ratio 0.29).
    up = sum(1 for n, e in with_traffic if e / n <= ratio)
    return up, len(with_traffic)


def merge_sre_partials(
    partials: Sequence[Mapping[str, Any]],
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    slice_error_ratio: float = DEFAULT_SLICE_ERROR_RATIO,
    compression: int = DEFAULT_COMPRESSION,
) -> dict[str, Any]:
    """Merge one window's partials (one per input partition) into the merged window values.

    Raises ValueError for an empty list, mixed windows/services, inconsistent partials or
    two partials of one partition (the joiner keeps one per partition: re-sent partials
    after a crash are byte-identical and must not count twice).
    """
    identity, ordered = _checked_in_order(partials)
    partitions = [p["partition"] for p in ordered]
    requests = sum(p["requests"] for p in ordered)
    errors = sum(p["errors"] for p in ordered)
    slices_up, with_traffic = _slice_verdicts(ordered, slice_error_ratio)
    digest = _merged_digest(ordered, compression)
    lens, subject, window_start, window_end = identity
    return {
        "lens": lens,
        "subject": subject,
        "window_start": window_start,
        "window_end": window_end,
        "partitions": partitions,
        "requests": requests,
        "errors": errors,
        "error_ratio": errors / requests if requests else None,
        "availability": slices_up / with_traffic if with_traffic else None,
        "slices_up": slices_up,
        "slices_with_traffic": with_traffic,
        "latency_ms": digest_quantiles(digest, quantiles),
        "latency_ms_digest": digest_to_wire(digest),
    }


def _checked_in_order(partials: Sequence[Mapping[str, Any]]) -> tuple[tuple, list]:
    """(the window's identity, the partials by partition), once every partial is checked."""
    if not partials:
        raise ValueError("no partials to merge")
    identity = tuple(partials[0].get(k) for k in _IDENTITY)
    for p in partials:
        try:
            _check_partial(p, identity)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed SRE partial: {exc!r}") from exc
    # Fixed merge order: digest merging is order-sensitive in its last bits, and the merged
    # window must not depend on the order partials arrived in.
    ordered = sorted(partials, key=lambda p: p["partition"])
    partitions = [p["partition"] for p in ordered]
    if len(set(partitions)) != len(partitions):
        raise ValueError(f"more than one partial for a partition: {partitions}")
    return identity, ordered


def _merged_digest(ordered: list, compression: int) -> TDigest:
    """The partials' latency digests merged, each checked to hold its partial's requests."""
    digest = new_digest(compression)
    for p in ordered:
        part = digest_from_any(p["latency_ms_digest"])
        if part.n_values != p["requests"]:
            raise ValueError(
                f"partition {p['partition']}: digest holds {part.n_values} values, requests {p['requests']}")
        digest.merge_inplace(part)
    return digest
