"""restlm.run_layout spells every stage key and per-stage file name of a run directory: its functions
against exact strings, and a scan of src/, benchmarks/ and tests/ that fails, naming file:line, on a
line that builds a key or a grown-file name by hand instead of calling run_layout."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from restlm import run_layout as layout

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the names
def test_constants():
    assert layout.MAJORITY == "baselines/majority"
    assert layout.ZERO_SHOT == "baselines/zero_shot"
    assert layout.STANDALONE == "rest"


def test_size_key():
    assert layout.size_key(None) == "all"
    assert layout.size_key(100) == "100"
    assert layout.size_key(0) == "0"


def test_seed_stages_and_trajectories():
    assert layout.seed_stage(0, "sft") == "seed0/sft"
    assert layout.seed_stage(3, "untrained") == "seed3/untrained"
    assert layout.seed_stage(1, "init") == "seed1/init"
    assert layout.trajectory(0, None) == "seed0/nall"
    assert layout.trajectory(2, 100) == "seed2/n100"


def test_grow_and_improve_stages():
    assert layout.grow_stage("seed0/n8", 1) == "seed0/n8/g1/grow"
    assert layout.grow_stage(layout.STANDALONE, 2) == "rest/g2/grow"
    assert layout.improve_stage("seed0/n8", 1, 2) == "seed0/n8/g1/i2"
    assert layout.improve_stage("seed1/rest", 10, 3) == "seed1/rest/g10/i3"


def test_parsing_stage_keys():
    assert layout.is_grow_stage("seed0/n8/g1/grow") and layout.is_grow_stage("rest/g12/grow")
    assert not any(layout.is_grow_stage(k) for k in ("seed0/n8/g1/i1", "seed0/sft", "x/grow", "seed0/n8/g1/grow/x"))
    assert layout.improve_step_of("seed0/n8/g1/i2") == 2
    assert layout.improve_step_of("rest/g3/i11") == 11
    assert layout.improve_step_of("seed0/n8/g1/grow") is None and layout.improve_step_of("seed0/init") is None
    assert layout.grow_stage_of("seed0/n8/g1/i2") == "seed0/n8/g1/grow"
    assert layout.grow_stage_of("seed0/nall/g10/i1") == "seed0/nall/g10/grow"
    assert layout.grow_stage_of("seed0/n8/g1/grow") is None and layout.grow_stage_of("seed0/sft") is None
    for prefix, g, i in (("seed0/n8", 1, 2), ("rest", 3, 1), ("seed2/rest_em", 2, 4)):
        key = layout.improve_stage(prefix, g, i)
        assert layout.improve_step_of(key) == i and layout.grow_stage_of(key) == layout.grow_stage(prefix, g)
        assert layout.is_grow_stage(layout.grow_stage(prefix, g))


def test_files_of_a_stage():
    assert layout.grown_file("seed0/n8/g1/grow") == Path("grown/seed0_n8_g1_grow.jsonl")
    assert layout.grown_file("rest/g1/grow") == Path("grown/rest_g1_grow.jsonl")
    assert layout.ratings_file("seed0/n3/g1/grow") == Path("grown/seed0_n3_g1_grow.ratings.csv")
    assert layout.checkpoint_dir("seed0/sft") == Path("checkpoints/seed0/sft")
    assert layout.checkpoint_dir("rest/g1/i2") == Path("checkpoints/rest/g1/i2")
    assert layout.stage_file("seed0/ppo/train", "_metrics.jsonl") == Path("logs/seed0_ppo_train_metrics.jsonl")


def test_compare_keys():
    assert layout.compare_start(0) == "seed0/start"
    assert layout.method_prefix(0, "rest") == "seed0/rest"
    assert layout.method_final(1, "ppo") == "seed1/ppo/final"
    assert layout.method_of_stage("seed0/rest/g1/i2") == "rest"
    assert layout.method_of_stage("seed12/rest_em/final") == "rest_em"
    assert layout.method_of_stage(layout.compare_start(3)) == "start"
    assert layout.method_of_stage(layout.MAJORITY) is None
    assert layout.method_of_stage("rest/g1/i2") is None
    assert layout.is_under("seed0/rest/g1/i2", "seed0/rest") and layout.is_under("seed0/rest", "seed0/rest")
    assert not layout.is_under("seed0/rest_em/final", "seed0/rest")


# ---------------------------------------------------------------- nobody else spells them
HAND_BUILT = re.compile("|".join(f"(?:{p})" for p in (
    r"""f["'][^"']*seed\{[^}]*\}/""",      # f"seed{s}/sft"
    r"""f["'][^"']*/[gin]\{""",            # f"{prefix}/g{g}/i{i}", f"seed0/n{n}"
    r"""f["']n\{""",                       # f"n{size}"
    r"""f["']seed\{[^}]*\}["']""",         # "checkpoints" / f"seed{s}" / "sft"
    r"""_g(?:\d+|\{[^}]*\})_grow""",       # grown-file names: "seed0_n3_g1_grow.jsonl"
    r"""["']seed\d+(?:/|["'])""",          # "seed0/sft", "checkpoints" / "seed0" / "sft"
    r"""/g\d+/(?:grow|i\d)""",             # "rest/g1/grow", "seed0/n8/g1/i2"
    r"""["']rest/g""",                     # "rest/g..." (layout.STANDALONE)
    r"""["']grown["']\s*/|["']grown/""",   # the grown folder by hand (layout.grown_file)
    r"""["']baselines/""",                 # layout.MAJORITY, layout.ZERO_SHOT
    r"""["']/(?:grow|i|g)["']""",          # keys parsed by hand: endswith("/grow"), "/i" in key
    r"""split\(["']/["']""",               # key.split("/")[1] (layout.method_of_stage)
)))

EXCLUDED = {
    "src/restlm/run_layout.py", "tests/test_run_layout.py",
}


def hand_built_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of each line of `text` that builds a stage key or a grown-file name by hand."""
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if HAND_BUILT.search(line)]


def scanned_files() -> list[Path]:
    excluded = {REPO / p for p in EXCLUDED}
    files = [p for folder in ("src", "benchmarks", "tests") for p in sorted((REPO / folder).rglob("*.py"))]
    return [p for p in files if p not in excluded]


@pytest.mark.parametrize("line", [
    'key = f"seed{s}/sft"',
    'run.stage(f"{prefix}/g{g}/grow")',
    'record = stages[f"seed0/n8/g1/i{i}"]',
    'prefix = f"seed{seed}/n{size_key(n)}"',
    'rows = read_jsonl(path / "grown" / "seed0_n3_g1_grow.jsonl")',
    'grown = path / f"seed0_n{n}_g1_grow.jsonl"',
    'path = tmp_path / "grown/rest_g1_grow.jsonl"',
    'grow = rest.run_dir.stage("rest/g1/grow")',
    'one = stages["seed0/sft"]',
    'policy.load_weights(run_dir / "checkpoints" / "seed0" / "sft")',
    'policy.load_weights(source / "checkpoints" / f"seed{seed}" / "sft")',
    'majority = run.stage("baselines/majority")',
    'if key.endswith("/grow"):',
    'i = int(key.rsplit("/i", 1)[1])',
    'names = {key.split("/")[1] for key in stages}',
])
def test_the_scan_catches_hand_built_keys(line):
    assert hand_built_lines(f"x = 1\n{line}\n") == [(2, line)]


@pytest.mark.parametrize("line", [
    'key = layout.seed_stage(seed, "sft")',
    'run.stage(layout.grow_stage(prefix, g))',
    'rows = read_jsonl(path / layout.grown_file(layout.grow_stage(layout.trajectory(0, 3), 1)))',
    'return f"nll_N{n}_seed{seed}"',  # a figure's file stem, not a stage key
    'label = f"G{g}I{i}"',
    'config = {"rest": {"seed": 0}}',
])
def test_the_scan_lets_run_layout_calls_through(line):
    assert hand_built_lines(line) == []


def test_the_scan_reads_the_files_it_should():
    names = {str(p.relative_to(REPO)) for p in scanned_files()}
    assert {"src/restlm/results.py", "src/restlm/inspect_run.py", "tests/test_rest_loop.py",
            "benchmarks/multi30k_smollm2.py"} <= names
    assert not names & EXCLUDED


def test_no_module_benchmark_or_test_spells_a_stage_key():
    found = [f"{path.relative_to(REPO)}:{n}: {line}" for path in scanned_files()
             for n, line in hand_built_lines(path.read_text(encoding="utf-8"))]
    assert not found, "stage keys or grown-file names built by hand (call restlm.run_layout):\n" + "\n".join(found)
