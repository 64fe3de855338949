"""A run directory read back, and runs made from elsewhere. Modules:

    rundir     checkpoints, the config and tokenizer saved with them, their parameters (load_run)
    info       ``flaxgpt info``: what a run is and how far it got
    init_from  ``train.init_from``: a new run's first parameters from a run or a HuggingFace directory
    hf/        HuggingFace GPT-2: import into a run, export a run, safetensors and tokenizer files
"""
