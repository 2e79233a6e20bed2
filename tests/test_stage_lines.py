"""Each finished stage prints one line with the task's own metrics (BLEU for translation, the reward for prompts)."""
from accelerate import Accelerator

from restlm import run_layout as layout
from restlm.config import load_config
from restlm.runs import _log_line
from restlm.tasks import build_task


def test_the_line_shows_the_tasks_metrics_first_then_the_stages_numbers():
    record = {"dev_bleu": 12.345678, "dev_reward": 0.5, "kept": 40, "wall_time_s": 3.0, "dev_accuracy": 0.9}
    key = layout.improve_stage(layout.trajectory(0, 8), 1, 1)
    line = _log_line(key, record, ("dev_reward", "dev_bleu"))
    assert line == f"[{key}] dev_reward=0.5 dev_bleu=12.35 kept=40 wall_time_s=3"


def test_translation_and_prompts_tasks_name_their_metrics():
    translation = build_task(load_config(overrides=["task=translation", "data.path=multi30k"]), Accelerator(cpu=True))
    assert translation.stage_line_metrics()[:3] == ("dev_reward", "dev_bleu", "dev_chrf")
    assert "test_bleu" in translation.stage_line_metrics()
    prompts = build_task(load_config(overrides=["task=prompts", "prompts.train=a.jsonl", "prompts.dev=b.jsonl",
                                                "prompts.test=c.jsonl", "rest.reward=chrf"]), Accelerator(cpu=True))
    assert prompts.stage_line_metrics() == ("dev_reward", "test_reward")
    classification = build_task(load_config(), Accelerator(cpu=True))
    assert classification.stage_line_metrics() == ("dev_accuracy", "dev_f1")
