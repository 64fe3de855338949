"""Shared pytest fixtures."""

from __future__ import annotations

import os

# Every test sees 8 CPU devices (before jax is imported anywhere), so sharded code runs for real;
# single-device tests pass jax.devices()[:1] explicitly.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
import atexit
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

# JAX's persistent compilation cache, fresh for each test session (so no result depends on an earlier run): the
# many runs of the same tiny configs (and the subprocesses tests start, through the environment) compile each
# program once. Loaded executables are the compiled ones, so results are bitwise the same.
os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="flaxgpt-test-jax-cache-")
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"

import jax
import numpy as np
import pytest

atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)

# Tiny models compile much faster with most XLA optimisations off; results stay exact. Runs of many steps over the
# 50K-id GPT-2 vocabulary are the exception (about twice as fast optimised): they ask for ``optimized``.
jax.config.update("jax_disable_most_optimizations", True)


def _optimized() -> Iterator[None]:
    jax.config.update("jax_disable_most_optimizations", False)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", True)


@pytest.fixture
def optimized() -> Iterator[None]:
    """XLA's optimisations on for one test."""
    yield from _optimized()


@pytest.fixture(scope="module")
def optimized_module() -> Iterator[None]:
    """XLA's optimisations on for the rest of a module (for module fixtures that train, and their tests)."""
    yield from _optimized()

# A fake tokenizer for synthetic shards: ids 0..998 are "text", 999 is end-of-text.
FAKE_META = {"name": "fake", "hash": "0123456789abcdef", "vocab_size": 1000, "eot_id": 999}


@pytest.fixture
def fake_meta() -> dict:
    """Tokenizer metadata of the fake tokenizer (vocab 1000, end-of-text 999)."""
    return dict(FAKE_META)


@pytest.fixture
def write_shards() -> Callable[..., Path]:
    """write_shards(directory, docs, split='train', **writer_kwargs) -> directory, via ShardWriter."""
    from flaxgpt.data.shards import ShardWriter

    def write(directory: Path, docs: Sequence[Sequence[int]], split: str = "train", **kwargs) -> Path:
        kwargs.setdefault("tokenizer_meta", FAKE_META)
        kwargs.setdefault("source", Path(directory).name)
        with ShardWriter(directory, split, **kwargs) as writer:
            for doc in docs:
                writer.add(np.asarray(doc))
        return Path(directory)

    return write
