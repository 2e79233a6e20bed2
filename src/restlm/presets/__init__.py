"""What the scripts in benchmarks/ run: each script is argparse and a call into one module here.

    mrpc_grid            benchmarks/mrpc_grid.py: the Table 2 grid on MRPC over seeds, its summary and markdown
    mrpc_variants        benchmarks/mrpc_variants.py: ReST, its Table 2 grid and its variants against fine-tuning on MRPC
    arithmetic, mrpc_variants and the others over one comparison: `compare_benchmark` below
    multi30k             benchmarks/multi30k_smollm2.py: the Table 1 rows on Multi30k, other losses, sampling speed
    multi30k_controls    benchmarks/multi30k_controls.py: ReST against BC matched and BC converged on Multi30k
    arithmetic           benchmarks/arithmetic_smollm2.py: every method on generated arithmetic (issue 18's schema)
    reward_models        benchmarks/reward_models.py: Bradley-Terry reward models, probes and ensembles on HH-RLHF
    reward_model_search  benchmarks/reward_model_search.py: reward models chosen on a validation split
    generation_speed     benchmarks/generation_speed.py: sampled tokens/s of every generation engine
    generation_profile   benchmarks/generation_speed.py --profile: where one engine's sampling time goes
    training_speed       benchmarks/training_speed.py: supervised training steps in bf16 against float32
"""
from __future__ import annotations

from pathlib import Path


def publish(out: str | Path, summary: dict, markdown: str) -> None:
    """Write a benchmark's results as OUT.json and OUT.md (each atomically), and print the markdown."""
    from restlm.atomic_files import write_atomic, write_json

    out = Path(out)
    write_json(out.with_suffix(".json"), summary)
    write_atomic(out.with_suffix(".md"), markdown)
    print(markdown)


def run_compare(task: str, out: str, methods: str, seeds: int, extra: list[str], records: str | None = None) -> int:
    """`restlm compare` of `task` into `out` (run, or resumed and extended to `seeds`), one greedy output per
    evaluated input, as every benchmark runs it; `extra` (--set KEY=VALUE, --bootstrap) passes on. With `records`
    (a folder under benchmarks/results, committed), every finished method record is kept there as it finishes and
    carried back from there, so a session whose machine (and benchmarks/runs) is gone goes on where it was. Its
    exit code."""
    from restlm import cli

    kept = [] if records is None else ["--keep-records", records, "--carry", records]
    return cli.main(["compare", "--task", task, "--methods", methods, "--seeds", str(seeds), "--eval-samples", "1",
                     "--out", out, *kept, *extra])


def compare_benchmark(argv: list[str], doc: str, root: Path, task: str, out: str, methods: str, seeds: int,
                      results: str, summarise, markdown, records: str | None = None) -> int:
    """A benchmark screen over one `restlm compare` of `task`: `--seeds` and `--methods` (other flags, e.g.
    --bootstrap or --set KEY=VALUE, pass to compare), run or resumed from the checkout's `root` (the configs'
    paths are relative to it); then RESULTS.{json,md} from `markdown(summarise(out))`; `records`: run_compare's.
    Its exit code."""
    import argparse
    import os

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=seeds)
    parser.add_argument("--methods", default=methods)
    args, extra = parser.parse_known_args(argv)
    os.chdir(root)
    code = run_compare(task, out, args.methods, args.seeds, extra, records)
    if code == 0:
        summary = summarise(out)
        publish(results, summary, markdown(summary))
    return code
