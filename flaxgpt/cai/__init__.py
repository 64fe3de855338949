"""Constitutional AI: constitutions, feedback backends, SL-CAI revision, RL-CAI labelling, the pipeline.

    constitution.py    principles (own YAML/JSON format; Anthropic's published JSON files as they are)
    constitutions/     the shipped sets: personal.yaml (five principles about the owner), harmless.yaml
    fewshot.py         the few-shot critique/revision and comparison transcripts, and the prompt builders
    backend.py         the one interface every feedback model implements (generate texts; score options)
    backends.py        a local flaxgpt run, and `make_backend(spec)` for run directories and endpoints
    openai_backend.py  any OpenAI-compatible endpoint (cache, retries with backoff, concurrency limit)
    rules.py           the privacy rule checker (the ingest secret/PII detector): critique, redact, compare
    revise.py          `flaxgpt cai revise`: response -> critique -> revision, n rounds
    label.py           `flaxgpt cai label`: which of two responses better follows a principle (soft labels)
    pipeline.py        `flaxgpt run experiments/cai_*.py`: every stage in order as a flaxgpt command, done ones
                       skipped; the last stage evaluates every policy with `flaxgpt eval`
Prompt sets are read by flaxgpt.data.prompts; the commands' arguments live in flaxgpt.cli.cai.
"""
