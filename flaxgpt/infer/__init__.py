"""Inference: sampling, KV-cache decoding, the batched generator, log-prob scoring, int8 weights."""
