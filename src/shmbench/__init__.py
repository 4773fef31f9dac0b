"""shmbench: how should several processes share one large numpy matrix, and what does each way cost?"""
from __future__ import annotations

from .plan import Plan
from .preflight import PreflightError
from .result import PHASES, RunResult
from .runner import run
from .strategies import Strategy, create, strategies
from .workers import DEFAULT_START_METHOD, START_METHODS, WorkerDiedError, WorkerError
from .work import WORKLOADS

__version__ = "0.1.0"

__all__ = ["DEFAULT_START_METHOD", "PHASES", "Plan", "PreflightError", "RunResult", "START_METHODS", "Strategy", "WORKLOADS",
           "WorkerDiedError", "WorkerError", "create", "run", "strategies", "__version__"]
