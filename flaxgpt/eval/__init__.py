"""Evaluation: ``flaxgpt eval RUN_DIR [RUN_DIR ...] --suite SUITE`` and the trainer's periodic suites.

    suite.py     the contract: EvalContext (inputs every suite may use), SuiteResult, the suite registry, TARGETS
    judges.py    the judge interface (safe? follows a principle? which of two is better?) and its implementations:
                 the preference model, a feedback backend (flaxgpt.cai), the privacy rules
    suites/      one module per suite family (perplexity, facts, safety/adherence/revision/helpfulness,
                 comparison accuracy, speed and memory)
    runner.py    runs suites over runs; a missing input gives a result marked missing, never a zero
    report.py    results -> report.json, report.md and a self-contained report.html with plots
The `flaxgpt eval` command's arguments live in flaxgpt.cli.eval.
"""
