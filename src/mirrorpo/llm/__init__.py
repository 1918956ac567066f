"""The LLM bridge (docs/design.md §6): every mirrorpo loss in PyTorch, a TRL trainer, and an offline diagnostic.

    from mirrorpo.llm.losses import PairBatch, pair_loss          # mirrorpo.losses on torch tensors
    from mirrorpo.llm.trainer import MirrorPOConfig, MirrorPOTrainer, paper_config, paper_lora_config
    from mirrorpo.llm.bench import BenchConfig, run_bench            # tiny offline LLM diagnostic

Sub-modules import torch / transformers / trl; this package itself imports nothing heavy, so
``mirrorpo --help`` and the JAX side work without them. Command line: ``mirrorpo llm --help``.
"""
