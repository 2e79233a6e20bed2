"""The translation task end to end on a tiny random Llama and a toy parallel corpus: every metric
recorded at every step, the reward-hacking guard in the report, the guard metrics of each Improve
step, ReST-EM restarting from the fine-tuned policy; evaluate() against hand values with a policy
that copies the references; and SmolLM2 on a few Multi30k sentences (marked real)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from tiny_models import save_tiny

from restlm import run_layout as layout
from restlm.atomic_files import read_jsonl
from restlm.config import load_config
from restlm.data.examples import Example
from restlm.experiment import Experiment
from restlm.runs import StageRunner

# references of four words or more, so that a perfect corpus has 4-grams and BLEU 100
PAIRS = [("die Katze sitzt", "the cat sat down"), ("der Hund rennt", "the dog ran away"), ("ein Vogel fliegt", "a bird flew by"),
         ("der Fisch schwimmt", "the fish swam home"), ("die Katze rennt", "the cat ran off"), ("ein Hund sitzt", "a dog sat there")]


def write_corpus(root: Path) -> Path:
    folder = root / "toy"
    folder.mkdir(parents=True)
    for split, rows in (("train", PAIRS), ("val", PAIRS[:3]), ("test", PAIRS[3:])):
        (folder / f"{split}.de").write_text("".join(de + "\n" for de, _ in rows))
        (folder / f"{split}.en").write_text("".join(en + "\n" for _, en in rows))
    return root


def tiny_translation_config(tmp_path: Path, *extra: str):
    model = save_tiny(tmp_path / "model")
    overrides = [
        "task=translation", f"data.root={write_corpus(tmp_path / 'data')}", "data.path=toy", "data.dev_split=val",
        f"model.name={model}", "train.batch_size=4", "train.eval_batch_size=4", "train.epochs=1",
        "translation.test_splits=[test]", "translation.out_of_domain=false", "translation.max_new_tokens=6",
        "translation.system_prompt=null", "rest.grow_steps=2", "rest.improve_steps=1", "rest.grow_sizes=[3]",
        "rest.samples_per_input=2", "rest.sampling=sample", "rest.reward=chrf", "rest.normalise_reward=true",
        "rest.threshold=percentile", "rest.thresholds=[0.0]", "rest.guard_samples=4",
        "baselines.zero_shot.backend=none", "run.histograms=false", "run.tensorboard=false",
        f"run.output_dir={tmp_path / 'run'}", *extra]
    return load_config(None, overrides)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("translation")
    experiment = Experiment(tiny_translation_config(tmp_path))
    return experiment, experiment.run_all()


def test_every_step_has_every_metric(finished):
    _, results = finished
    assert [(c["G"], c["I"]) for c in results["cells"]] == [(0, 0), (1, 1), (2, 1)]
    for cell in results["cells"]:
        for key in ("dev_reward", "dev_bleu", "dev_chrf", "test_bleu", "test_chrf"):
            assert 0 <= cell[key] <= (1 if key == "dev_reward" else 100)
    assert results["primary_metric"] == "dev_reward"
    assert results["guard"] == {"reward": "dev_reward", "heldout": "dev_bleu"}
    assert "pretrained, prompted (no fine-tuning)" in results["baselines"]


def test_improve_steps_log_the_guards(finished):
    experiment, results = finished
    for cell in results["cells"][1:]:
        assert math.isfinite(cell["grow_log_prob_gain"]) and cell["token_entropy"] > 0
        assert math.isfinite(cell["kl_to_grow_policy"])
        assert 0 < cell["distinct_2"] <= 1 and 0.5 <= cell["distinct_samples"] <= 1
    rows = read_jsonl(experiment.run.path / layout.grown_file(layout.grow_stage(layout.trajectory(0, 3), 1)))
    guarded = [r for r in rows if "guard_log_prob" in r]
    assert len(guarded) == 4 and all(r["source"] == "grown" and r["guard_log_prob"] < 0 for r in guarded)


def test_report_shows_the_guard(finished):
    experiment, _ = finished
    report = (experiment.run.path / "report.md").read_text()
    assert "## Reward-hacking guard" in report and "Held-out (dev_bleu)" in report
    assert "## Metrics by step" in report and "test BLEU" in report
    assert "Table 1" not in report  # the classification tables are for accuracy tasks


def test_evaluate_against_hand_values(tmp_path):
    experiment = Experiment(tiny_translation_config(tmp_path))
    experiment.load_data()

    class CopyReferences:  # a policy whose greedy output is the reference itself
        def sample(self, examples, greedy=False, **kwargs):
            return [[e.target] for e in examples]

    metrics = experiment.evaluate(CopyReferences())
    assert metrics["dev_reward"] == pytest.approx(1.0)
    assert metrics["dev_bleu"] == pytest.approx(100.0) and metrics["test_chrf"] == pytest.approx(100.0)


def test_rest_em_restarts_each_grow_step_from_the_start(tmp_path, monkeypatch):
    calls = []
    original = StageRunner.__call__

    def record(self, key, compute, after, trains):
        calls.append((key, after))
        return original(self, key, compute, after, trains)

    monkeypatch.setattr(StageRunner, "__call__", record)
    config = tiny_translation_config(tmp_path, "rest.preset=rest_em", "rest.grow_steps=2")
    assert config.rest.restart_from == "start" and config.rest.binary_reward_threshold == 0.5
    Experiment(config).run_all()
    after, prefix, sft = dict(calls), layout.trajectory(0, 3), layout.seed_stage(0, "sft")
    assert after[layout.improve_stage(prefix, 1, 1)] == sft and after[layout.improve_stage(prefix, 2, 1)] == sft
    # the data still comes from the latest policy
    assert after[layout.grow_stage(prefix, 2)] == layout.improve_stage(prefix, 1, 1)
    rows = read_jsonl(tmp_path / "run" / layout.grown_file(layout.grow_stage(prefix, 1)))
    assert {r["reward"] for r in rows} <= {0.0, 1.0} and all(r["source"] == "grown" for r in rows)


@pytest.mark.real
def test_smollm2_translates_multi30k(tmp_path):
    overrides = ["task=translation", "data.path=multi30k", "data.dev_split=val", "data.limit=4", "data.dev_limit=2",
                 "translation.test_limit=2", "translation.out_of_domain_limit=2", "translation.max_new_tokens=24",
                 "model.name=smollm2", "train.batch_size=4", "rest.grow_sizes=[2]", "rest.improve_steps=1",
                 "rest.samples_per_input=2", "rest.sampling=sample", "rest.temperature=0.8", "rest.reward=chrf",
                 "rest.normalise_reward=true", "rest.threshold=percentile", "rest.thresholds=[0.0]",
                 "rest.guard_samples=2", "baselines.zero_shot.backend=none",
                 "baselines.untrained_head=false", "run.histograms=false", f"run.output_dir={tmp_path / 'run'}"]
    results = Experiment(load_config(None, overrides)).run_all()
    sft, step = results["cells"]
    assert step["kept"] == 4 + step["kept_grown"] and step["kept_grown"] >= 2  # originals + distinct samples
    assert sft["test_bleu"] >= 0 and 0 < sft["dev_reward"] <= 1 and 0 < step["iwslt_chrf"] <= 100
    assert step["grow_log_prob_gain"] > 0  # BC on its own samples makes them more likely


def test_translation_examples_keep_references():
    example = Example("die Katze", target="the cat")
    assert example.target == "the cat" and example.label is None


def test_human_ratings_are_the_reward_of_the_improve_step(tmp_path):
    import csv

    from restlm.errors import AwaitingRatings

    config = tiny_translation_config(tmp_path, "rest.human_feedback=rank", "rest.grow_steps=1",
                                     "rest.thresholds=[0.5]", "rest.original_data=none")
    with pytest.raises(AwaitingRatings, match="fill in its 'rating' column"):
        Experiment(config).run_all()
    grow_key = layout.grow_stage(layout.trajectory(0, 3), 1)
    path = tmp_path / "run" / layout.ratings_file(grow_key)
    rows = list(csv.DictReader(path.open(newline="")))
    grown = [r for r in read_jsonl(tmp_path / "run" / layout.grown_file(grow_key)) if r["source"] == "grown"]
    # texts a spreadsheet would run as a formula are written behind a quote (OWASP)
    quoted = lambda text: "'" + text if text.lstrip("'")[:1] in ("=", "+", "-", "@", "\t", "\r") else text
    assert [(r["uid"], r["output"]) for r in rows] == [(g["uid"], quoted(g["output"])) for g in grown]
    # a person ranks the outputs of each input: the first one written is the best
    seen = {}
    for row in rows:
        seen[row["uid"]] = seen.get(row["uid"], 0) + 1
        row["rating"] = str(seen[row["uid"]])
    rows.sort(key=lambda row: row["output"])  # a spreadsheet sort: rows are matched by their id
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    results = Experiment.resuming(tmp_path / "run").run_all()
    step = results["cells"][1]
    # rank 1 of a group of g gets reward 1, the last rank 0: threshold 0.5 keeps the top half of each input
    # (K=2: one output per input, or the single distinct one)
    assert step["kept_grown"] == len(seen) and step["kept_mean_reward"] == pytest.approx(1.0)
