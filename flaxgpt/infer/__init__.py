"""Inference: from a trained model's params to tokens, text and log-probs.

    inputs.py     prompts (text or token ids) to checked ids; the power-of-two batch and length buckets
    sampling.py   SamplingParams, their per-row device arrays, and sample_next (penalties, top-k/p, min-p)
    decode.py     the KV-cache decode state: prefill, one decode step, cache growth (pure, compiled by the generator)
    scoring.py    Scorer: log-probs of given tokens and the top alternatives, one compiled forward per bucket
    generator.py  Generator: batched, streamed generation with stop rules; load_generator for a run directory
    chat.py       ChatSession: a conversation through the chat template (system prompt, settings, history)
    quant.py      int8 weights (quantize, dequantize) and the float-vs-int8 perplexity and memory report
    perplexity.py PerplexityScorer: the perplexity of texts under a run (ingest's quality filter)
"""
