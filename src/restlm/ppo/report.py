"""report.md of a PPO run: every evaluated step with its proxy, gold, KL and entropy, and the guard.

The guard (`guards.flag_divergence`) flags each evaluated step where the proxy reward rose and
the gold metric fell since the evaluation before: the signature of a policy gaming its reward.
"""
from __future__ import annotations

from collections.abc import Sequence

from restlm.guards import flag_divergence

FLAG = "proxy up, gold down"
NONE = "—"


def ppo_report_markdown(evaluations: Sequence[dict], history: Sequence[dict], settings: str,
                        kept_step: int | None = None) -> str:
    """The report as markdown.

    evaluations: `PPO.evaluations` (step, sampled_tokens, proxy and, with a gold metric, gold).
    history: `PPO.train`'s metrics, one dict per step (KL and entropy are read from there; the
    start, step 0, has none). settings: one line. kept_step: the step `keep_best` restored.
    """
    from restlm.report.tables import markdown_table

    lines = ["# PPO", "", f"Settings: {settings}", ""]
    if history:
        first, last = history[0], history[-1]
        lines += [(f"{len(history)} steps, {last['charts/sampled_tokens']} sampled tokens; mean training reward "
                   f"{first['ppo/mean_reward']:.4f} at step 1, {last['ppo/mean_reward']:.4f} at step "
                   f"{last['charts/step']}; KL to the start {last['ppo/kl']:.4f} at the end."), ""]
    if not evaluations:
        return "\n".join(lines + ["No evaluation prompts (--eval-prompts): no step was evaluated."]) + "\n"
    by_step = {m["charts/step"]: m for m in history}
    has_gold = all("gold" in e for e in evaluations)
    flags = flag_divergence([e["proxy"] for e in evaluations], [e["gold"] for e in evaluations]) if has_gold \
        else [False] * len(evaluations)
    rows = []
    for e, flag in zip(evaluations, flags, strict=True):
        step = by_step.get(e["step"], {})
        rows.append([f"{e['step']}{' (kept)' if e['step'] == kept_step else ''}", str(e["sampled_tokens"]),
                     _number(e["proxy"]), _number(e.get("gold")), _number(step.get("ppo/kl")),
                     _number(step.get("ppo/entropy")), f"**{FLAG}**" if flag else ""])
    header = ["step", "sampled tokens", "proxy", "gold", "KL", "entropy", FLAG]
    lines += ["Greedy outputs on the evaluation prompts; KL and entropy are those of the step's own samples.", "",
              markdown_table(header, rows), ""]
    if has_gold:
        lines.append(f"{sum(flags)} of {len(flags) - 1} changes between evaluations flagged {FLAG}.")
    else:
        lines.append("No gold metric (--gold): nothing to flag.")
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return NONE if value is None else f"{value:.4f}"
