"""A finished comparison copied where results are kept (benchmarks/results/NAME.{json,md,png}),
optionally beside the figures an earlier run recorded for the same methods, for benchmark presets."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from restlm import run_layout as layout
from restlm.atomic_files import write_atomic, write_json
from restlm.compare.report import FIGURE

COMPARED = ("proxy", "gold", "kl", "distinct2", "sampled_tokens", "wall_time_s")


def _cell(value) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if isinstance(value, float) and abs(value) < 100 else f"{value:.0f}"


def publish(compare_dir: str | Path, stem: str | Path, recorded: dict[str, dict] | None = None,
            recorded_name: str = "", note: str = "") -> dict:
    """Write STEM.json (compare.json, each method with its `recorded` figures when given), STEM.md and STEM.png."""
    compare_dir, stem = Path(compare_dir), Path(stem)
    summary = json.loads((compare_dir / layout.COMPARE_SUMMARY).read_text())
    text = (compare_dir / layout.COMPARE_MARKDOWN).read_text().replace(f"({FIGURE})", f"({stem.name}.png)")
    if (compare_dir / FIGURE).exists():
        shutil.copyfile(compare_dir / FIGURE, stem.with_suffix(".png"))
    if recorded is not None:
        for method in summary["methods"]:
            method["recorded"] = recorded.get(method["method"])
        summary["recorded_in"], summary["notes"] = recorded_name, [note] if note else []
        rows = ["| method | " + " | ".join(f"{k} now / then" for k in COMPARED) + " |",
                "|---" * (len(COMPARED) + 1) + "|"]
        for method in summary["methods"]:
            then = method["recorded"] or {}
            rows.append(f"| {method['method']} | " + " | ".join(f"{_cell(method[k])} / {_cell(then.get(k))}"
                                                             for k in COMPARED) + " |")
        text += f"\n## Against the recorded run ({recorded_name})\n\n" + "\n".join(rows) + "\n\n" + note + "\n"
    write_json(stem.with_suffix(".json"), summary)
    write_atomic(stem.with_suffix(".md"), text)
    return summary
