#!/usr/bin/env bash
# Download, on a machine with the package registry, the wheels a GPU machine without network
# needs to install this project: everything spaCy needs beside what such machines have
# (torch, transformers, tokenizers, numpy, CuPy), pinned to the versions installed here,
# for that machine's Python (about 62 MiB: the device tool carries 64 MiB of ignored files, so
# en_core_web_sm, which the GPU check does not use, stays out); plus setuptools (its bdist_wheel builds the editable install), to install this project from the
# checkout (pip install --no-build-isolation -e .: a wheel of it would carry the model twice).
#   scripts/gpu_wheels.sh [PYTHON_VERSION (3.12)] [DEST (gpu_check/wheels)]
# Dry run for this machine's own Python: scripts/gpu_wheels.sh "$(python -c 'import sys; print(*sys.version_info[:2], sep=".")')"
set -euo pipefail
py=${1:-3.12}; dest=${2:-gpu_check/wheels}
abi=cp${py/./}
pins=$(python - <<'PY'
from importlib.metadata import version
print(" ".join(f"{name}=={version(name)}" for name in
               ("spacy", "thinc", "srsly", "catalogue", "weasel", "pytest", "safetensors",
                "setuptools")))
PY
)
mkdir -p "$dest"
# shellcheck disable=SC2086
pip download -q $pins -d "$dest" --only-binary=:all: --python-version "$py" --implementation cp \
    --abi "$abi" --abi abi3 --abi none --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --platform any
# the GPU machine has these (and their CUDA builds): never replace them from here
rm -f "$dest"/numpy-* "$dest"/torch-* "$dest"/nvidia_* "$dest"/triton-* "$dest"/transformers-* "$dest"/tokenizers-*
du -sh "$dest"
