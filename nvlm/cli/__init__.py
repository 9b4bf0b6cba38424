"""Typer apps, one module per command group. Modules here stay thin: parse, build a config, call
a library function that is tested on its own."""

import os

from nvlm.cli import quiet_import

# TensorFlow's C++ INFO/WARNING lines (oneDNN notices, CPU feature banners) are noise on a
# command line; errors still show. Set TF_CPP_MIN_LOG_LEVEL=0 to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
quiet_import.install()
