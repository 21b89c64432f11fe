"""The Kafka-free core bench folds every event it generates, in every framing."""
import pytest

from app.bench.core import run


@pytest.mark.parametrize("framing", ["single", "array", "ndjson"])
def test_every_event_is_folded_and_every_stage_is_timed(framing):
    result = run(3_000, framing, batch=50)
    assert result["events"] == 3_000
    stages = result["us_per_event"]
    assert set(stages) == {"decode", "fold", "checkpoint", "partials", "joiner merge", "total"}
    assert stages["total"] == pytest.approx(sum(v for k, v in stages.items() if k != "total"), abs=0.01)
    assert result["windows"] > 0
