#!/usr/bin/env bash
# What evonas does on a CUDA machine, in at most 5 minutes; not run by CI. Needs only the
# README's set-up (`make run` or `make test` made .venv); installs nothing.
#
#   tests/bench/gpu_check.sh            # from the repository root
#   QUICK=1 tests/bench/gpu_check.sh    # fewer evaluations and rounds
#
# Prints the devices found, the local pool with 1, 2, 4 and 8 slots on one GPU (evaluations
# per minute, GPU busy %), AMP vs fp32 step time and the trainer's host syncs, decoded vs
# flat torch.fx twin step time, and a short CIFAR-10-shaped search that ends with a result.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PYTHON" ]; then
    echo "no $PYTHON: run 'make run' (or 'make test') first, as the README says" >&2
    exit 2
fi
command -v nvidia-smi >/dev/null && nvidia-smi -L || echo "nvidia-smi not found"
exec timeout --signal=INT --kill-after=10 300 env PYTHONPATH="$PWD" "$PYTHON" \
    tests/bench/gpu_check.py ${QUICK:+--quick} "$@"
