"""HuggingFace GPT-2 import and export.

* ``hf_import.import_hf(hf_dir, out_dir)``: a transformers GPT-2 directory -> a flaxgpt run (step 0);
  ``hf_import.read_hf_model(hf_dir)`` converts in memory (``train.init_from`` uses it).
* ``hf_export.export_hf(run_dir, out_dir)``: a run's checkpoint -> a directory ``GPT2LMHeadModel.from_pretrained``
  loads.
* ``gpt2``: the config and parameter mapping; ``safetensors_io``: the file format with numpy; ``hf_files``:
  reading a HF directory; ``hf_tokenizer``: HF tokenizer files. The ``flaxgpt convert`` command is
  ``flaxgpt.cli.convert``.
"""
