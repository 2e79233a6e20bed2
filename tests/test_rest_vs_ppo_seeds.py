"""benchmarks/rest_vs_ppo_seeds.py: runs of rest_vs_ppo.py with different seeds, averaged per method, and
ReST's gold against the others averaged over seeds and bootstrapped over the same held-out prompts."""
import json
import sys
from pathlib import Path

import pytest
from sacrebleu.metrics import BLEU

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import rest_vs_ppo_seeds  # noqa: E402

from restlm.data.parallel import load_multi30k  # noqa: E402

SETTINGS = {"prompts": 4, "dev_prompts": 0, "eval_prompts": 4, "sft_examples": 4, "seed": 0, "improve_lr": 1e-5}
REFS = [e.target for e in load_multi30k(None, "val", limit=4)]
SOURCES = [e.text for e in load_multi30k(None, "val", limit=4)]


def write_run(path: Path, seed: int, rest_outputs: list[str], ppo_outputs: list[str], rest_gold: float,
              ppo_gold: float, **changes) -> str:
    def record(method, outputs, gold, kl):
        return {"method": method, "proxy": 0.5, "gold": gold, "kl": kl, "distinct2": 0.8, "sampled_tokens": 100,
                "wall_time_s": 10.0 * (seed + 1), "heldout_outputs": outputs,
                "greedy_examples": [{"prompt": SOURCES[0], "output": outputs[0]}]}
    task = {"name": "translation", "settings": {**SETTINGS, "seed": seed, **changes}, "eval_prompts": 4,
            "methods": [record("rest", rest_outputs, rest_gold, 1.0 + seed), record("ppo", ppo_outputs, ppo_gold, 0.5)]}
    path.write_text(json.dumps({"tasks": [task]}))
    return str(path)


def bleu(outputs):
    return BLEU().corpus_score(outputs, [REFS]).score


def test_metrics_are_averaged_and_the_gold_difference_is_the_mean_over_seeds(tmp_path):
    half = REFS[:2] + ["a dog runs"] * 2
    words = [" ".join(r.split()[:3]) for r in REFS]
    files = [write_run(tmp_path / "s0.json", 0, REFS, half, 100.0, bleu(half)),
             write_run(tmp_path / "s1.json", 1, half, words, bleu(half), bleu(words))]
    rest_vs_ppo_seeds.main([*files, "--tasks", "translation", "--bootstrap", "50", "--out", str(tmp_path / "seeds")])
    task = json.loads((tmp_path / "seeds.json").read_text())["tasks"][0]
    rest, ppo = task["methods"]
    assert task["seeds"] == [0, 1]
    assert rest["method"] == "rest" and rest["kl"] == pytest.approx(1.5) and rest["wall_time_s"] == pytest.approx(15.0)
    assert rest["per_seed"]["gold"] == [100.0, pytest.approx(bleu(half))]
    diff = task["gold_difference"]["rest-ppo"]
    expected = (100.0 + bleu(half)) / 2 - (bleu(half) + bleu(words)) / 2
    assert diff["diff"] == pytest.approx(expected) and diff["ci95"][0] <= diff["diff"] <= diff["ci95"][1]
    assert diff["per_seed"] == [pytest.approx(100.0 - bleu(half)), pytest.approx(bleu(half) - bleu(words))]
    summary = json.loads((tmp_path / "seeds.json").read_text())
    assert summary["goal"]["rest_ahead_of_ppo_on_gold"] == {"translation": True} and not summary["goal"]["met"]
    assert "| rest |" in (tmp_path / "seeds.md").read_text()


@pytest.mark.parametrize(("change", "message"), [({"improve_lr": 3e-6}, "more than the seed \\(improve_lr\\)"),
                                                 ({"seed": 0}, "share a seed")])
def test_runs_that_differ_in_more_than_the_seed_or_share_one_are_refused(tmp_path, change, message):
    files = [write_run(tmp_path / "s0.json", 0, REFS, REFS, 100.0, 100.0),
             write_run(tmp_path / "s1.json", change.pop("seed", 1), REFS, REFS, 100.0, 100.0, **change)]
    with pytest.raises(SystemExit, match=message):
        rest_vs_ppo_seeds.main([*files, "--tasks", "translation", "--out", str(tmp_path / "seeds")])
    assert not (tmp_path / "seeds.json").exists()


def test_a_missing_task_or_file_is_one_line(tmp_path):
    files = [write_run(tmp_path / "s0.json", 0, REFS, REFS, 100.0, 100.0), str(tmp_path / "gone.json")]
    with pytest.raises(SystemExit, match="cannot read .*gone.json"):
        rest_vs_ppo_seeds.main([*files, "--tasks", "translation"])
    with pytest.raises(SystemExit, match="has no sentiment task"):
        rest_vs_ppo_seeds.main([files[0], files[0], "--tasks", "sentiment"])
