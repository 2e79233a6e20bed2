"""`restlm compare`: methods on one task from one start policy, selected on dev, judged on held-out.

  runner.py   the loop: per seed the start policy, each method, its final evaluation (all stages: resumable)
  carry.py    reusing another directory's finished method runs when their settings match
  summary.py  compare.json: means, bootstrap intervals over seeds and held-out inputs, every step
  report.py   compare.md / compare.html and the proxy-against-gold figure
"""
from restlm.compare.runner import CompareSettings, compare

__all__ = ["CompareSettings", "compare"]
