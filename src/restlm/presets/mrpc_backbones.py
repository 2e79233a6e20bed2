"""benchmarks/mrpc_smollm2_classifier.py: fine-tuning on MRPC with the larger packaged backbone, SmolLM2-135M as a
sequence classifier, full and LoRA (issue 19, item 3): is the reference's 0.8588 (ALBERT fine-tuned) reachable
with what ships here? One `restlm compare` directory per backbone setting, each summarised as mrpc_variants does
(dev accuracy of the step chosen on the validation split, its interval, the share predicted "paraphrase")."""
from __future__ import annotations

import json
from pathlib import Path

from restlm.presets.mrpc_variants import summarise as summarise_compare
from restlm.results import REFERENCE_MRPC

REFERENCE = REFERENCE_MRPC["table1"]["fine-tuned"]  # ALBERT fine-tuned on MRPC, the reference experiment's figure


def summarise(folders: dict[str, Path], minilm: Path | None = None) -> dict:
    """Rows per setting name (its compare directory) and, when `minilm` (mrpc_variants.json) exists, MiniLM's
    fine-tuning row of the same task beside them."""
    rows, commands, splits = [], {}, None
    for name, folder in folders.items():
        if not (folder / "compare.json").exists():
            continue
        summary = summarise_compare(folder)
        commands[name], splits = summary["command"], summary["splits"]
        for m in summary["methods"]:
            rows.append({"setting": name, "model": summary["model"], "lora_rank": summary["lora_rank"],
                         "learning_rate": summary["learning_rate"], **m})
    baseline = None
    if minilm is not None and minilm.exists():
        variants = json.loads(minilm.read_text())
        sft = next((m for m in variants["methods"] if m["method"] == "sft"), None)
        if sft:
            baseline = {"model": variants["model"], "seeds": sft["seeds"], "dev_accuracy": sft["dev_accuracy"],
                        "dev_accuracy_ci95": sft["dev_accuracy_ci95"]}
    from restlm.machine import machine

    return {"machine": machine(), "reference_fine_tuned": REFERENCE, "rows": rows, "minilm_sft": baseline,
            "splits": splits, "commands": commands}


def markdown(summary: dict) -> str:
    def ci(pair) -> str:
        return "—" if pair is None else f"[{pair[0]:.4f}, {pair[1]:.4f}]"

    lines = ["# MRPC fine-tuning with SmolLM2-135M as a sequence classifier (full and LoRA)", "",
             f"The reference's fine-tuned ALBERT: {summary['reference_fine_tuned']:.4f}. Each row's step is chosen "
             f"on the validation split (carved from the training pairs; splits {summary['splits']}) and scored on "
             f"dev; intervals: 95% bootstrap over seeds and dev pairs. Machine: {summary['machine']}.", "",
             "| setting | method | LoRA rank | lr | seeds | dev accuracy | 95% CI | predicted paraphrase | "
             "train time (s) |", "|---" * 9 + "|"]
    for r in summary["rows"]:
        lines.append(f"| {r['setting']} | {r['method']} | {r['lora_rank'] or '—'} | {r['learning_rate']:g} | "
                     f"{r['seeds']} | {r['dev_accuracy']:.4f} | {ci(r['dev_accuracy_ci95'])} | "
                     f"{r['predicted_positive']:.3f} | {r['wall_time_s']:.0f} |")
    if base := summary["minilm_sft"]:
        lines += ["", f"MiniLM-L6 fine-tuned on the same splits (mrpc_variants.json, {base['seeds']} seed(s)): "
                  f"{base['dev_accuracy']:.4f} {ci(base['dev_accuracy_ci95'])}."]
    lines += ["", *[f"- `{name}`: `{command}`" for name, command in summary["commands"].items()]]
    return "\n".join(lines) + "\n"
