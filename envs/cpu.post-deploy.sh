#!/usr/bin/env bash
# Snakemake runs this once inside a freshly created env (after the pins of the .yaml beside it),
# from a copy under .snakemake/conda/ and in Snakemake's working directory: so the project is
# found through SYNDFACE_SRC, else the working directory (the project root, as the README runs
# it). The package goes in without dependencies: the env file pins them all.
# The version below is part of the env's hash: bump it with pyproject.toml's (tests check) so
# that a new release builds fresh envs.
set -euo pipefail
version="0.1.0"
src="${SYNDFACE_SRC:-$PWD}"
if ! grep -qs '^name = "syndface"' "$src/pyproject.toml"; then
    echo "syndface post-deploy: no syndface project at $src. Run snakemake from the project root," \
        "or export SYNDFACE_SRC=/path/to/syndface, then run it again." >&2
    exit 1
fi
if ! grep -q "^version = \"$version\"" "$src/pyproject.toml"; then
    echo "syndface post-deploy: $src/pyproject.toml is not version $version, which this env was made for." >&2
    exit 1
fi
python -m pip install --no-deps "$src"
