"""Serving a flaxgpt run.

    openai_api.py  ``flaxgpt serve RUN_DIR``: an OpenAI-compatible HTTP server (completions, chat, SSE streaming)
    protocol.py    the OpenAI wire format: request fields, prompts and messages to tokens, log-prob objects
"""
