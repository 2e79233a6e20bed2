"""compare.json: per method, its proxy and gold on the held-out inputs (means over seeds), their
intervals (a bootstrap over seeds and held-out inputs), gold against ReST's and SFT's (paired), KL to the start,
distinct-2, sampled tokens, wall time, and every evaluated step of every seed."""
from __future__ import annotations

import numpy as np

from restlm import run_layout as layout
from restlm.machine import machine
from restlm.methods import in_run_order
from restlm.stats import nested_bootstrap


def summarise_compare(run, task, settings, keys: tuple[str, str, str]) -> dict:
    examples = task.heldout()
    rows = len(examples)
    records = {name: [run.stage(layout.method_final(seed, name)) for seed in range(settings.seeds)]
               for name in in_run_order(settings.methods)}
    gold_of = {name: [task.gold_of_rows(examples, r["heldout_outputs"], r["gold_scores"]) for r in rs]
               for name, rs in records.items()}
    methods = []
    for name, rs in records.items():
        zero = [(f, _zero) for f in gold_of[name]]
        entry = {"method": name,
                 "proxy": _mean(r["proxy"] for r in rs), "gold": _mean(r["gold"] for r in rs),
                 "gold_ci95": nested_bootstrap(zero, rows, settings.bootstrap, seed=0)["ci95"],
                 "gold_minus_rest_ci95": None, "gold_minus_sft_ci95": None,
                 "kl": _mean(r["kl"] for r in rs), "kl_estimator": kl_estimator(rs),
                 "distinct2": _mean(r["distinct2"] for r in rs),
                 "sampled_tokens": _mean(r["sampled_tokens"] for r in rs),
                 "wall_time_s": _mean(r["wall_time_s"] for r in rs),
                 "chosen_steps": [r["chosen_step"] for r in rs],
                 "by_seed": [{k: v for k, v in r.items()
                             if k not in ("heldout_outputs", "gold_scores", "other_heldout_outputs", "method")}
                             for r in rs]}
        for baseline in ("rest", "sft"):  # paired over seeds and held-out inputs
            if baseline in records and name != baseline:
                diff = nested_bootstrap(list(zip(gold_of[name], gold_of[baseline])), rows, settings.bootstrap, seed=0)
                entry.update({f"gold_minus_{baseline}": diff["diff"], f"gold_minus_{baseline}_ci95": diff["ci95"]})
        methods.append(entry)
    selection, proxy, gold = keys
    return {"command": settings.command, "machine": machine(),
            "task": task.config.task, "data": task.data_name(), "model": task.config.model.name,
            "seeds": settings.seeds, "heldout_inputs": rows, "budget": settings.budget, "eval_samples": settings.eval_samples,
            "metrics": {"selection": selection, "proxy": proxy, "gold": gold},
            "splits": {name: len(split) for name, split in task.splits().items()},
            "methods": methods}


def _zero(rows) -> float:
    return 0.0


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def kl_estimator(records: list[dict]) -> str:
    """How the records' `kl` was measured: `exact` (summed over the vocabulary at each sampled position; records
    that also keep `kl_sampled`) or `sampled` (the log-ratio at the sampled tokens, records made before session 19)."""
    return "exact" if all("kl_sampled" in r for r in records) else "sampled"
