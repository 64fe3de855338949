"""The ``flaxgpt`` command (``main``): a table of subcommands, each parsing its arguments and calling the library."""

from flaxgpt.cli.main import main

__all__ = ["main"]
