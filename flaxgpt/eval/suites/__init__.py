"""The suite modules; importing this package fills ``flaxgpt.eval.suite.SUITES``.

    perplexity   validation perplexity per data source ("perplexity")
    facts        questions about the persona answered greedily ("facts")
    comparison   accuracy on held-out comparisons as a PM / by LM log-probs / by the judge ("comparison")
    speed        latency, throughput and memory of decoding ("speed")
    judged       safety, adherence, revision and helpfulness, scored by a judge (flaxgpt.eval.judges)
"""

from __future__ import annotations

import logging

from flaxgpt.eval.suites import comparison, facts, perplexity, speed

log = logging.getLogger("flaxgpt")

try:  # written separately: its absence (or a bug in it) must not take the other suites down
    from flaxgpt.eval.suites import judged
except Exception as err:  # noqa: BLE001 - any import failure only removes the judged suites
    judged = None
    log.warning("flaxgpt.eval.suites.judged not available (%s: %s); safety, adherence, revision and helpfulness "
                "suites are not registered", type(err).__name__, err)

__all__ = ["comparison", "facts", "judged", "perplexity", "speed"]
