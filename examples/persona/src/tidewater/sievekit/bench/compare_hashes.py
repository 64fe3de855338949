"""Is blake2b fast enough for shingle fingerprints? Compare it with murmur3.

Run: python sievekit/bench/compare_hashes.py

Answer on my laptop (2021): blake2b from hashlib is faster than pure-Python
murmur3 by a wide margin, because it is C. So sievekit uses blake2b, and
this script exists to stop me from asking again.
"""

import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "third_party" / "murmur3"))
from murmur3 import murmur3_32  # noqa: E402

SHINGLES = [f"the quick brown fox {i}".encode() for i in range(100_000)]


def timed(name, fn):
    start = time.perf_counter()
    for s in SHINGLES:
        fn(s)
    print(f"{name:>8}: {time.perf_counter() - start:.3f} s for {len(SHINGLES):,} shingles")


timed("blake2b", lambda s: hashlib.blake2b(s, digest_size=4).digest())
timed("murmur3", murmur3_32)
