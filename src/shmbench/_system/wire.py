"""Bytes on this host's network links, read from the kernel's counters (psutil's
``net_io_counters``): what crossed from other hosts, as this host saw it arrive."""
from __future__ import annotations

import psutil

#: The headers of one received frame: Ethernet 14, IPv4 20, TCP with timestamps 32.
HEADERS = 14 + 20 + 32


def received() -> tuple[int, int]:
    """Bytes and frames received so far by every interface but loopback."""
    counters = psutil.net_io_counters(pernic=True)
    links = [c for name, c in counters.items() if name != "lo"]
    return sum(c.bytes_recv for c in links), sum(c.packets_recv for c in links)


def payload_since(before: tuple[int, int]) -> int:
    """The bytes received since ``before`` (a ``received()``), less every frame's headers."""
    now = received()
    return max(0, (now[0] - before[0]) - (now[1] - before[1]) * HEADERS)
