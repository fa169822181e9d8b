"""Load gunicorn.conf.py as a module, as gunicorn does, to test what it configures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


def load_module():
    spec = importlib.util.spec_from_file_location("gunicorn_conf", CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_logger_class():
    return load_module().logger_class
