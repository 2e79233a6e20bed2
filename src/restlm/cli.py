"""The `restlm` command: run (or resume) an experiment, re-render a report; the RLHF steps are delegated."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from pathlib import Path

from restlm.cli_flags import ArgumentParser
from restlm.distributed import process_state
from restlm.errors import AwaitingRatings, RestlmError

# commands with their own parsers, in src/restlm/reward_models/commands.py and pipeline_commands.py
DELEGATED_HELP = {
    "reward-model": "train a Bradley-Terry reward model on preference pairs (see --help)",
    "sentiment-model": "train a sentiment reward (or gold) model (see --help)",
    "sft": "supervised fine-tuning of a causal LM on prompt-completion JSONL (see --help)",
    "dpo": "DPO of a causal LM on preference-pair JSONL (see --help)",
    "ppo": "PPO of a causal LM against a reward, with a proxy/gold report per evaluated step (see --help)",
}


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="restlm", description="Reinforced Self-Training for small models")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the ReST experiment a config describes (or resume one)")
    run.add_argument("--config", help="a JSON or YAML config file (default: the built-in MRPC/MiniLM experiment)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set rest.grow_steps=2 (repeatable)")
    run.add_argument("--seeds", type=int, help="number of seeds (same as --set run.seeds=N)")
    run.add_argument("--output-dir", help="the run directory (same as --set run.output_dir=DIR)")
    run.add_argument("--resume", metavar="DIR", help="continue the killed or unfinished run in DIR")
    report = commands.add_parser("report", help="write report.md/report.html again from a run's results.json")
    report.add_argument("run_dir")
    inspect = commands.add_parser("inspect", help="per Grow step: reward distribution, kept rows, best and worst samples")
    inspect.add_argument("run_dir")
    inspect.add_argument("--samples", type=int, default=3, help="best and worst samples shown per Grow step")
    evaluate = commands.add_parser("evaluate", help="score a saved policy (a run, a checkpoint, a model) with a task's metrics")
    evaluate.add_argument("target", help="a finished run directory (its best checkpoints), a checkpoint or model "
                          "folder, or a model name")
    evaluate.add_argument("--task", help="the task's config file (default, for a run directory: the run's own config)")
    evaluate.add_argument("--split", help="score this file alone, in the task's format, instead of the task's splits")
    evaluate.add_argument("--out", help="also write the scores to this JSON file (must not exist)")
    comparison = commands.add_parser("compare", help="several methods on one task from one start policy: "
                                     "compare.json and a report")
    comparison.add_argument("--task", required=True, help="the task's config file (the same as `restlm run` takes)")
    comparison.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                            help="override a key of the task config (repeatable)")
    comparison.add_argument("--methods", default="sft,rest,ppo,dpo", help="comma-separated registered methods "
                            "(sft, rest, rest_em, ppo, grpo, rloo, dpo)")
    comparison.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1; every method runs once per seed")
    comparison.add_argument("--budget", type=int, help="sampled tokens an online method (ppo, grpo, rloo) may spend (default: what ReST spent on "
                            "the same seed, or ppo.max_sampled_tokens without rest)")
    comparison.add_argument("--eval-samples", type=int, default=4, help="held-out samples per input for KL and distinct-2")
    comparison.add_argument("--bootstrap", type=int, default=1000, help="resamples of the confidence intervals")
    comparison.add_argument("--carry", action="append", default=[], metavar="DIR",
                            help="reuse the finished method runs of another compare directory whose settings match")
    comparison.add_argument("--keep-records", metavar="DIR", help="write every finished method record (no weights) "
                            "to DIR as it finishes, a directory --carry reads if --out is lost (--carry DIR is skipped "
                            "while DIR holds none yet)")
    comparison.add_argument("--rerun", default="", metavar="METHODS",
                            help="comma-separated methods of --methods whose finished runs (every seed) are "
                            "forgotten and run again, e.g. after a fix; the start and the other methods are kept "
                            "(drop it to resume a killed rerun)")
    comparison.add_argument("--out", required=True, help="the compare directory (rerun the same command to resume)")
    for name, text in DELEGATED_HELP.items():
        commands.add_parser(name, help=text, add_help=False)  # listed here; main() hands their argv over whole
    show = commands.add_parser("config", help="print the resolved config (defaults + file + overrides)")
    show.add_argument("--config")
    show.add_argument("--set", dest="overrides", action="append", default=[])
    show.add_argument("--all", action="store_true",
                      help="every section, also those the task and method do not read (e.g. translation: on MRPC)")
    return parser


def _run(args) -> None:
    from transformers.utils import logging as hf_logging

    from restlm.config import load_config
    from restlm.experiment import Experiment

    hf_logging.disable_progress_bar()  # restlm shows its own progress; loading bars are noise on stderr
    user_modules_importable(args.config)

    if args.resume:
        if args.config or args.overrides or args.output_dir:
            raise RestlmError("--resume takes the run's own config; drop --config/--set/--output-dir (--seeds may add seeds)")
        recorded = _recorded_comparison(args.resume)
        if recorded is not None:  # a run of another method than ReST: resumed by running it again
            if args.seeds is not None:
                recorded.run.seeds = args.seeds
            _run_method(recorded, args.argv)
            return
        experiment = Experiment.resuming(args.resume, seeds=args.seeds)
    else:
        overrides = list(args.overrides)
        if args.seeds is not None:
            overrides.append(f"run.seeds={args.seeds}")
        if args.output_dir:
            overrides.append(f"run.output_dir={args.output_dir}")
        config = load_config(args.config, overrides)
        if config.method != "rest":  # another method alone, from the start policy, as compare runs it
            _run_method(config, args.argv)
            return
        experiment = Experiment(config)
    experiment.run_all()
    if experiment.accelerator.is_main_process:
        print(f"report: {experiment.run.path / 'report.html'}")


def _run_method(config, argv: list[str]) -> None:
    from restlm.compare import CompareSettings, compare

    methods = ["sft"] if config.method == "sft" else ["sft", config.method]
    compare(CompareSettings(config, methods, config.run.seeds, command="restlm " + shlex.join(argv)),
            config.run.output_dir)
    if process_state().is_main_process:
        print(f"report: {Path(config.run.output_dir) / 'compare.html'}")


def _recorded_comparison(folder: str):
    """The config of a `method: ...` run (a compare directory) in `folder`; None for anything else."""
    from restlm.config import recorded_config, validate

    try:
        recorded = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None  # Experiment.resuming gives the error
    if not isinstance(recorded, dict) or "experiment" not in recorded:
        return None
    config = recorded_config(recorded["experiment"])
    validate(config)
    return config


def user_modules_importable(config_file: str | None) -> None:
    """Let a `module:function` reward name a module beside the config file or in the working folder,
    as `python -m` would; appended, so a local file never shadows an installed package."""
    for folder in ([str(Path(config_file).resolve().parent)] if config_file else []) + [os.getcwd()]:
        if folder not in sys.path:
            sys.path.append(folder)


def _report(args) -> None:
    from restlm.report import write_report

    path = Path(args.run_dir) / "results.json"
    if not path.exists():
        raise RestlmError(f"{path}: no results yet (has the run finished?)")
    try:
        results = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RestlmError(f"{path}: not a results file ({error})") from None
    written = write_report(Path(args.run_dir), results)
    print(f"report: {written['html']}")


def _evaluate(args) -> None:
    from transformers.utils import logging as hf_logging

    from restlm.atomic_files import write_json
    from restlm.evaluate_saved import evaluate_saved

    hf_logging.disable_progress_bar()
    user_modules_importable(args.task)
    if args.out and Path(args.out).exists():
        raise RestlmError(f"{args.out}: already exists; choose another --out")
    scores = evaluate_saved(args.target, args.task, args.split)
    if args.out:
        write_json(Path(args.out), scores)
    print(json.dumps(scores, indent=2))


def _compare(args) -> None:
    import datasets
    from transformers.utils import logging as hf_logging

    from restlm.compare import CompareSettings, compare
    from restlm.config import load_config

    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()  # TRL's dataset preparation bars (dpo) are noise on stderr
    user_modules_importable(args.task)
    config = load_config(args.task, args.overrides)
    settings = CompareSettings(config, [m.strip() for m in args.methods.split(",") if m.strip()], args.seeds,
                               args.budget, args.eval_samples, args.bootstrap, args.carry,
                               command="restlm " + shlex.join(args.argv),
                               rerun=[m.strip() for m in args.rerun.split(",") if m.strip()],
                               keep_records=args.keep_records)
    compare(settings, args.out)
    if process_state().is_main_process:
        print(f"compare: {Path(args.out) / 'compare.json'}, report {Path(args.out) / 'compare.html'}")


def _inspect(args) -> None:
    from restlm.inspect_run import inspect_run

    print(inspect_run(args.run_dir, args.samples))


def _config(args) -> None:
    from restlm.config import load_config, to_dict
    from restlm.run_sections import config_shown, sections_read

    config = load_config(args.config, args.overrides)
    print(json.dumps(config_shown(to_dict(config), None if args.all else sections_read(config)), indent=2))


def _delegated(command: str, argv: list[str]) -> int:
    """Commands with their own parsers (and their own one-line error handling)."""
    from restlm.pipeline_commands import main_dpo, main_ppo, main_sft
    from restlm.reward_models.commands import main_reward_model, main_sentiment_model

    return {"reward-model": main_reward_model, "sentiment-model": main_sentiment_model,
            "sft": main_sft, "dpo": main_dpo, "ppo": main_ppo}[command](argv)


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()  # here, not at exit: a closed pipe is then caught below
        return code
    except BrokenPipeError:
        # the reader went away (`restlm config | head`): stop quietly, as Unix tools do, and keep
        # Python from reporting the same broken pipe again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _main(argv: list[str]) -> int:
    if argv and argv[0] in DELEGATED_HELP:
        return _delegated(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    args.argv = list(argv)  # for the record of what ran
    try:
        {"run": _run, "report": _report, "inspect": _inspect, "config": _config, "evaluate": _evaluate,
         "compare": _compare}[args.command](args)
    except AwaitingRatings as pause:  # not a failure: the run waits for people
        print(f"restlm: {pause}", file=sys.stderr)
        return pause.exit_code
    except RestlmError as error:
        print(f"restlm: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("restlm: interrupted; resume with `restlm run --resume DIR`", file=sys.stderr)
        return 130
    return 0

if __name__ == "__main__":
    sys.exit(main())
