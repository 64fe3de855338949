"""The model: GPT-2 as pure functions of one parameter pytree (``gpt.py``)."""
