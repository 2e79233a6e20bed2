"""benchmarks/mrpc_variants.py: what a finished `restlm compare` of configs/compare_mrpc.yaml shows (issue 19,
items 2 and 3). Per method: dev accuracy at the step chosen on the validation split (mean over seeds, its
interval, the paired difference against fine-tuning over seeds and dev pairs), the optimistic figure of the step
dev itself would pick, and the share of dev pairs predicted "paraphrase"; then the reference's Table 2 grid
(N=100: `rest`, N=1000: `rest_n1000`) as dev accuracy per step, mean over seeds."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from restlm import run_layout as layout

GRID = ("rest", "rest_n1000")  # ReST as configured, and at N=1000


def summarise(compare_dir: str | Path) -> dict:
    """The benchmark's summary of a comparison directory (compare.json, state.json, config.json)."""
    from restlm.machine import machine

    folder = Path(compare_dir)
    compare = json.loads((folder / layout.COMPARE_SUMMARY).read_text())
    stages = json.loads((folder / "state.json").read_text())["stages"]
    experiment = json.loads((folder / "config.json").read_text())["experiment"]
    variants = experiment["variants"]
    methods, grid = [], []
    for entry in compare["methods"]:
        name, seeds = entry["method"], entry["by_seed"]
        finals = [stages[layout.method_final(seed, name)] for seed in range(compare["seeds"])]
        methods.append({
            "method": name, "changes": {k: v for k, v in variants.get(name, {}).items() if k != "method"},
            "seeds": compare["seeds"], "dev_accuracy": entry["gold"], "dev_accuracy_ci95": entry["gold_ci95"],
            "minus_sft": entry.get("gold_minus_sft"), "minus_sft_ci95": entry.get("gold_minus_sft_ci95"),
            "dev_picked_dev_accuracy": float(np.mean([max(s["dev_accuracy"] for s in r["steps"]) for r in seeds])),
            "predicted_positive": float(np.mean([np.mean(np.array(f["heldout_outputs"]) == 1) for f in finals])),
            "chosen_steps": entry["chosen_steps"], "wall_time_s": entry["wall_time_s"]})
        if name in GRID:
            size = variants.get(name, {}).get("rest", {}).get("grow_sizes", experiment["rest"]["grow_sizes"])[0]
            for i, step in enumerate(seeds[0]["steps"]):
                dev = [r["steps"][i]["dev_accuracy"] for r in seeds if len(r["steps"]) > i]
                start = [r["steps"][0]["dev_accuracy"] for r in seeds if len(r["steps"]) > i]
                grid.append({"N": size, "step": step["step"], "seeds": len(dev), "dev_accuracy": float(np.mean(dev)),
                             "dev_accuracy_std": float(np.std(dev, ddof=1)) if len(dev) > 1 else None,
                             "minus_start": float(np.mean(np.subtract(dev, start)))})
    by_name = {m["method"]: m for m in methods}
    goal = None
    if "rest" in by_name and by_name["rest"]["minus_sft_ci95"] is not None:
        low = by_name["rest"]["minus_sft_ci95"][0]
        goal = {"rest_minus_sft": by_name["rest"]["minus_sft"], "ci95": by_name["rest"]["minus_sft_ci95"],
                "goal": "95% CI above 0 over 5 seeds", "met": bool(low > 0 and compare["seeds"] >= 5)}
    return {"machine": machine(), "command": compare["command"], "model": compare["model"],
            "lora_rank": experiment["model"]["lora_rank"], "learning_rate": experiment["train"]["learning_rate"],
            "seeds": compare["seeds"], "splits": compare["splits"], "methods": methods, "grid": grid, "goal": goal}


def markdown(summary: dict) -> str:
    def ci(pair, sign: str = "+") -> str:  # signed for differences, plain for accuracies
        return "—" if pair is None else f"[{pair[0]:{sign}.4f}, {pair[1]:{sign}.4f}]"

    lines = [f"# ReST on MRPC against fine-tuning, and its variants ({summary['model']})", "",
             f"{summary['seeds']} seed(s); splits {summary['splits']}. Each method starts from the same fine-tuned "
             "policy of its seed; its step is chosen on the validation split (10% of the training pairs) and scored "
             "on dev. Intervals: 95% bootstrap over seeds and dev pairs, paired for differences. 'Dev-picked' is the "
             "best step by dev itself: optimistic, shown for comparison only. "
             f"Machine: {summary['machine']}. Command: `{summary['command']}`.", "",
             "| method | changes | dev accuracy | 95% CI | − SFT (95% CI) | dev-picked (optimistic) | predicted "
             "paraphrase | chosen steps | train time (s) |", "|---" * 9 + "|"]
    for m in summary["methods"]:
        changes = ", ".join(f"{k}: {json.dumps(v)}" for k, v in m["changes"].items()) or "—"
        diff = f"{m['minus_sft']:+.4f} {ci(m['minus_sft_ci95'])}" if m["minus_sft"] is not None else "—"
        lines.append(f"| {m['method']} | {changes} | {m['dev_accuracy']:.4f} | {ci(m['dev_accuracy_ci95'], '')} | {diff} | "
                     f"{m['dev_picked_dev_accuracy']:.4f} | {m['predicted_positive']:.3f} | "
                     f"{', '.join(m['chosen_steps'])} | {m['wall_time_s']:.0f} |")
    if summary["grid"]:
        lines += ["", "Table 2 of the reference, dev accuracy per step (every step, not a chosen one):", "",
                  "| N | step | seeds | dev accuracy | std | − start |", "|---" * 6 + "|"]
        for g in summary["grid"]:
            std = f"{g['dev_accuracy_std']:.4f}" if g["dev_accuracy_std"] is not None else "—"
            lines.append(f"| {g['N']} | {g['step']} | {g['seeds']} | {g['dev_accuracy']:.4f} | {std} | "
                         f"{g['minus_start']:+.4f} |")
    if summary["goal"]:
        g = summary["goal"]
        lines += ["", f"- Goal (ReST − fine-tuning, chosen on validation: {g['goal']}): {g['rest_minus_sft']:+.4f} "
                  f"{ci(g['ci95'])}, {'met' if g['met'] else 'not met'}."]
    return "\n".join(lines) + "\n"
