"""Results of bench/large_file.py and their presentation: one row per download, the Markdown
table, and the facts about the machine the run was on.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp


@dataclass
class Run:
    case: str
    size: int
    page_s: float = 0.0
    ttfb_s: float = 0.0
    total_s: float = 0.0
    received: int = 0
    sha256_ok: bool = False
    proxy_rss_start_kib: int | None = None
    proxy_hwm_kib: int | None = None
    proxy_rss_after_kib: int | None = None
    proxy_cpu_s: float | None = None  # user + system CPU the proxy spent during the download

    @property
    def mib_s(self) -> float:
        return self.received / (1 << 20) / self.total_s if self.total_s else 0.0


@dataclass
class SizeResult:
    label: str
    size: int
    runs: list[Run] = field(default_factory=list)
    skipped: str = ""
    engine: str = ""
    file_decisions: list[str] = field(default_factory=list)


# -- output ---------------------------------------------------------------------------------------


def loadavg() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def human(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:g} {unit}"
    return f"{n} B"


def mib(kib: int | None) -> str:
    return "" if kib is None else f"{kib / 1024:.0f} MiB"


def table(results: list[SizeResult]) -> str:
    rows = [
        "| size | path | TTFB | total | throughput | proxy RSS at start | proxy peak (VmHWM) "
        "| proxy CPU | sha256 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        if res.skipped:
            rows.append(f"| {human(res.size)} | skipped: {res.skipped} | | | | | | | |")
            continue
        for r in res.runs:
            cpu = "" if r.proxy_cpu_s is None else f"{r.proxy_cpu_s:.1f} s"
            ok = "ok" if r.sha256_ok else f"MISMATCH ({r.received} bytes)"
            rows.append(
                f"| {human(r.size)} | {r.case} | {r.ttfb_s * 1000:.1f} ms | {r.total_s:.2f} s "
                f"| {r.mib_s:.0f} MiB/s | {mib(r.proxy_rss_start_kib)} "
                f"| {mib(r.proxy_hwm_kib)} | {cpu} | {ok} |"
            )
    return "\n".join(rows)


def machine(workdir: Path) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    mem = ""
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as f:
        mem = f"{int(f.readline().split()[1]) / 2**20:.1f} GiB"
    du = shutil.disk_usage(workdir)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_total": mem,
        "workdir_free_gib": round(du.free / 2**30, 1),
        "workdir_size_gib": round(du.total / 2**30, 1),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "kernel": platform.release(),
        "loadavg_start": loadavg(),
    }
