#!/usr/bin/env bash
# The `gpu` protocol (NB201's own: 25k images, 32x32, C=16, N=5, batch 256; nasbeff.training.protocols) on the
# first ~24 archs of the test sample, several archs at once on one GPU, in chunks of about 7 minutes of starting archs (<= 10 minutes in all).
# Resumable: the per-epoch curves go to gpu_curves.csv (commit it after each chunk); rerunning the
# same command skips the archs already in it and continues.
#
# UNTESTED ON A GPU (written in a session without one). Needs: `pip install -e .` with a CUDA torch,
# and the CIFAR-10 archive at $DATA (default .data/cifar10_jpeg.tar.gz: copy
# ../shared/data/cifar10/cifar10_jpeg.tar.gz there; .data/ is git-ignored, so carry it to the device).
#
#   bash experiments/nb201_protocol/gpu_chunk.sh            # WORKERS=4 MINUTES=7 N_ARCHS=24 by default
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=experiments/nb201_protocol
DATA=${DATA:-.data/cifar10_jpeg.tar.gz}
WORKERS=${WORKERS:-4}
MINUTES=${MINUTES:-7}
N_ARCHS=${N_ARCHS:-24}
PY=${PY:-python}
# the test sample: from the committed test config when it exists, else the seeded draw it will hold
ARCHS=$($PY - "$HERE/test_config.json" "$N_ARCHS" <<'PYEOF'
import json, os, sys
from nasbeff.training import draw_test_sample
path, n = sys.argv[1], int(sys.argv[2])
archs = json.load(open(path))["archs"] if os.path.exists(path) else draw_test_sample(100, 10)
print(",".join(map(str, archs[:n])))
PYEOF
)
mkdir -p runs
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
$PY -m nasbeff rank --protocol gpu --data "$DATA" --archs "$ARCHS" --device cuda --workers "$WORKERS" \
    --threads 1 --time-limit "$MINUTES" --all-variants --results "$HERE/gpu_curves.csv" \
    --store runs/nb201_gpu.sqlite --out "$HERE/gpu_rows.csv"
