"""Typer apps, one module per command group. Modules here stay thin: parse, build a config, call
a library function that is tested on its own."""
