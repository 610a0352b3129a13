"""The RunConfig, at the path the engine has always imported it from.

It lives in :mod:`ftcore.config` (torch-free, below both the engine and the records); this module
re-exports it, so ``from ftcore.engine.config import RunConfig`` keeps working.
"""
from ..config.run_config import *  # noqa: F401,F403
from ..config.run_config import __all__  # noqa: F401
