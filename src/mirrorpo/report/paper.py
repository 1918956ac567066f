"""Our leaderboard beside the paper's (MPO paper, Table 2 and Appendix H), as a Markdown table.

Absolute returns differ between suites (our agents are retrained with our own PPO on brax's spring
backend), so for TLA each cell also gets the *normalised* score

    n(R) = (R − R_start) / (R_target − R_start)

— 0 is the starting (original) agent, 1 the target agent — computed with each suite's own
references: ours from ``references.json`` (same evaluation protocol as the cells), the paper's
from its text (original agent 1700 on TLA, target 3900).
"""

from __future__ import annotations

import math
from pathlib import Path

from mirrorpo.report.findings import START, check_findings

# mean, standard error; columns base, mixed, noisy-0.1, noisy-0.2, noisy-0.3 (TLA); base, mixed, noisy (Hopper)
PAPER_TLA = {
    "rrhf": [(2789, 285), (2245, 134), (1730, 442), (749, 498), (330, 552)],
    "slic_hf": [(3255, 66), (2478, 54), (2329, 289), (1964, 116), (1135, 224)],
    "dpo": [(3528, 58), (2766, 89), (3082, 80), (2530, 97), (1519, 140)],
    "ipo": [(3618, 44), (2937, 85), (3162, 66), (2392, 136), (1133, 115)],
    "cpo": [(3450, 55), (2322, 208), (2967, 58), (2427, 44), (2000, 35)],
    "orpo": [(3087, 322), (2500, 71), (2841, 50), (2359, 43), (1953, 37)],
    "rdpo": [(2606, 65), (2107, 40), (2099, 50), (1740, 36), (1667, 24)],
    "simpo": [(3683, 78), (3117, 185), (2314, 752), (118, 715), (-3828, 341)],
    "sft": [(3287, 62), (2344, 40), (2733, 45), (2345, 37), (2049, 33)],
    "lpo": [(3774, 102), (2841, 46), (3617, 69), (2705, 370), (1569, 156)],
}
PAPER_TLA_VARIANTS = ("base", "mixed", "noisy-0.1", "noisy-0.2", "noisy-0.3")
PAPER_TLA_REFERENCES = {"start": 1700.0, "target": 3900.0}
PAPER_HOPPER = {
    "dpo": [(1796, 78), (458, 82), (693, 131)],
    "ipo": [(2049, 13), (1606, 91), (739, 118)],
    "cpo": [(2078, 12), (1078, 35), (1813, 33)],
    "orpo": [(2022, 15), (1039, 20), (1710, 33)],
    "simpo": [(2027, 15), (1460, 94), (1794, 65)],
}
PAPER_HOPPER_VARIANTS = ("base", "mixed", "noisy")  # the paper does not state Hopper's noise level


def paper_cell(task: str, algo: str, variant: str) -> tuple[float, float] | None:
    """The paper's (mean, s.e.) for a cell, or None; Hopper's noisy-EPS is the paper's 'noisy' column."""
    table, variants = (PAPER_TLA, PAPER_TLA_VARIANTS) if task == "tla" else (PAPER_HOPPER, PAPER_HOPPER_VARIANTS)
    if task == "hopper" and variant.startswith("noisy-"):
        variant = "noisy"
    if algo not in table or variant not in variants:
        return None
    return table[algo][variants.index(variant)]


def normalised(value: float, start: float, target: float) -> float:
    return (value - start) / (target - start)


def our_start_target(references: dict) -> tuple[float, float] | None:
    agents = {k: r["mean"] for k, r in references.items() if k != START}
    if START not in references or not agents:
        return None
    return references[START]["mean"], max(agents.values())


def comparison_table(records: list[dict], references: dict, task: str) -> str:
    """Markdown: one row per algorithm, per variant our mean ± s.e. and the paper's, plus the
    normalised scores (TLA), rows ordered as the paper's table then the rest alphabetically."""
    cells = {(r["algo"], r["variant"]): r for r in records}
    variants = list(dict.fromkeys(r["variant"] for r in records))
    present = {r["algo"] for r in records}
    paper_order = [a for a in (PAPER_TLA if task == "tla" else PAPER_HOPPER) if a in present]
    algos = paper_order + sorted(present - set(paper_order))
    ours = our_start_target(references) if task == "tla" else None
    header = ["algorithm"]
    for v in variants:
        header += [f"{v} (ours)", f"{v} (paper)"] + (["n ours / paper"] if ours else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for a in algos:
        row = [a]
        for v in variants:
            r, p = cells.get((a, v)), paper_cell(task, a, v)
            mean = None if r is None else r["mean"]
            row.append("" if r is None else _pm(mean, r.get("stderr")))
            row.append("" if p is None else _pm(*p))
            if ours:
                n_ours = "" if mean is None else f"{normalised(mean, *ours):.2f}"
                n_paper = "" if p is None else f"{normalised(p[0], *PAPER_TLA_REFERENCES.values()):.2f}"
                row.append(f"{n_ours} / {n_paper}" if (n_ours or n_paper) else "")
        lines.append("| " + " | ".join(row) + " |")
    if ours:
        lines.append("")
        lines.append(f"n = (R − start) / (target − start): ours start {ours[0]:.0f}, target {ours[1]:.0f}; "
                     f"paper start {PAPER_TLA_REFERENCES['start']:.0f}, target {PAPER_TLA_REFERENCES['target']:.0f}.")
    return "\n".join(lines) + "\n"


def _pm(mean, se) -> str:
    if mean is None or not math.isfinite(mean):
        return "diverged"
    return f"{mean:.0f} ± {se:.0f}" if se is not None and math.isfinite(se) else f"{mean:.0f}"


def kendall_tau(x, y) -> float | None:
    """Kendall's τ-b between two paired sequences (ties counted as in scipy's default), or None when
    fewer than two pairs or either side is constant. A diverged value (None) ranks below every number.

        τ_b = (n_c − n_d) / √((n_0 − t_x)(n_0 − t_y)),  n_0 = n(n − 1)/2

    n_c, n_d: concordant and discordant pairs; t_x, t_y: pairs tied in x only or in both, and in y."""
    a, b = [-math.inf if v is None else float(v) for v in x], [-math.inf if v is None else float(v) for v in y]
    if len(a) != len(b):
        raise ValueError(f"kendall_tau needs sequences of equal length; got {len(a)} and {len(b)}.")
    concordant = discordant = tied_x = tied_y = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            dx, dy = a[i] - a[j] if a[i] != a[j] else 0.0, b[i] - b[j] if b[i] != b[j] else 0.0
            tied_x += dx == 0
            tied_y += dy == 0
            concordant += dx * dy > 0
            discordant += dx * dy < 0
    n0 = len(a) * (len(a) - 1) // 2
    denominator = math.sqrt((n0 - tied_x) * (n0 - tied_y))
    return (concordant - discordant) / denominator if denominator > 0 else None


def paper_taus(records: list[dict], task: str) -> list[dict]:
    """Kendall τ between our mean returns and the paper's, per variant of ``records`` that the paper's
    table has a column for (TLA: ten baselines × five columns; Hopper: five losses × three), over
    the algorithms both have: [{variant, paper_column, tau, n}]."""
    out = []
    for variant in dict.fromkeys(r["variant"] for r in records):
        pairs = [(r["mean"], cell[0]) for r in records if r["variant"] == variant
                 and (cell := paper_cell(task, r["algo"], variant)) is not None]
        if not pairs:
            continue
        column = "noisy" if task == "hopper" and variant.startswith("noisy-") else variant
        ours, paper = zip(*pairs)
        out.append({"variant": variant, "paper_column": column, "tau": kendall_tau(ours, paper), "n": len(pairs)})
    return out


def mean_tau(taus: list[dict]) -> float | None:
    values = [t["tau"] for t in taus if t["tau"] is not None]
    return sum(values) / len(values) if values else None


def tau_lines(taus: list[dict]) -> list[str]:
    """One Markdown bullet per column, then the mean."""
    lines = [f"- Kendall τ vs the paper, {t['variant']}: {_tau(t['tau'])} over {t['n']} algorithms" for t in taus]
    return lines + ([f"- mean τ: {_tau(mean_tau(taus))}"] if taus else [])


def _tau(value: float | None) -> str:
    return "undefined" if value is None else f"{value:+.2f}"


def findings_report(records: list[dict], references: dict | None, task: str) -> dict:
    """What ``findings.json`` holds: the four findings and Kendall τ against the paper per column."""
    taus = paper_taus(records, task)
    return {"task": task, "findings": [f.record() for f in check_findings(records, references)],
            "kendall_tau": taus, "mean_tau": mean_tau(taus)}


def loss_label(algo: str) -> str:
    """A table's name for a loss: ``mpo:runs/x/best_objective.mpo.safetensors`` → ``x`` (its run folder);
    built-in names and shipped ``mpo:NAME`` objectives as they are."""
    return Path(algo.removeprefix("mpo:")).parent.name if algo.startswith("mpo:") and "/" in algo else algo


def paired_differences(records: list[dict], algo: str) -> list[dict]:
    """Per variant, ``algo`` minus every other algorithm, paired by seed (a bench trains every
    algorithm of a cell on the same seeds and evaluates on the same key): mean and standard error
    of the per-seed differences, the number of seeds, and the difference in standard errors."""
    cells = {(r["algo"], r["variant"]): r["seed_returns"] for r in records}
    out = []
    for (other, variant), theirs in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        ours = cells.get((algo, variant))
        if other == algo or ours is None or len(ours) != len(theirs) or None in ours + theirs:
            continue
        diffs = [a - b for a, b in zip(ours, theirs, strict=True)]
        mean = sum(diffs) / len(diffs)
        se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs)) if len(diffs) > 1 else None
        out.append({"variant": variant, "algo": algo, "against": other, "mean": mean, "stderr": se,
                    "seeds": len(diffs), "z": mean / se if se else None})
    return out


def judgement(records: list[dict], algo: str, z_needed: float = 2.0) -> list[dict]:
    """Per variant, ``algo`` against the best other algorithm of the bench (the highest mean) and
    against each, paired by seed; it ``wins`` where it beats the best by ≥ ``z_needed`` standard
    errors of the paired difference (issue 16's held-out criterion)."""
    means = {(r["algo"], r["variant"]): r["mean"] for r in records}
    rows = paired_differences(records, algo)
    out = []
    for variant in sorted({r["variant"] for r in rows}):
        against = [r for r in rows if r["variant"] == variant]
        best = max(against, key=lambda r: means[(r["against"], variant)])
        out.append({"variant": variant, "algo": algo, "mean": means[(algo, variant)],
                    "best_baseline": best["against"], "best_baseline_mean": means[(best["against"], variant)],
                    "difference": best["mean"], "stderr": best["stderr"], "z": best["z"], "seeds": best["seeds"],
                    "wins": best["z"] is not None and best["z"] >= z_needed, "against": against})
    return out


def pooled_judgement(record_sets: list[list[dict]], algo: str, z_needed: float = 2.0) -> list[dict]:
    """:func:`judgement` over K held-out datasets (one bench's records each, e.g. judge folders of
    seeds 1, 2, 3): per variant present in every set, ``algo`` minus each baseline present in every
    set is the mean of the K per-dataset paired differences, s.e. √(Σ s.e.ₖ²)/K; the best baseline
    is the one with the highest mean return over the K datasets (chosen once, not per dataset)."""
    per_set = [{(r["variant"], r["against"]): r for r in paired_differences(records, algo)} for records in record_sets]
    means = [{(r["algo"], r["variant"]): r["mean"] for r in records} for records in record_sets]
    shared = set.intersection(*(set(rows) for rows in per_set)) if per_set else set()
    out = []
    for variant in sorted({v for v, _ in shared}):
        against = []
        for other in sorted(o for v, o in shared if v == variant):
            per_dataset = [rows[(variant, other)] for rows in per_set]
            if any(r["stderr"] is None for r in per_dataset):
                continue
            k = len(per_dataset)
            mean = sum(r["mean"] for r in per_dataset) / k
            se = math.sqrt(sum(r["stderr"] ** 2 for r in per_dataset)) / k
            against.append({"variant": variant, "algo": algo, "against": other, "mean": mean, "stderr": se,
                            "seeds": sum(r["seeds"] for r in per_dataset), "datasets": k, "z": mean / se if se else None,
                            "baseline_mean": sum(m[(other, variant)] for m in means) / k})
        if not against:
            continue
        best = max(against, key=lambda r: r["baseline_mean"])
        out.append({"variant": variant, "algo": algo, "mean": sum(m[(algo, variant)] for m in means) / len(means),
                    "best_baseline": best["against"], "best_baseline_mean": best["baseline_mean"],
                    "difference": best["mean"], "stderr": best["stderr"], "z": best["z"], "seeds": best["seeds"],
                    "datasets": best["datasets"], "wins": best["z"] is not None and best["z"] >= z_needed,
                    "against": against})
    return out


def merge_judgements(earlier: list[dict], new: list[dict]) -> list[dict]:
    """One folder's judgements: ``new`` replaces an earlier verdict on the same (objective, variant)
    and leaves every other (objectives judged on other variants or in other calls) in place."""
    replaced = {(v["algo"], v["variant"]) for v in new}
    return [v for v in earlier if (v["algo"], v["variant"]) not in replaced] + new
