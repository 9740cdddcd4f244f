"""What the CPU can do fast: bfloat16 matrix units change both training and inference speed."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}


@cache
def cpu_has_bf16() -> bool:
    """True on x86 CPUs with native bfloat16 dot products (AVX512-BF16 or AMX), read from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(BF16_CPU_FLAGS & set(line.split(":", 1)[1].split()))
    return False


PRECISIONS = ("float32", "mixed_bfloat16")


def resolve_precision(requested: str) -> str:
    """Resolve "auto" by the CPU flag alone: mixed bfloat16 where the CPU computes it natively.

    A guess: `measured_precision` decides by timing where that matters (training, inference).
    """
    if requested == "auto":
        return "mixed_bfloat16" if cpu_has_bf16() else "float32"
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}: use auto, float32 or mixed_bfloat16")
    return requested


def measured_precision(requested: str, seconds: Callable[[str], float]) -> str:
    """ "auto" resolved by timing (`seconds(policy)`: how long a fixed piece of work takes in it) where the CPU
    has bfloat16 units; otherwise as `resolve_precision`. The flag does not say which is faster: bfloat16
    trained 2x and classified 1.5x as fast as float32 on one host of this project, and on a later one
    (AVX512-BF16 without AMX) at 0.5x and 0.65x.
    """
    if requested != "auto" or not cpu_has_bf16():
        return resolve_precision(requested)
    timings = {policy: seconds(policy) for policy in PRECISIONS}
    return min(timings, key=timings.get)


def limit_threads(threads: int) -> None:
    """Cap TensorFlow's thread pools for this process; call before the first TensorFlow op.

    Several worker processes on few cores each start a pool as wide as the machine, and the
    pools then fight over the cores; one pool each of cores / processes threads avoids that.
    """
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
