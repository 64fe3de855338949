"""Constitutional AI: constitutions, feedback backends, SL-CAI revision, RL-CAI labelling, the pipeline.

    constitution.py  principles (own YAML/JSON format; Anthropic's published JSON files as they are)
    backend.py       the one interface every feedback model implements (generate texts; score options)
    backends.py      local flaxgpt run, OpenAI-compatible endpoint (cache, retries, concurrency), rule checkers
    prompts.py       red-team and helpfulness prompt sets (hh-rlhf first human turns, JSONL, the facts file)
    revise.py        `flaxgpt cai revise`: response -> critique -> revision, n rounds
    label.py         `flaxgpt cai label`: which of two responses better follows a principle (soft labels)
"""
