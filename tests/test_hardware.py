"""models/hardware.py: which precision "auto" means, by flag and by measurement."""

from __future__ import annotations

import pytest

import models.hardware as hardware


def test_auto_is_timed_only_where_the_cpu_has_bfloat16(monkeypatch) -> None:
    timed: list[str] = []

    def seconds(policy: str) -> float:
        timed.append(policy)
        return {"float32": 1.0, "mixed_bfloat16": 2.0}[policy]

    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    assert hardware.measured_precision("auto", seconds) == "float32" and sorted(timed) == sorted(hardware.PRECISIONS)
    assert hardware.measured_precision("auto", lambda policy: 0.5 if policy == "mixed_bfloat16" else 1.0) == (
        "mixed_bfloat16"
    )
    timed.clear()
    assert hardware.measured_precision("mixed_bfloat16", seconds) == "mixed_bfloat16" and timed == []
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    assert hardware.measured_precision("auto", seconds) == "float32" and timed == []
    with pytest.raises(ValueError, match="precision"):
        hardware.measured_precision("int4", seconds)


def test_the_training_probe_times_real_steps_in_the_policy_asked(monkeypatch) -> None:
    import keras

    import models.train as train

    monkeypatch.setattr(train, "PROBE_WARMUP", 1)
    monkeypatch.setattr(train, "PROBE_STEPS", 2)
    probe_training_seconds = train.probe_training_seconds
    try:
        assert probe_training_seconds("float32") > 0
        assert keras.mixed_precision.global_policy().name == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
