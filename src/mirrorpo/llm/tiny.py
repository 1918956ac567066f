"""A tiny causal LM and character-level tokenizer built locally (nothing is downloaded), and a problem
with a programmatic reward: the offline stand-in for an LLM and its benchmark (docs/design.md §6).

    tokenizer = char_tokenizer()
    model = tiny_llama(tokenizer, hidden=64, layers=2)
    problem = SortingProblem(min_digits=4, max_digits=7)
    prompt, answer = problem.sample(rng); problem.reward(prompt, "1234")   # ∈ [0, 1]
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

CHARS = "0123456789+-*=:<>|,.;?! abcdefghijklmnopqrstuvwxyz"
SPECIAL = ("<pad>", "<s>", "</s>", "<unk>")


def char_tokenizer(chars: str = CHARS):
    """A character-level ``PreTrainedTokenizerFast`` (one token per character; pad, bos, eos, unk)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate([*SPECIAL, *dict.fromkeys(chars)])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", padding_side="left")


def tiny_llama(tokenizer, *, hidden: int = 64, layers: int = 2, heads: int = 4, max_positions: int = 128,
               seed: int = 0):
    """A randomly initialised few-layer Llama sized for ``tokenizer`` (float32, CPU)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


@dataclass(frozen=True)
class SortingProblem:
    """Sort a string of digits ascending. ``sort:4132=`` → ``1234``.

    Reward R(y) ∈ [0, 1]: ½·(positions that match the sorted answer) / max(len(y), n) +
    ½·(multiset overlap with the digits) / max(len(y), n). Exactly right → 1; graded otherwise."""

    min_digits: int = 4
    max_digits: int = 7
    name: str = "sort"

    def sample(self, rng: random.Random) -> tuple[str, str]:
        n = rng.randint(self.min_digits, self.max_digits)
        digits = "".join(rng.choice("0123456789") for _ in range(n))
        return self.prompt(digits), self.answer(digits)

    def prompt(self, digits: str) -> str:
        return f"sort:{digits}="

    def answer(self, digits: str) -> str:
        return "".join(sorted(digits))

    def digits_of(self, prompt: str) -> str:
        return prompt[len("sort:"):-1]

    def reward(self, prompt: str, response: str) -> float:
        target = self.answer(self.digits_of(prompt))
        y = response.strip()
        denom = max(len(y), len(target))
        positional = sum(a == b for a, b in zip(y, target)) / denom
        overlap = sum((Counter(y) & Counter(target)).values()) / denom
        return 0.5 * positional + 0.5 * overlap
