"""`make compat`: the dependency range of pyproject.toml, installed and tested (see run_compat.py)."""
