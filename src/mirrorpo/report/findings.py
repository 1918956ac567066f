"""The paper's qualitative findings (docs/design.md §5), checked on a leaderboard's records.

The suite is diagnostic only if it reproduces them, so ``mirrorpo bench`` checks them after every
run and writes ``findings.json``. Each check is over the paper's ten baselines and says whether it
holds, with the numbers it rests on; it is ``None`` (not checked) when the records lack its cells.

* SimPO collapses as noise grows: its drop from base to the noisiest variant is the largest.
* Losses with an SFT term (SFT, CPO, ORPO) are the most robust: one of them is best at the noisiest variant.
* LPO ≥ SLiC-HF ≥ RRHF on base (means).
* No baseline recovers the target agent: the best base mean is below the target's reference return.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

PAPER_BASELINES = ("sft", "rrhf", "slic_hf", "dpo", "ipo", "cpo", "orpo", "rdpo", "simpo", "lpo")
SFT_TERM = ("sft", "cpo", "orpo")
START = "start policy"


@dataclass(frozen=True)
class Finding:
    claim: str
    holds: bool | None  # None: the records lack the cells this claim needs
    evidence: str

    @property
    def verdict(self) -> str:
        return {True: "holds", False: "does not hold", None: "not checked"}[self.holds]

    def record(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}


def _mean(x) -> float:
    """A diverged cell (mean null) ranks below every finite one."""
    return -math.inf if x is None else float(x)


def _fmt(x: float) -> str:
    return "diverged" if not math.isfinite(x) else f"{x:.0f}"


def noisiest(variants) -> str | None:
    """The noisy-EPS variant with the largest EPS, or None."""
    noisy = [v for v in variants if v.startswith("noisy-")]
    return max(noisy, key=lambda v: float(v.removeprefix("noisy-"))) if noisy else None


def check_findings(records: list[dict], references: dict | None = None) -> list[Finding]:
    means = {(r["algo"], r["variant"]): _mean(r["mean"]) for r in records if r["algo"] in PAPER_BASELINES}
    stderr = {(r["algo"], r["variant"]): r.get("stderr") for r in records}
    noise = noisiest({v for _, v in means})
    return [_simpo_collapses(means, noise), _sft_term_robust(means, noise), _lpo_slic_rrhf(means),
            _no_baseline_recovers_target(means, stderr, references or {})]


def _simpo_collapses(means, noise) -> Finding:
    claim = "SimPO collapses as noise grows"
    drops = {a: means[(a, "base")] - means[(a, noise)] for a in PAPER_BASELINES
             if (a, "base") in means and (a, noise) in means}
    if noise is None or "simpo" not in drops or len(drops) < 2:
        return Finding(claim, None, "needs SimPO and another baseline on base and a noisy variant")
    other = max((a for a in drops if a != "simpo"), key=lambda a: drops[a])
    holds = drops["simpo"] > drops[other]
    return Finding(claim, holds, f"SimPO {_fmt(means[('simpo', 'base')])} (base) → {_fmt(means[('simpo', noise)])} "
                                 f"({noise}); largest drop of the others: {other} {_fmt(means[(other, 'base')])} → "
                                 f"{_fmt(means[(other, noise)])}")


def _sft_term_robust(means, noise) -> Finding:
    claim = "losses with an SFT term (SFT, CPO, ORPO) are the most robust to noise"
    present = {a: means[(a, noise)] for a in PAPER_BASELINES if (a, noise) in means}
    if noise is None or not set(SFT_TERM) & set(present) or not set(present) - set(SFT_TERM):
        return Finding(claim, None, "needs an SFT-term loss and another baseline on a noisy variant")
    ranked = sorted(present, key=lambda a: -present[a])
    top = ", ".join(f"{a} {_fmt(present[a])}" for a in ranked[:4])
    return Finding(claim, ranked[0] in SFT_TERM, f"{noise}: {top}")


def _lpo_slic_rrhf(means) -> Finding:
    claim = "LPO ≥ SLiC-HF ≥ RRHF on base"
    names = ("lpo", "slic_hf", "rrhf")
    if any((a, "base") not in means for a in names):
        return Finding(claim, None, "needs LPO, SLiC-HF and RRHF on base")
    lpo, slic, rrhf = (means[(a, "base")] for a in names)
    return Finding(claim, lpo >= slic >= rrhf, f"LPO {_fmt(lpo)}, SLiC-HF {_fmt(slic)}, RRHF {_fmt(rrhf)}")


def _no_baseline_recovers_target(means, stderr, references) -> Finding:
    claim = "no baseline recovers the target agent"
    base = {a: m for (a, v), m in means.items() if v == "base"}
    agents = {k: r for k, r in references.items() if k != START}
    if not base or not agents:
        return Finding(claim, None, "needs base cells and the agents' reference returns")
    target = max(agents, key=lambda k: agents[k]["mean"])
    best = max(base, key=lambda a: base[a])
    t, b = agents[target]["mean"], base[best]
    se = math.hypot(agents[target].get("stderr") or 0.0, stderr.get((best, "base")) or 0.0)
    gap = f"; gap {t - b:.0f} = {(t - b) / se:.1f} s.e." if se > 0 and math.isfinite(b) else ""
    return Finding(claim, b < t, f"best baseline {best} {_fmt(b)} vs {target} {t:.0f} ({100 * b / t:.1f}%){gap}")
