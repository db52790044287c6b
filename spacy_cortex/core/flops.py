"""FLOP counts of the encoder and measured FLOP rates: what the benchmark's and the trainer's
%-of-peak figures divide. Imports no spaCy."""
import time
from typing import Callable


def encoder_flops(config, batch: int, length: int) -> float:
    """FLOPs (2 per multiply-add) of one padded forward pass of a BERT-style encoder with a
    token head: per token and layer the four d x d attention projections and the two
    d x ff feed-forward matrices, plus attention scores and weighted sum over the padded
    length (4 * length * d); plus the classifier."""
    d, ff = config.hidden_size, config.intermediate_size
    per_token = config.num_hidden_layers * (2 * (4 * d * d + 2 * d * ff) + 4 * length * d)
    return float(batch * length * (per_token + 2 * d * config.num_labels))


def flop_rate(fn: Callable[[], object], flops: float, seconds: float, windows: int = 5) -> float:
    """The best FLOP/s of `windows` timing windows over `seconds` in all."""
    for _ in range(3):
        fn()
    best = 0.0
    for _ in range(windows):
        reps, start = 0, time.perf_counter()
        while True:
            fn()
            reps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / windows:
                best = max(best, flops * reps / elapsed)
                break
    return best
