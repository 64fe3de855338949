"""Training: the stage registry, pure steps, the one loop, checkpoints and metrics. Modules:

    sharding     device mesh, logical-axis rules, sharded init, ``compile_fn`` (the one way anything is jitted)
    state        TrainState and its sharded creation
    optim        AdamW with warmup and cosine decay; frozen subtrees by mask
    steps        the step builder (gradient accumulation) and the masked next-token loss
    rl           preference and PPO arithmetic: DPO/IPO/hinge, soft BCE, GAE, KL, pair metrics
    evaluate     per-row NLL, validation loss and perplexity (the one perplexity function)
    scoring      frozen-model forwards (log-probs, values, rewards) and fixed-size row scoring
    stages/      the registry: one Stage record per method (pretrain, sft, pm, dpo, orpo, ppo)
    context      RunContext (built once per run) and the Services layers above plug in
    loop         the one training loop
    checkpoint   orbax checkpoints: save, restore the latest that loads
    logger       metrics.jsonl, TensorBoard, loss and PPO plots
    mfu          FLOPs per token and peak FLOP/s (MFU)
"""
