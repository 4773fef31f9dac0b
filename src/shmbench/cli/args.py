"""The argument types: each refuses bad input in one line, before anything runs."""
from __future__ import annotations

import argparse

from ..sizes import parse_size
from ..workloads import resolve

from .common import UsageError


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise UsageError(message)


def as_size_spec(spec: str) -> str:
    """A size spec, checked (as float64) but kept as written: bytes hold more float32 than float64."""
    as_size(spec)
    return spec


def as_size(spec: str) -> tuple[int, int]:
    try:
        return parse_size(spec)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def at_least(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


as_count, as_non_negative = at_least(1), at_least(0)


def number(what: str, holds, rule: str):
    """An argparse type: a number (``what`` in the refusal) for which ``holds(value)``, else ``rule``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not holds(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    return parse


as_slowdown = number("a number", lambda v: 1.0 < v <= 2.0, "above 1 and at most 2")
as_seconds = number("a number of seconds", lambda v: v >= 0, "at least 0")
as_limit = number("a number of seconds", lambda v: 0 < v < float("inf"), "above 0 and finite")


def as_workload(text: str) -> str:
    try:
        return resolve(text).name
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def as_hosts(text: str) -> str:
    hosts = [h.strip() for h in text.split(",")]
    if not all(hosts):
        raise argparse.ArgumentTypeError(f"hosts are comma-separated names, got {text!r}")
    return ",".join(hosts)


def as_hostfile(path: str) -> str:
    """A hydra host file's hosts (``host`` or ``host:count`` a line, ``#`` comments), comma-separated."""
    try:
        with open(path) as f:
            lines = [line.split("#", 1)[0].strip() for line in f]
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read the host file {path}: {error.strerror}") from None
    hosts = [line.split()[0].split(":", 1)[0] for line in lines if line]
    if not hosts or not all(hosts):
        raise argparse.ArgumentTypeError(f"the host file {path} names no host (a host or host:count a line)")
    return ",".join(hosts)
