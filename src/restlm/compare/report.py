"""compare.md and compare.html: the methods side by side, every evaluated step, and the
proxy-against-gold figure (Gao et al. 2022's over-optimisation picture: the proxy keeps rising
while the gold, which no method sees, stops or falls)."""
from __future__ import annotations

import io
from pathlib import Path

from restlm import run_layout as layout
from restlm.atomic_files import write_atomic, write_bytes_atomic
from restlm.report.html import markdown_to_html
from restlm.report.tables import markdown_table

FIGURE = layout.COMPARE_FIGURE


def write_compare_report(folder: Path, summary: dict) -> dict[str, Path]:
    figure = proxy_gold_figure(folder / FIGURE, summary)
    text = compare_markdown(summary, FIGURE if figure else None)
    md = write_atomic(folder / layout.COMPARE_MARKDOWN, text)
    page = markdown_to_html(text, f"restlm compare: {summary['task']} ({summary['data']})", folder,
                            {FIGURE} if figure else set())
    return {"md": md, "html": write_atomic(folder / layout.COMPARE_HTML, page)}


def _number(value, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _interval(ci) -> str:
    return "—" if not ci else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


_KL_MEANING = {"exact": "summed over each sample's positions, exact over the vocabulary at each (never negative)",
               "sampled": "the log-ratio of the sampled outputs (an unbiased estimate that can fall below 0 near 0)"}


def _kl_estimator(summary: dict) -> str:
    return "exact" if all(m.get("kl_estimator") == "exact" for m in summary["methods"]) else "sampled"


def compare_markdown(summary: dict, figure: str | None) -> str:
    metrics = summary["metrics"]
    lines = [f"# restlm compare: {summary['task']} ({summary['data']})", "",
             f"Model `{summary['model']}`; {summary['seeds']} seed(s); held-out inputs: "
             f"{summary['heldout_inputs']}. Each method starts from the same start policy and ends at "
             f"its step of highest `{metrics['selection']}` (dev); proxy `{metrics['proxy']}` and gold "
             f"`{metrics['gold']}` are of that step's greedy outputs on the held-out inputs, which no step "
             "selection reads. Intervals: 95% bootstrap over seeds and held-out inputs (paired for differences). "
             "KL to the start and distinct-2: of samples at temperature 1 on the held-out inputs; "
             f"KL {_KL_MEANING[_kl_estimator(summary)]}.", ""]
    if summary.get("command"):
        lines += [f"Command: `{summary['command']}`", ""]
    if summary.get("machine"):  # summaries before session 19 have none
        lines += [f"Machine: {summary['machine']}", ""]
    rows = [[m["method"], _number(m["proxy"]), _number(m["gold"]), _interval(m["gold_ci95"]).replace("+", ""),
             _interval(m["gold_minus_rest_ci95"]), _interval(m.get("gold_minus_sft_ci95")), _number(m["kl"], 3),
             _number(m["distinct2"], 3),
             f"{m['sampled_tokens']:.0f}" if m["sampled_tokens"] is not None else "—",
             f"{m['wall_time_s']:.0f}", ", ".join(m["chosen_steps"])] for m in summary["methods"]]
    lines += [markdown_table(["method", "proxy", "gold", "gold 95% CI", "gold − ReST, 95% CI", "gold − SFT, 95% CI", "KL", "distinct-2",
                              "sampled tokens", "train time (s)", "chosen step"], rows), ""]
    if figure:
        lines += [f"![proxy against gold]({figure})", "",
                  "*Held-out proxy against held-out gold at every evaluated step, per method (seed 0); "
                  "the chosen step is circled.*", ""]
    lines += ["## Every evaluated step", ""]
    for m in summary["methods"]:
        for seed, record in enumerate(m["by_seed"]):
            step_rows = [[s["step"] + (" (chosen)" if s["step"] == record["chosen_step"] else ""),
                          str(s.get("sampled_tokens", "—")), _number(s.get(metrics["selection"])),
                          _number(s.get(metrics["proxy"])), _number(s.get(metrics["gold"]))] for s in record["steps"]]
            lines += [f"**{m['method']}**, seed {seed}" + (f" (carried from `{record['carried_from']}`)"
                                                          if record.get("carried_from") else ""), "",
                      markdown_table(["step", "sampled tokens", f"dev {metrics['selection']}", "held-out proxy",
                                      "held-out gold"], step_rows), ""]
    return "\n".join(lines)


def proxy_gold_figure(path: Path, summary: dict) -> Path | None:
    """One panel per method: held-out proxy (x) against gold (y) by step, seed 0; None with nothing to draw."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics, methods = summary["metrics"], [m for m in summary["methods"] if m["by_seed"]]
    if not methods:
        return None
    fig = Figure(figsize=(3.6 * len(methods), 3.4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    for ax, method in zip(axes, methods):
        record = method["by_seed"][0]
        steps = [s for s in record["steps"] if s.get(metrics["proxy"]) is not None]
        xs, ys = [s[metrics["proxy"]] for s in steps], [s.get(metrics["gold"]) for s in steps]
        ax.plot(xs, ys, "o-", color="tab:blue", markersize=4)
        for s, x, y in zip(steps, xs, ys):
            if s["step"] == record["chosen_step"]:
                ax.plot([x], [y], "o", markersize=11, markerfacecolor="none", color="tab:red")
        if steps:
            ax.annotate("start", (xs[0], ys[0]), fontsize=8)
        ax.set_title(method["method"])
        ax.set_xlabel(f"held-out proxy ({metrics['proxy']})")
        ax.set_ylabel(f"held-out gold ({metrics['gold']})")
        ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return write_bytes_atomic(path, buffer.getvalue())
