"""Task-neutral tables: every metric at every step, and the reward-hacking guard.

The guard sets the reward the policy was trained for (on held-out inputs) beside a metric the
reward never saw (BLEU for a chrF reward, and the other way round) and flags every step where
the reward rose while that metric fell: the signature of reward hacking.
"""
from __future__ import annotations

from restlm.guards import flag_divergence
from restlm.report.cells import group_cells, step_label, values
from restlm.report.tables import NONE, markdown_table


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _fmt(value: float | None, digits: int = 4) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


# guards logged per Improve step: drift toward the Grow samples, entropy, and (newer runs) a real KL
GUARD_COLUMNS = [("grow_log_prob_gain", "Log-prob gain on Grow samples"), ("token_entropy", "Token entropy"),
                 ("kl_to_grow_policy", "KL to Grow policy")]
ALWAYS_SHOWN = {"grow_log_prob_gain", "token_entropy"}


def steps_table_markdown(results: dict) -> str:
    """Rows: the untrained and baseline rows, then every (N, G, I) step; columns: the task's
    metrics (results["metric_columns"]), threshold, kept, distinct samples, the guards (the KL
    column only when some step logged it); means over seeds."""
    columns = results.get("metric_columns") or [["dev_accuracy", "dev accuracy"]]
    cells = results.get("cells", [])
    guards = [(key, title) for key, title in GUARD_COLUMNS
              if key in ALWAYS_SHOWN or any(cell.get(key) is not None for cell in cells)]
    header = (["Row", "Seeds"] + [title for _, title in columns] + ["Threshold", "Kept", "Distinct samples"]
              + [title for _, title in guards] + ["Wall time (s)"])
    rows = []
    for name, metrics in (results.get("baselines") or {}).items():
        present = [metrics.get(key) for key, _ in columns]
        if any(present):
            seeds = max(len(v) for v in present if v)
            rows.append([name, str(seeds)] + [_fmt(_mean(v or [])) for v in present] + [NONE] * (len(guards) + 4))
    for n, steps in group_cells(cells).items():
        for step, by_seed in steps.items():
            label = f"{'fine-tuned ' if step == (0, 0) else ''}{step_label(step)}, N={n}"
            rows.append([label, str(len(by_seed))] + [_fmt(_mean(values(by_seed, key))) for key, _ in columns]
                        + [_fmt(_mean(values(by_seed, "threshold")), 3), _fmt(_mean(values(by_seed, "kept")), 0),
                           _fmt(_mean(values(by_seed, "distinct_samples")), 3)]
                        + [_fmt(_mean(values(by_seed, key)), 3) for key, _ in guards]
                        + [_fmt(_mean(values(by_seed, "stage_wall_time_s")), 0)])
    return markdown_table(header, rows) if rows else "_No steps in the results._"


def guard_table_markdown(results: dict) -> str | None:
    """The guard table per N (reward, held-out metric, the change of each, flag); None without a guard."""
    guard = results.get("guard")
    if not guard:
        return None
    reward_key, heldout_key = guard["reward"], guard["heldout"]
    blocks = []
    for n, steps in group_cells(results.get("cells", [])).items():
        labels, rewards, heldout = [], [], []
        for step, by_seed in steps.items():
            r, h = _mean(values(by_seed, reward_key)), _mean(values(by_seed, heldout_key))
            if r is not None and h is not None:
                labels.append(step_label(step))
                rewards.append(r)
                heldout.append(h)
        flags = flag_divergence(rewards, heldout)
        rows = [[label, _fmt(r), _fmt(r - rewards[i - 1]) if i else NONE, _fmt(h), _fmt(h - heldout[i - 1]) if i else NONE,
                 "**reward up, held-out down**" if flag else ""]
                for i, (label, r, h, flag) in enumerate(zip(labels, rewards, heldout, flags))]
        header = ["Step", f"Reward ({reward_key})", "Δ reward", f"Held-out ({heldout_key})", "Δ held-out", "Flag"]
        blocks.append(f"### N = {n}\n\n" + markdown_table(header, rows) +
                      f"\n\n{sum(flags)} of {max(len(flags) - 1, 0)} step changes flagged.")
    return "\n\n".join(blocks) if blocks else None
