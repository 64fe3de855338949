"""Model FLOPs utilisation for decoder-only transformers.

MFU counts the FLOPs the model *needs*, not the FLOPs the hardware did.
Recomputation, padding and wasted work don't count. That is what makes it
honest, and occasionally depressing.
"""

from __future__ import annotations

# Peak dense bf16 FLOP/s per chip. Check your vendor's sheet; these are the
# numbers we use, not promises.
PEAK_FLOPS = {
    "tpu-v4": 275e12,
    "tpu-v5e": 197e12,
    "h100-sxm": 989e12,
    "a100": 312e12,
}


def flops_per_token(n_params: int, n_layers: int, d_model: int, seq_len: int) -> float:
    """Training FLOPs per token: 6N for the weights plus the attention term.

    The attention term, 12 * L * d * T, counts the score and value matmuls in
    forward and backward. For a 350M model at T = 2,048 it adds about 28%.
    """
    return 6.0 * n_params + 12.0 * n_layers * d_model * seq_len


def mfu(
    tokens_per_second: float,
    n_params: int,
    n_layers: int,
    d_model: int,
    seq_len: int,
    n_chips: int,
    chip: str = "tpu-v4",
) -> float:
    """Model FLOPs utilisation as a fraction in [0, 1].

    Args:
        tokens_per_second: Measured over wall-clock time, including the data
            wait. If you exclude the wait you are measuring something else.
        n_params: Non-embedding parameters, strictly; in practice people use
            the total and the difference is a rounding error above 100M.
        n_layers: Transformer blocks.
        d_model: Model width.
        seq_len: Training sequence length.
        n_chips: Number of accelerator chips.
        chip: Key into :data:`PEAK_FLOPS`.
    """
    if chip not in PEAK_FLOPS:
        raise KeyError(f"unknown chip {chip!r}; known: {sorted(PEAK_FLOPS)}")
    needed = tokens_per_second * flops_per_token(n_params, n_layers, d_model, seq_len)
    return needed / (PEAK_FLOPS[chip] * n_chips)


def tokens_per_second(batch_size: int, seq_len: int, step_seconds: float) -> float:
    """Tokens processed per second for a global batch of sequences."""
    if step_seconds <= 0:
        raise ValueError("step_seconds must be positive; nothing is that fast")
    return batch_size * seq_len / step_seconds
