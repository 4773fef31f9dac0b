"""shmbench: how should several processes share one large numpy matrix, and what does each way cost?"""
from __future__ import annotations

from .plan import Plan
from ._system.preflight import PreflightError
from .phases import PHASES
from .result import RunResult
from .runner import Driver, run
from .strategies import Strategy, Traits, create, strategies
from .strategies.base import StorageFullError
from ._system.deadline import TimeLimit
from .runtimes.base import DEFAULT_START_METHOD, START_METHODS, WorkerDiedError, WorkerError
from .workloads import WORKLOADS, Workload

__version__ = "0.1.0"

__all__ = ["DEFAULT_START_METHOD", "PHASES", "Plan", "PreflightError", "RunResult", "START_METHODS", "StorageFullError", "Strategy", "Traits", "WORKLOADS", "Workload", "Driver",
           "TimeLimit", "WorkerDiedError", "WorkerError", "create", "run", "strategies", "__version__"]
