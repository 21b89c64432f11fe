"""How large a record lensbridge writes to each kind of topic, and the limits that follow.

Every bound is by construction, from the settings, so the topics can be sized for it
(`max.message.bytes`) and the worker can refuse to start on a topic that is too small:

- Dead letters carry the rejected bytes as base64 (4/3 of the raw size). The decoder
  dead-letters messages above LENSBRIDGE_MAX_MESSAGE_BYTES as oversize, and
  app/core/ingest/deadletter.py builds each record under its topic's limit, cutting `raw` only
  beyond `record_limit_bytes(max_message_bytes)`: base64(max_message_bytes) plus its
  envelope for the other fields (error text, key, topic names, timestamps).
- Table values (the changelog topics) are below `MAX_STATE_BYTES`: the producer
  refuses larger ones (a state failure: the worker exits), so the state layout keeps
  every value far below it (one key per window-subject slot or per subject).
- A partial (summaries topic) is a projection of one table value (one window-subject
  slot: counts instead of id sets), so it is never larger than that value: the summaries
  topic gets the state limit. `sre_partial_bytes` and `cx_partial_bytes` give the much
  tighter bound of the fixed-size part (digests, slices, the subject name) for the docs
  and the tests, which measure real accumulators at the caps against them.
- Merged windows and alerts get the state limit as well: their size follows the number
  of services a cohort names and the number of dipping services, which no setting caps.
  Anything still too large is refused locally before it reaches Kafka and becomes a
  small dead letter of its own (`refused_record`), never a crash loop.

Every topic limit also covers one full producer batch (`PRODUCER_BATCH_BYTES`), since
the broker checks `max.message.bytes` against a record batch, not a single record.
"""
from __future__ import annotations

import hashlib

from app.core.ingest.deadletter import record_limit_bytes
from app.core.ingest.decode import RECORD_TOO_LARGE, Rejected
from app.core.ingest.fields import DEFAULT_MAX_SUBJECT_CHARS

KIB = 1024
MIB = 1024 * KIB
MAX_STATE_BYTES = 16 * MIB  # the largest table value the worker writes (producer limit for state)
PRODUCER_BATCH_BYTES = 1 * MIB  # what aiokafka packs into one record batch per partition
BATCH_OVERHEAD_BYTES = 1 * KIB  # record batch and record headers around one record (~80 bytes)
REFUSED_PREFIX_BYTES = 1 * KIB  # of a refused record, kept in its dead letter
MAX_SUBJECT_CHARS = DEFAULT_MAX_SUBJECT_CHARS  # longer service and cohort names are dead letters
JSON_BYTES_PER_CHAR = 6  # worst case: a control character is written as \u00XX
DIGEST_BYTES_PER_CENTROID = 16  # fastdigest's binary form: mean and weight as f64
DIGEST_HEADER_BYTES = 128  # measured 80-82
SLICE_JSON_BYTES = 96  # {"start":..,"requests":..,"errors":..} with 20-digit counts
PARTIAL_FIXED_BYTES = 2 * KIB  # field names, window bounds, counts, frustration counters
CX_DIGESTS = 6  # time to interactive and the five web vitals


def base64_bytes(n: int) -> int:
    return 4 * ((n + 2) // 3)


def dead_letter_bytes(max_message_bytes: int) -> int:
    """The largest dead-letter record for LENSBRIDGE_MAX_MESSAGE_BYTES: the bound the record
    itself is built to (app/core/ingest/deadletter.py), so no accepted-size message's raw is cut."""
    return record_limit_bytes(max_message_bytes)


def topic_limit(record_bytes: int) -> int:
    """`max.message.bytes` for a topic whose records are at most `record_bytes` (key included)."""
    return max(record_bytes, PRODUCER_BATCH_BYTES) + BATCH_OVERHEAD_BYTES


def digest_b64_bytes(compression: int) -> int:
    """A stored digest (base64 of fastdigest's binary form) of at most `compression` centroids."""
    return base64_bytes(compression * DIGEST_BYTES_PER_CENTROID + DIGEST_HEADER_BYTES)


def _subject_bytes(subject_chars: int) -> int:
    # In the JSON value and once more as UTF-8 in the record key (at most 4 bytes a character).
    return subject_chars * (JSON_BYTES_PER_CHAR + 4)


def sre_partial_bytes(compression: int, window_s: int, slice_s: int,
                      subject_chars: int = MAX_SUBJECT_CHARS) -> int:
    """Bound on an SRE partial with its key: one digest, one entry per availability slice."""
    slices = -(-window_s // slice_s)
    return (PARTIAL_FIXED_BYTES + _subject_bytes(subject_chars) + digest_b64_bytes(compression)
            + slices * SLICE_JSON_BYTES)


def cx_partial_bytes(compression: int, subject_chars: int = MAX_SUBJECT_CHARS,
                     services_json_bytes: int = 0) -> int:
    """Bound on a CX partial with its key, given the size of its `services` map."""
    return (PARTIAL_FIXED_BYTES + _subject_bytes(subject_chars) + CX_DIGESTS * digest_b64_bytes(compression)
            + services_json_bytes)


def topic_limits(max_message_bytes: int, state_bytes: int = MAX_STATE_BYTES) -> dict[str, int]:
    """Kind of topic -> the `max.message.bytes` it needs (kinds: dlq, summaries, windows,
    alerts, changelog). The state kinds get `state_bytes` itself (what the joiner's changelog
    has always been created with): records are kept `BATCH_OVERHEAD_BYTES` below it."""
    return {"dlq": topic_limit(dead_letter_bytes(max_message_bytes)), "summaries": state_bytes,
            "windows": state_bytes, "alerts": state_bytes, "changelog": state_bytes}


def fits(key: bytes | None, value: bytes, limit: int) -> bool:
    """Whether one record goes through a topic of `max.message.bytes` = `limit` (in a batch of its own)."""
    return len(value) + len(key or b"") + BATCH_OVERHEAD_BYTES <= limit


def size_problem(topic: str, current: int | None, needed: int) -> str | None:
    """The error text for a topic whose `max.message.bytes` is below `needed`, else None."""
    if current is not None and current >= needed:
        return None
    shown = "unknown" if current is None else str(current)
    return (f"topic {topic!r} has max.message.bytes={shown} but lensbridge writes records of up to "
            f"{needed} bytes there; raise it with: kafka-configs --bootstrap-server <broker> --alter "
            f"--entity-type topics --entity-name {topic} --add-config max.message.bytes={needed}")


def refused_record(target_topic: str, key: bytes | None, value: bytes, limit: int | None,
                   cause: str) -> Rejected:
    """The dead letter of a record the worker could not write: which topic, how large, the
    limit, a sha256 of the whole value and its first `REFUSED_PREFIX_BYTES` as `raw`."""
    size, digest = len(value) + len(key or b""), hashlib.sha256(value).hexdigest()
    error = (f"a {size}-byte record for topic {target_topic!r} was refused ({cause}); the limit is "
             f"{'unknown' if limit is None else limit} bytes; sha256 of the value {digest}; raw holds its first "
             f"{min(len(value), REFUSED_PREFIX_BYTES)} bytes. Raise max.message.bytes of {target_topic} "
             f"or lower what feeds it (subject names, LENSBRIDGE_DIGEST_COMPRESSION)")
    return Rejected(RECORD_TOO_LARGE, error, value[:REFUSED_PREFIX_BYTES])


MAX_ALERT_LIST_ITEMS = 100  # per list of an alert as published (the correlator keeps them all)
_ALERT_LISTS = ("candidates", "services", "cohorts", "related_alert_ids")
_IMPACT_LISTS = ("cohorts", "dependent_cohorts")


def bound_alert(alert: dict, max_items: int = MAX_ALERT_LIST_ITEMS) -> dict:
    """The alert as published: every list that grows with the number of services or cohorts
    (candidates, services, cohorts, related ids, affected and dependent cohorts) keeps its
    first `max_items` (candidates are ranked best first), and `truncated` says which lists
    were cut and how long they were. Evidence and correlations are bounded by the correlator."""
    out, cut = dict(alert), {}
    for field in _ALERT_LISTS:
        items = out.get(field)
        if isinstance(items, list) and len(items) > max_items:
            cut[field], out[field] = len(items), items[:max_items]
    impact = out.get("impact")
    if isinstance(impact, dict):
        impact = out["impact"] = dict(impact)
        for field in _IMPACT_LISTS:
            items = impact.get(field)
            if isinstance(items, list) and len(items) > max_items:
                cut[f"impact.{field}"], impact[field] = len(items), items[:max_items]
    if cut:
        out["truncated"] = cut
    return out
