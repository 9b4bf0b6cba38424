"""`python -m nvlm ...` is the same as the `nvlm` console script (the launcher relies on it)."""

from nvlm.cli.main import run

if __name__ == "__main__":
    run()
