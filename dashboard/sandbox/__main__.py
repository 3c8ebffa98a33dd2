"""``python -m dashboard.sandbox``: same as ``flask sandbox``."""

from .cli import sandbox_command

sandbox_command(prog_name="python -m dashboard.sandbox")
