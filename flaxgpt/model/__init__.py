"""The model. Modules:

    gpt       GPT-2 as pure functions of one parameter pytree (train, prefill and decode modes; int8 weights)
    logprobs  log-probabilities from its logits: the one place the padded vocabulary is masked
"""
