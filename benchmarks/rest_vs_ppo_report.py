"""The goal check and the readable report of benchmarks/rest_vs_ppo.py."""
from __future__ import annotations

from rest_vs_ppo_tasks import TASKS

from restlm.guards import flag_divergence

GOLD_NAMES = {"sentiment": "gold p(positive)", "translation": "gold corpus BLEU"}
PROXY_NAMES = {"sentiment": "proxy p(positive)", "translation": "proxy chrF/100"}
NOTES = [
    ("All methods start from the task's start policy (the sft row) and optimise the same proxy reward, "
     "normalised to [0, 1]: p(positive) of the reward classifier for sentiment, sentence chrF / 100 for translation."),
    ("proxy and gold: of greedy outputs of the held-out prompts (translation's gold: corpus BLEU, sacrebleu "
     "defaults). kl: mean over samples (temperature 1, from the method's policy) of log p - log p_start, whole-output "
     "log-probs with EOS appended (a sample cut at max_new_tokens is scored as if it ended there); an unbiased "
     "estimate, so on few samples it can come out negative. distinct2: distinct bigrams / bigrams over the same "
     "samples. proxy_sampled and gold_sampled in the JSON: the same metrics on those samples."),
    ("sampled_tokens: tokens generated while training (EOS included). ReST: its Grow steps. DPO: ReST's first "
     "Grow step, whose samples it ranks (their sampling time is in rest's train time, not dpo's). PPO runs until "
     "it has sampled at least ReST's tokens (at most --ppo-steps steps), so its budget may pass ReST's by one step."),
    ("Step selection, the same rule for ReST and PPO: each is evaluated at every step (ReST: after each Improve "
     "step; PPO: every --eval-every steps and at its last) and ends at the step whose greedy outputs on the "
     "--dev-prompts dev prompts have the highest proxy (the start included). The gold metric never selects. "
     "train time excludes these evaluations."),
    ("Sentiment prompts have no reference outputs, so ReST's Improve steps train on the kept samples alone; "
     "translation adds the filtered original pairs."),
    ("One seed. The interval of each gold difference is a paired percentile bootstrap over the held-out prompts "
     "(the same resampled prompts for both methods; translation's corpus BLEU recomputed on each resample): it "
     "covers the noise of the prompt sample, not that of the training run (another seed)."),
]


def goal(results: dict) -> dict:
    """ReST ahead of PPO on the gold metric in every task (both tasks asked for), and whether the
    bootstrap interval of the difference lies above zero."""
    ahead, clear = {}, {}
    for task in results["tasks"]:
        rows = {m["method"]: m for m in task["methods"]}
        if "rest" in rows and "ppo" in rows:
            ahead[task["name"]] = rows["rest"]["gold"] > rows["ppo"]["gold"]
            diff = task.get("gold_difference", {}).get("rest-ppo")
            clear[task["name"]] = bool(diff and diff["ci95"][0] > 0)
    return {"rest_ahead_of_ppo_on_gold": ahead, "ahead_beyond_prompt_noise": clear,
            "met": set(ahead) == set(TASKS) and all(ahead.values())}


def differences(task: dict) -> list[str]:
    """Gold of ReST minus each other method, with its bootstrap interval."""
    found = task.get("gold_difference") or {}
    if not found:
        return []
    lines = [f"Gold of ReST minus gold of each other method, on the same {task['eval_prompts']} held-out prompts "
             "(95% paired bootstrap interval):", ""]
    for pair, d in found.items():
        verdict = "beyond" if d["excludes_zero"] else "within"
        lines.append(f"- {pair.replace('-', ' - ')}: {d['diff']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}], "
                     f"{verdict} the noise of the prompt sample")
    return lines + [""]


def detail(m: dict) -> str:
    return what_ran(m) + carried(m)


def carried(m: dict) -> str:
    if not m.get("carried_from"):
        return ""
    differing = ", ".join(f"{k}={v}" for k, v in m["carried_settings"].items())
    return f"; carried from `{m['carried_from']}`" + (f" (that run had {differing})" if differing else "")


def what_ran(m: dict) -> str:
    chosen = f"; ends at {m['chosen_step']}" if "chosen_step" in m else ""
    if m["method"] == "rest":
        return "kept " + "/".join(str(i["kept"]) for i in m["improve"]) + " rows per Improve step" + chosen
    if m["method"] == "dpo":
        return f"{m['pairs']} pairs, {m['steps']} steps"
    if m["method"] == "ppo":
        return (f"{m['steps']} step(s), token budget {m['token_budget']}, "
                f"train reward {m['first_reward']:.3f} -> {m['last_reward']:.3f}{chosen}")
    return m.get("start", "")


def guard_table(task: dict, m: dict) -> list[str]:
    """Every evaluated step of a method: dev proxy, held-out proxy and gold; flagged where the proxy rose
    and the gold fell since the step before (guards.flag_divergence)."""
    steps = m.get("steps_evaluated") or []
    if len(steps) < 2:
        return []
    flags = flag_divergence([s["proxy"] for s in steps], [s["gold"] for s in steps])
    lines = [f"{m['method']}, by step:", "", f"| step | sampled tokens | dev proxy | held-out proxy | "
             f"{GOLD_NAMES[task['name']]} | proxy up, gold down |", "|---|---:|---:|---:|---:|---|"]
    for s, flag in zip(steps, flags, strict=True):
        chosen = " (chosen)" if s["step"] == m.get("chosen_step") else ""
        lines.append(f"| {s['step']}{chosen} | {s['sampled_tokens']} | {s['dev_proxy']:.4f} | {s['proxy']:.4f} | "
                     f"{s['gold']:.4f} | {'**yes**' if flag else ''} |")
    return lines + [""]


def every_task_carried(results: dict) -> bool:
    """Whether every task was carried over whole from another results file (--carry-task)."""
    return bool(results["tasks"]) and all(t.get("carried_from") for t in results["tasks"])


def markdown(results: dict) -> str:
    total = ("Total time: every task was carried over whole from its own results file, which gives its time."
             if every_task_carried(results) else f"Total time: {results['benchmark_wall_time_s']:.0f} s (over every "
             "invocation that wrote these results; evaluation and the sentiment classifiers included).")
    lines = ["# ReST against PPO and DPO on the same reward, SmolLM2-135M-Instruct", "",
             f"Machine: {results['machine']}  ", total, ""]
    for task in results["tasks"]:
        lines += [f"## {task['name']}", "", (f"{task['prompts']} training prompts, {task.get('dev_prompts', 0)} dev "
                                             f"prompts, {task['eval_prompts']} held-out prompts; proxy reward "
                                             f"`{task['proxy']}`.")]
        for role in ("reward_model", "gold_model"):
            if role in task:
                lines.append(f"Sentiment {role.replace('_', ' ')} (MiniLM): held-out accuracy "
                             f"{task[role]['eval_accuracy']:.3f}, {task[role]['train_examples']} training sentences.")
        if "train_prompts_unseen_by_both_models" in task:
            unseen = task.get("heldout_prompts_unseen_by_both_models", task["eval_prompts"])
            lines.append(f"Held-out prompts: {unseen} openings of sentences neither classifier trained on, then "
                         f"{task['eval_prompts'] - unseen} of the gold classifier's sentences (never the proxy's); "
                         f"training prompts: {task['train_prompts_unseen_by_both_models']} openings neither saw, then "
                         "openings of the proxy classifier's sentences (dev prompts likewise). Both classifiers score "
                         "the continuation alone.")
        lines += [f"Command: `{task['command']}`"]
        if task.get("carried_from"):
            lines += [f"Carried over whole from `{task['carried_from']}` (machine: {task['machine']}; its time is not in "
                      "the total above)."]
        lines += ["", (f"| method | {PROXY_NAMES[task['name']]} | {GOLD_NAMES[task['name']]} | KL to start "
                       "| distinct-2 | sampled tokens | train time (s) | eval time (s) | |"),
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for m in task["methods"]:
            lines.append(f"| {m['method']} | {m['proxy']:.4f} | {m['gold']:.4f} | {m['kl']:.3f} | {m['distinct2']:.3f} "
                         f"| {m['sampled_tokens']} | {m['wall_time_s']:.0f} | {m['eval_time_s']:.0f} | {detail(m)} |")
        lines.append("")
        lines += differences(task)
        for m in task["methods"]:
            if m["method"] in ("rest", "ppo"):
                lines += guard_table(task, m)
        for m in task["methods"]:
            example = m["greedy_examples"][0]
            lines.append(f"- {m['method']}: `{example['prompt']}` -> `{example['output']}`")
        lines += ["", f"Settings: {', '.join(f'{k}={v}' for k, v in task['settings'].items())}.", ""]
    g = results["goal"]
    clear = g.get("ahead_beyond_prompt_noise", {})
    verdict = ", ".join(f"{t}: {'yes' if ok else 'no'}" + (" (beyond the prompt noise)" if clear.get(t) else "")
                        for t, ok in g["rest_ahead_of_ppo_on_gold"].items()) or "not run"
    lines += [(f"**Goal** (ReST ahead of PPO on the gold metric in both tasks): {verdict}. "
               f"Met: {'yes' if g['met'] else 'no'}."), ""]
    lines += [f"- {note}" for note in results["notes"]]
    return "\n".join(lines) + "\n"
