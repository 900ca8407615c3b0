#!/bin/sh
# Create (or reuse) the virtual environment and install the project with the app, dev and logging extras
# (tensorboard, wandb: the suite tests the optional loggers).
# torch==2.13.0 goes in the same pip command as captum so pip takes the local CPU build instead of
# resolving a multi-GB CUDA build. On a GPU machine, install your CUDA torch first and set TORCH_SPEC=torch.
set -eu
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "$TORCH_SPEC" captum -e ".[app,dev,tensorboard,wandb]"
rm -f "$VENV"/.installed-*
