"""The data of the offline LLM diagnostic: held-out and training prompts, the agents' sampled
responses, and Bradley–Terry preference pairs in the suite's dataset variants."""

from __future__ import annotations

import math
import random

from mirrorpo.llm.bench_config import BAD_JUDGE_FACTOR, BenchConfig, variant_spec
from mirrorpo.llm.bench_models import generate


def prompts(problem, cfg: BenchConfig) -> tuple[list[str], list[str]]:
    """(evaluation prompts, all distinct; training prompts, none of them held out) of ``cfg.seed``."""
    eval_prompts = _draw(problem, random.Random(f"eval-{cfg.seed}"), cfg.eval_prompts, exclude=(), distinct=True)
    train_prompts = _draw(problem, random.Random(f"train-{cfg.seed}"), cfg.pairs, exclude=set(eval_prompts))
    return eval_prompts, train_prompts


def _draw(problem, rng: random.Random, n: int, *, exclude, distinct: bool = False) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        p, _ = problem.sample(rng)
        if p not in exclude and not (distinct and p in out):
            out.append(p)
    return out


def sample_agents(agents: dict, tokenizer, problem, train_prompts: list[str], cfg: BenchConfig) -> tuple[dict, dict]:
    """Two sampled responses of each agent to every training prompt (``samples[agent][k][i]``), and
    each agent's mean reward over its first samples."""
    max_new = cfg.max_digits + 2
    samples = {
        name: [generate(agent, tokenizer, train_prompts, max_new_tokens=max_new, sample=True,
                        temperature=cfg.sample_temperature, seed=cfg.seed * 10 + k + 5 * (name == "novice"))
               for k in range(2)]
        for name, agent in agents.items()
    }
    rewards = {name: sum(problem.reward(p, r) for p, r in zip(train_prompts, s[0])) / len(train_prompts)
               for name, s in samples.items()}
    return samples, rewards


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def build_pairs(variant: str, prompts, samples, problem, *, temperature: float, seed: int) -> tuple[list[dict], dict]:
    """Preference pairs of one variant from pre-sampled responses.

    ``samples[agent][k][i]`` is the k-th (k ∈ {0, 1}) response of ``agent`` ("expert" / "novice") to
    prompt i. Pairs with two identical responses carry no preference and are dropped."""
    spec = variant_spec(variant)
    kind = spec["variant"]
    rng = random.Random(f"{seed}-{variant}")
    t = temperature * (BAD_JUDGE_FACTOR if kind == "bad-judge" else 1.0)
    rows, dropped, correct, same_agent = [], 0, 0, 0
    for i, prompt in enumerate(prompts):
        if kind == "mixed":
            agents = (rng.choice(("expert", "novice")), rng.choice(("expert", "novice")))
        else:
            agents = ("expert", "novice") if rng.random() < 0.5 else ("novice", "expert")
        a, b = samples[agents[0]][0][i], samples[agents[1]][1][i]
        if a == b:
            dropped += 1
            continue
        ra, rb = problem.reward(prompt, a), problem.reward(prompt, b)
        a_wins = rng.random() < _sigmoid((ra - rb) / t)
        if kind == "noisy" and rng.random() < spec["epsilon"]:
            a_wins = not a_wins
        chosen, rejected = (a, b) if a_wins else (b, a)
        rc, rr = (ra, rb) if a_wins else (rb, ra)
        correct += rc > rr
        same_agent += agents[0] == agents[1]
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    stats = {"variant": variant, "pairs": len(rows), "dropped_identical": dropped,
             "label_accuracy": correct / max(len(rows), 1), "same_agent_pairs": same_agent,
             "judge_temperature": t, "epsilon": spec["epsilon"]}
    return rows, stats
