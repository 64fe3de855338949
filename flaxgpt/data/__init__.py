"""Data: documents and conversations -> token shards -> training batches.

May import ``flaxgpt.config`` and ``flaxgpt.ingest``. Modules:

    tokenizer      GPT-2 BPE (tiktoken, offline), the flaxgpt special tokens, personal vocabularies, specs
    vocab          choosing a personal vocabulary, and resizing embeddings to a new tokenizer
    chat_template  conversations over the role tokens, with the SFT loss mask
    jsonfile       reading the JSON files flaxgpt writes, with errors that name the file
    outdir         writing an output folder atomically (a hidden sibling renamed into place)
    shards         the token shard format: ShardWriter, ShardSet, sidecars
    tokenize       ``flaxgpt tokenize``: text files and jsonl -> train/val shards
    chat           chat datasets (OpenAI messages, hh-rlhf, OASST1) -> conversations
    chat_shards    ``flaxgpt tokenize-chat``: conversations -> masked chat shards for SFT
    corpus         ``flaxgpt ingest``: ingest's documents -> shards per source, mixture, tokenizer, report
    audit          ``flaxgpt audit``: canary strings searched for in shards and every other output file
    audit_files    an output's files besides shards as searchable text, JSON field by field
    packing        documents and conversations packed into rows, rows into the model's batch keys
    loader         the grain pipeline: shard sets -> packed, mixed, batched examples
    preferences    comparisons for the pair stages (pm, dpo, orpo): files -> token arrays -> batches
    prompts        prompt sets (red-team, helpfulness, PPO): files -> conversations ending on a user turn
"""
