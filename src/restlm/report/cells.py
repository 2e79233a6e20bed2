"""Read results.json: cells grouped by N, step (G, I) and seed; the paper's numbers per cell."""
from __future__ import annotations

from collections import defaultdict

Step = tuple[int, int]
"""(G, I): Grow steps done, Improve steps within the last Grow; (0, 0) is the fine-tuned model."""

FINE_TUNED: Step = (0, 0)


def step_label(step: Step) -> str:
    """(1, 2) -> "G1I2"."""
    return f"G{step[0]}I{step[1]}"


def grow_size(value) -> int | str:
    """N as written in a cell: an int, or "all" (null in results.json) for the whole training set."""
    return "all" if value in (None, "all") else int(value)


def _size_order(size) -> tuple[bool, int]:
    return (size == "all", 0 if size == "all" else size)


def group_cells(cells: list[dict]) -> dict[int | str, dict[Step, dict[int, dict]]]:
    """Cells -> {N: {(G, I): {seed: cell}}}, with N and steps in ascending order.

    A (seed, N, G, I) that appears twice (a resumed run) keeps its last row.
    """
    grouped: dict = defaultdict(lambda: defaultdict(dict))
    for cell in cells:
        step = (int(cell["G"]), int(cell["I"]))
        grouped[grow_size(cell["N"])][step][int(cell["seed"])] = cell
    ordered = sorted(grouped.items(), key=lambda item: _size_order(item[0]))
    return {n: dict(sorted(steps.items())) for n, steps in ordered}


def values(by_seed: dict[int, dict], key: str) -> list[float]:
    """The non-null `key` of each seed's cell, in seed order."""
    return [float(by_seed[s][key]) for s in sorted(by_seed) if by_seed[s].get(key) is not None]


def paired_values(
    treated: dict[int, dict], control: dict[int, dict], key: str
) -> tuple[list[float], list[float]]:
    """`key` of the seeds present in both groups, aligned by seed, as (treated, control)."""
    seeds = [s for s in sorted(treated) if s in control
             and treated[s].get(key) is not None and control[s].get(key) is not None]
    return [float(treated[s][key]) for s in seeds], [float(control[s][key]) for s in seeds]


def best_rest_step(steps: dict[Step, dict[int, dict]], metric: str = "dev_accuracy") -> Step | None:
    """The ReST step (any but G0I0) with the highest seed-mean `metric`, or None."""
    scored = [(sum(v) / len(v), step) for step, by_seed in steps.items()
              if step != FINE_TUNED and (v := values(by_seed, metric))]
    return max(scored)[1] if scored else None


def histogram_groups(histograms: list[dict]) -> dict[tuple[int, int], list[dict]]:
    """Figure 2 entries -> {(N, seed): [stage, ...]}, stages in the order they were recorded."""
    groups: dict = defaultdict(list)
    for stage in histograms:
        groups[(grow_size(stage.get("N", 0)), int(stage.get("seed", 0)))].append(stage)
    return dict(groups)


def paper_table2(results: dict, n: int) -> dict:
    """The paper's Table 2 column for N as {"G1I1": accuracy, ...}; {} when absent.
    JSON turns the key 100 into "100", so both spellings are accepted."""
    table2 = results.get("reference", {}).get("table2", {}) or {}
    column = table2.get(str(n), table2.get(n))
    return column if isinstance(column, dict) else {}
