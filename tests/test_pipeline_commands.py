"""`restlm sft`, `restlm dpo` and `restlm ppo` through `restlm.cli.main` on a tiny random Llama saved to disk:
the folders they write (model, metrics with the expected numbers, PPO's evaluations and report), the
report's proxy-up-gold-down flags against a hand check, and bad input as one line, exit 2 and no folder."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from tiny_models import save_tiny
from transformers import AutoModelForCausalLM

from restlm.atomic_files import read_jsonl
from restlm.cli import main
from restlm.data.prompts import read_prompts
from restlm.guards import flag_divergence
from restlm.policies.causal import CausalLMPolicy
from restlm.ppo.report import FLAG, ppo_report_markdown
from restlm.rewards import build_reward

COMPLETIONS = [("the cat sat", " on the mat"), ("Answer: Yes", " No no"), ("the dog ran in the park", " the bird flew"),
               ("Yes", " Answer"), ("Sentence 1: the cat", " was on the mat"), ("the bird", " flew over the tree")]
PAIRS = [("the cat sat", " on the mat", " No no"), ("Answer:", " Yes", " No"),
         ("the dog ran", " in the park", " over the same tree"), ("the bird", " flew", " sat")]
PROMPTS = [("the cat sat on", "the mat"), ("Answer with Yes or No", "Yes"), ("the dog ran in", "the park"),
           ("the bird flew over", "the same tree"), ("Sentence 2: a cat", "was on the mat"), ("Answer:", "No"),
           ("two sentences", "paraphrases of each other"), ("the same", "tree")]
EVAL_PROMPTS = [("a cat was", "on the mat"), ("Answer: No", "no"), ("the bird", "flew"), ("the dog", "ran")]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny_llama") / "model")


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def prompt_rows(pairs) -> list[dict]:
    return [{"prompt": p, "target": t} for p, t in pairs]


def weights_moved(folder, start) -> set[str]:
    saved = AutoModelForCausalLM.from_pretrained(folder).state_dict()
    original = AutoModelForCausalLM.from_pretrained(start).state_dict()
    return {n for n in original if not torch.equal(saved[n], original[n])}


def only_out_written(tmp_path, out) -> bool:
    """`out` alone appeared beside the inputs: no staging folder was left behind."""
    return not [p for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}.")]


# ---------------------------------------------------------------- sft and dpo
def test_sft_writes_the_model_and_its_metrics(model_dir, tmp_path):
    data = write_jsonl(tmp_path / "sft.jsonl", [{"prompt": p, "completion": c} for p, c in COMPLETIONS])
    out = tmp_path / "sft"
    code = main(["sft", "--model", str(model_dir), "--data", data, "--out", str(out), "--system-prompt", "Be brief.",
                 "--batch-size", "4", "--epochs", "2", "--learning-rate", "1e-3", "--warmup-ratio", "0"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # 6 rows in batches of 4: 2 steps a pass, 2 passes
    assert (metrics["rows"], metrics["rows_trained"], metrics["steps"]) == (6, 12, 4)
    assert len(metrics["losses"]) == 4 and all(math.isfinite(v) for v in metrics["losses"])
    assert metrics["first_loss"] == metrics["losses"][0] and metrics["wall_time_s"] > 0
    assert metrics["system_prompt"] == "Be brief." and metrics["config"]["batch_size"] == 4
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert weights_moved(out, model_dir)
    assert only_out_written(tmp_path, out)


def test_dpo_with_lora_starts_at_log_2_and_saves_merged(model_dir, tmp_path):
    rows = [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PAIRS]
    data, out = write_jsonl(tmp_path / "pairs.jsonl", rows), tmp_path / "dpo"
    code = main(["dpo", "--model", str(model_dir), "--data", data, "--out", str(out), "--lora-rank", "4",
                 "--batch-size", "2", "--learning-rate", "1e-2", "--warmup-ratio", "0", "--beta", "0.5"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["rows"], metrics["steps"], len(metrics["losses"])) == (4, 2, 2)
    # LoRA's B starts at zero: the policy is its reference (the base) and the first loss is -log sigmoid(0)
    assert metrics["first_loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert metrics["lora"]["r"] == 4 and metrics["config"]["beta"] == 0.5
    assert not (out / "adapter_config.json").exists()  # merged: plain transformers loads it
    moved = weights_moved(out, model_dir)
    assert moved and all("q_proj" in n or "v_proj" in n for n in moved)


# ---------------------------------------------------------------- ppo
def test_ppo_writes_metrics_evaluations_report_and_the_kept_policy(model_dir, tmp_path):
    prompts = write_jsonl(tmp_path / "prompts.jsonl", prompt_rows(PROMPTS))
    eval_prompts = write_jsonl(tmp_path / "eval.jsonl", prompt_rows(EVAL_PROMPTS))
    out = tmp_path / "ppo"
    code = main(["ppo", "--model", str(model_dir), "--prompts", prompts, "--eval-prompts", eval_prompts,
                 "--reward", "chrf", "--gold", "chrf++", "--out", str(out), "--total-steps", "4", "--eval-every", "2",
                 "--batch-size", "4", "--mini-batch-size", "2", "--ppo-epochs", "1", "--max-new-tokens", "8",
                 "--learning-rate", "1e-3", "--keep-best"])
    assert code == 0
    metrics = read_jsonl(out / "metrics.jsonl")
    assert [m["charts/step"] for m in metrics] == [1, 2, 3, 4]
    evaluations = read_jsonl(out / "evaluations.jsonl")
    assert [e["step"] for e in evaluations] == [0, 2, 4]
    assert [e["sampled_tokens"] for e in evaluations] == [0, metrics[1]["charts/sampled_tokens"],
                                                          metrics[3]["charts/sampled_tokens"]]
    assert metrics[3]["eval/proxy"] == evaluations[2]["proxy"] and metrics[1]["eval/gold"] == evaluations[1]["gold"]

    # the report: one row per evaluated step, KL and entropy from that step's metrics, the flags of the guard
    table = [line.split(" | ") for line in (out / "report.md").read_text().splitlines() if line.startswith("| ")][2:]
    proxy, gold = [e["proxy"] for e in evaluations], [e["gold"] for e in evaluations]
    kept = int(np.argmax(proxy))  # the first highest proxy, as keep_best keeps it
    assert [row[0].strip("| ") for row in table] == [f"{s}{' (kept)' if i == kept else ''}"
                                                     for i, s in enumerate([0, 2, 4])]
    assert [row[2] for row in table] == [f"{p:.4f}" for p in proxy]
    assert [row[4] for row in table] == ["—", f"{metrics[1]['ppo/kl']:.4f}", f"{metrics[3]['ppo/kl']:.4f}"]
    assert [row[5] for row in table] == ["—", f"{metrics[1]['ppo/entropy']:.4f}", f"{metrics[3]['ppo/entropy']:.4f}"]
    assert [FLAG in row[6] for row in table] == flag_divergence(proxy, gold)

    # the saved policy is the kept step's: its greedy outputs score that step's proxy again
    assert (out / "policy" / "value_head.safetensors").exists()
    policy = CausalLMPolicy.from_pretrained(str(out / "policy"), Accelerator(), max_new_tokens=8)
    examples = read_prompts(eval_prompts)
    outputs = [texts[0] for texts in policy.sample(examples, greedy=True)]
    assert float(np.mean(build_reward("chrf")(policy, examples, outputs))) == pytest.approx(proxy[kept], abs=1e-9)
    assert only_out_written(tmp_path, out)


def test_report_flags_exactly_the_steps_where_proxy_rose_and_gold_fell():
    evaluations = [{"step": 0, "sampled_tokens": 0, "proxy": 0.10, "gold": 0.50},
                   {"step": 1, "sampled_tokens": 9, "proxy": 0.20, "gold": 0.40},   # up, down: flagged
                   {"step": 2, "sampled_tokens": 18, "proxy": 0.30, "gold": 0.45},  # up, up
                   {"step": 3, "sampled_tokens": 27, "proxy": 0.25, "gold": 0.30},  # down, down
                   {"step": 4, "sampled_tokens": 36, "proxy": 0.35, "gold": 0.20}]  # up, down: flagged
    history = [{"charts/step": s, "charts/sampled_tokens": 9 * s, "ppo/mean_reward": 0.1 * s, "ppo/kl": 0.01 * s,
                "ppo/entropy": 2.0 - 0.1 * s} for s in range(1, 5)]
    text = ppo_report_markdown(evaluations, history, "model `m`, reward `chrf`.", kept_step=4)
    rows = [line for line in text.splitlines() if line.startswith("| ")][2:]
    assert [FLAG in row for row in rows] == [False, True, False, False, True]
    assert rows[1] == f"| 1 | 9 | 0.2000 | 0.4000 | 0.0100 | 1.9000 | **{FLAG}** |"
    assert rows[4].startswith("| 4 (kept) | 36 |")
    assert "Settings: model `m`, reward `chrf`." in text and "2 of 4 changes between evaluations flagged" in text


# ---------------------------------------------------------------- bad input: one line, exit 2, no folder
BAD = {
    "malformed sft row": (["sft", "--data", "{bad_jsonl}"], "bad_jsonl.jsonl:2: malformed JSON"),
    "missing data file": (["dpo", "--data", "{tmp}/missing.jsonl"], "missing.jsonl: cannot read"),
    "bad dpo loss": (["dpo", "--data", "{pairs}", "--loss-type", "nope"], "--loss-type: unknown loss"),
    "bad sft value": (["sft", "--data", "{completions}", "--batch-size", "0"], "--batch-size: must be"),
    "ppo row without prompt": (["ppo", "--prompts", "{no_prompt}", "--reward", "chrf"],
                               "no_prompt.jsonl:3: missing key 'prompt' (or 'text')"),
    "unknown reward": (["ppo", "--prompts", "{prompts}", "--reward", "nope"],
                       "--reward: unknown reward 'nope'"),
    "unknown gold": (["ppo", "--prompts", "{prompts}", "--reward", "chrf", "--gold", "nope", "--eval-prompts",
                      "{prompts}"], "--gold: unknown reward 'nope'"),
    "bad ppo value": (["ppo", "--prompts", "{prompts}", "--reward", "chrf", "--batch-size", "0"],
                      "--batch-size: must be a number > 0"),
    "keep best without eval prompts": (["ppo", "--prompts", "{prompts}", "--reward", "chrf", "--keep-best"],
                                       "--keep-best: needs --eval-prompts"),
    "unloadable model": (["sft", "--data", "{completions}", "--model", "{tmp}/no_model"], "no such file or directory"),
    # fails at the first PPO step, after the model loaded: the staged folder must go too
    "reward without targets": (["ppo", "--prompts", "{untargeted}", "--reward", "chrf", "--batch-size", "2",
                                "--max-new-tokens", "4"], "has no target to score against"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_one_line_exit_2_and_no_folder(case, model_dir, tmp_path, capsys):
    files = {"bad_jsonl": ('{"prompt": "a", "completion": "b"}\n{"prompt": "a", \n'),
             "pairs": '{"prompt": "p", "chosen": " c", "rejected": " r"}\n',
             "completions": '{"prompt": "p", "completion": " c"}\n',
             "no_prompt": '{"prompt": "p"}\n\n{"txt": "p"}\n',
             "prompts": "".join(json.dumps(r) + "\n" for r in prompt_rows(PROMPTS[:2])),
             "untargeted": '{"text": "the cat"}\n{"text": "the dog"}\n'}
    paths = {name: tmp_path / f"{name}.jsonl" for name in files}
    for name, text in files.items():
        paths[name].write_text(text)
    argv, expected = BAD[case]
    fill = {"tmp": str(tmp_path), **{name: str(path) for name, path in paths.items()}}
    argv = [arg.format(**fill) for arg in argv]
    if "--model" not in argv:
        argv += ["--model", str(model_dir)]
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("restlm: error: ") and len(err.splitlines()) == 1 and expected in err, err
    assert not out.exists() and only_out_written(tmp_path, out)


def test_an_existing_folder_is_refused_and_left_alone(model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    data = write_jsonl(tmp_path / "sft.jsonl", [{"prompt": "p", "completion": " c"}])
    assert main(["sft", "--model", str(model_dir), "--data", data, "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"


def test_config_flags_parse_bools_optionals_and_take_the_field_docstrings():
    import argparse

    from restlm.cli_flags import add_dataclass_flags, config_from_args
    from restlm.ppo import PPOConfig

    parser = argparse.ArgumentParser()
    add_dataclass_flags(parser, PPOConfig, skip=("lora", "keep_best"))
    args = parser.parse_args(["--adaptive-kl", "--max-sampled-tokens", "64", "--top-p", "0.9"])
    cfg = config_from_args(PPOConfig, args, lora=None, keep_best=None)
    assert (cfg.adaptive_kl, cfg.max_sampled_tokens, cfg.top_p, cfg.whiten_rewards) == (True, 64, 0.9, False)
    assert config_from_args(PPOConfig, parser.parse_args([]), lora=None, keep_best=None) == PPOConfig()
    assert "prompts per PPO step (default 8)" in parser.format_help()
