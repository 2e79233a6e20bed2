"""Generation speed of every engine against a plain `model.generate` loop (issue: fast generation).

    .venv/bin/python benchmarks/generation_speed.py            # about 20 min on a free 2-core machine
    .venv/bin/python benchmarks/generation_speed.py --sources 8 --greedy-sentences 16 --rounds 1   # a smoke run
    .venv/bin/python benchmarks/generation_speed.py --profile "torch bfloat16"   # where its sampling time goes

Writes benchmarks/results/generation_speed.{json,md} (restlm.presets.generation_speed).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(HERE.parent / "configs" / "multi30k_smollm2.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--sources", type=int, default=64, help="Multi30k train sources sampled")
    parser.add_argument("--samples", type=int, default=4, help="samples per source")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--greedy-sentences", type=int, default=200, help="test_2016_flickr sentences decoded greedily")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", default="hf float32,hf bfloat16,torch float32,torch bfloat16,ctranslate2 int8")
    parser.add_argument("--out", default=str(HERE / "results" / "generation_speed"))
    parser.add_argument("--profile", metavar="ENGINE", help="instead: profile one engine's sampling (e.g. 'torch "
                        "bfloat16'), written to results/generation_profile.{json,md}")
    args = parser.parse_args()
    # imported after parsing: --help stays instant
    from restlm.presets import publish

    if args.profile:
        from restlm.presets import generation_profile

        summary = generation_profile.profile(args.config, args.overrides, args.profile, args.sources, args.samples,
                                             args.temperature, " ".join(["python", *sys.argv]))
        publish(HERE / "results" / "generation_profile", summary, generation_profile.markdown(summary))
        return
    from restlm.presets.generation_speed import markdown, run

    summary = run(args.config, args.overrides, args.sources, args.samples, args.temperature, args.greedy_sentences,
                  args.rounds, [e.strip() for e in args.engines.split(",") if e.strip()],
                  " ".join(["python", *sys.argv]))
    publish(args.out, summary, markdown(summary))


if __name__ == "__main__":
    main()
