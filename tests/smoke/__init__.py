"""Running the product as an operator does: fresh processes that see only the environment given.

The settings module reads the environment once, at import, so every case gets its own process.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The virtual environment's own commands (python, gunicorn, celery) come first, as in the image.
_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])


def environment(**variables) -> dict[str, str]:
    """A bare environment plus ``variables``: nothing leaks in from the test run's own settings."""
    env = {"PATH": _PATH, "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    env.update({name: str(value) for name, value in variables.items()})
    return env


def run(args, env: dict[str, str], *, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(arg) for arg in args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def manage(*args, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return run([sys.executable, "manage.py", *args], env, timeout=timeout)
