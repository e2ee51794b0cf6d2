"""Scanner benchmark: ``python -m proxy.scan.bench [--size-mb 1024] [--dir DIR]``.

Writes (in a temp dir) a safetensors file and a PyTorch checkpoint of ``--size-mb`` each, a
legacy (non-zip) checkpoint, and an object-heavy pickle (the opcode walker's worst case), then
scans each in a fresh child process that imports nothing but the scanner and reports wall time,
throughput (file MB / s), bytes actually read, and the child's peak RSS (``getrusage``) next to
its RSS before the scan.  Generating needs torch, numpy and safetensors (the ``test`` extra).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_GENERATE = r"""
import pickle, sys
from pathlib import Path
import numpy as np, torch, safetensors.numpy
out, mb = Path(sys.argv[1]), int(sys.argv[2])
n = mb * (1 << 20) // 4 // 8  # eight float32 tensors make up the size
small = {f"layer{i}.bias": torch.zeros(64) for i in range(2000)}
big = {f"block{i}.weight": torch.ones(n) for i in range(8)}
torch.save({**big, **small}, out / "model.pt")
torch.save({**big, **small}, out / "legacy.bin", _use_new_zipfile_serialization=False)
arrays = {k: v.numpy() for k, v in {**big, **small}.items()}
safetensors.numpy.save_file(arrays, out / "model.safetensors")
rows = [(i, i * 0.5, f"token{i}", {"id": i}) for i in range(1_500_000)]
(out / "objects.pkl").write_bytes(pickle.dumps(rows, protocol=4))
"""


def _child(path: Path) -> None:
    from proxy.scan import scan_file

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = scan_file(path)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "format": result.format,
                "findings": len(result.findings),
                "seconds": seconds,
                "bytes_scanned": result.bytes_scanned,
                "rss_before_kib": before,
                "rss_peak_kib": peak,
            }
        )
    )


def _measure(path: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "proxy.scan.bench", "--child", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    record: dict[str, object] = json.loads(out)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxy.scan.bench")
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the files")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _child(args.child)
        return 0
    work = Path(tempfile.mkdtemp(prefix="scan-bench-", dir=args.dir))
    try:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", _GENERATE, str(work), str(args.size_mb)], check=True)
        print(f"generated in {time.perf_counter() - start:.1f}s under {work}")
        header = f"{'file':<20}{'format':<16}{'MB':>8}{'s':>8}{'MB/s':>10}{'read MB':>9}"
        print(header + f"{'RSS before':>12}{'RSS peak':>10}  findings")
        for name in ("model.safetensors", "model.pt", "legacy.bin", "objects.pkl"):
            path = work / name
            size_mb = path.stat().st_size / (1 << 20)
            m = _measure(path)
            seconds = float(str(m["seconds"]))
            read_mb = int(str(m["bytes_scanned"])) / (1 << 20)
            before = int(str(m["rss_before_kib"])) / 1024
            peak = int(str(m["rss_peak_kib"])) / 1024
            print(
                f"{name:<20}{m['format']!s:<16}{size_mb:>8.0f}{seconds:>8.3f}"
                f"{size_mb / seconds:>10.0f}{read_mb:>9.2f}{before:>10.0f}MB{peak:>8.0f}MB"
                f"  {m['findings']}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
