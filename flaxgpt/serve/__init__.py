"""Serving a flaxgpt run (its command line is ``flaxgpt.cli.serve``).

    openai_api.py  an OpenAI-compatible HTTP server over one Generator (completions, chat, SSE streaming)
    protocol.py    the OpenAI wire format: request fields, prompts and messages to tokens, log-prob objects
"""
