"""Big inputs: N generated rows through the chunk loop and through Dask with 1 and 2 workers.

Run by hand:  .venv/bin/python benchmarks/bench_scale.py [--rows 10000000] [--chunk-rows 100000]
              [--format parquet|csv] [--small-rows 1000000]

The input is written in blocks (never whole in memory) as one Parquet file with row groups of
--chunk-rows rows (Dask partitions follow row groups) or as one CSV file. Every run is its own
fresh process, so each ru_maxrss is that run's own peak; Dask workers report theirs with
client.run. The output is a folder of Parquet parts in every run (the form that scales: Dask
workers write their own parts). The chunk loop also runs on --small-rows rows to show that
its peak memory does not grow with the input.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import generate  # noqa: E402  (the engine benchmark's account data)

AS_OF = "2026-11-22"
BLOCK_ROWS = 500_000


def peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss
    over fork and exec, so a child would report its parent's peak if that was higher."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_input(path: Path, rows: int, chunk_rows: int, form: str) -> None:
    """``rows`` generated accounts, written a block at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for start in range(0, rows, BLOCK_ROWS):
            block = generate(min(BLOCK_ROWS, rows - start), seed=start)
            block["Account"] = [f"ACC-{i:09d}" for i in range(start, start + len(block))]
            block = block.astype(str)
            if form == "csv":
                block.to_csv(path, index=False, mode="a", header=start == 0)
                continue
            table = pa.Table.from_pandas(block, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=chunk_rows)
    finally:
        if writer is not None:
            writer.close()


def child(config: str, src: str, dst: str, chunk_rows: int) -> None:
    from relationships.scale import run_scale

    result: dict = {"config": config}
    if config == "chunked":
        t0 = time.perf_counter()
        report = run_scale([src], dst, as_of=AS_OF, chunk_rows=chunk_rows)
        result["seconds"] = time.perf_counter() - t0
        result["worker_peak_mb"] = []
        result["worker_cpu_s"] = 0.0
    else:
        from distributed import Client, LocalCluster

        workers = int(config.removeprefix("dask-"))
        t0 = time.perf_counter()
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            result["cluster_start_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            report = run_scale(
                [src],
                dst,
                engine="dask",
                scheduler=cluster.scheduler_address,
                as_of=AS_OF,
                chunk_rows=chunk_rows,
            )
            result["seconds"] = time.perf_counter() - t1
            result["worker_peak_mb"] = sorted(client.run(peak_mb).values())
            result["worker_cpu_s"] = sum(client.run(cpu_s).values())
    (file_report,) = report.files
    if not file_report.ok:
        raise SystemExit(file_report.reason)
    result.update(
        rows=file_report.rows, notes=file_report.notes, client_peak_mb=peak_mb(), cpu_s=cpu_s()
    )
    print(json.dumps(result))


def run(config: str, src: Path, dst: Path, chunk_rows: int) -> dict:
    command = [sys.executable, __file__, "--child", config, str(src), str(dst), str(chunk_rows)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{config} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load"] = os.getloadavg()[0]  # 1-minute load average as the run ends
    return result


def machine() -> str:
    import dask
    import pyarrow

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, pandas {pd.__version__}, "
        f"pyarrow {pyarrow.__version__}, dask/distributed {dask.__version__}"
    )


def table(results: list[dict]) -> str:
    """The runs as a markdown table."""
    lines = [
        "| path | rows | wall s | rows/s | CPU s, all processes | peak MB, main process | "
        "peak MB per worker | pieces | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        workers = ", ".join(f"{m:,.0f}" for m in r["worker_peak_mb"]) or "-"
        lines.append(
            f"| {r['config']} | {r['rows']:,} | {r['seconds']:.0f} | "
            f"{r['rows'] / r['seconds']:,.0f} | {r['cpu_s'] + r['worker_cpu_s']:.0f} | "
            f"{r['client_peak_mb']:,.0f} | {workers} | "
            f"{r['notes'][0].split(':', 1)[1].strip()} | {r['load']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--small-rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--configs", default="chunked,dask-1,dask-2")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        config, src, dst, chunk_rows = args.child
        child(config, src, dst, int(chunk_rows))
        return
    rows_done = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        inputs = {}
        for rows in sorted({args.small_rows, args.rows}):
            path = Path(tmp) / f"accounts-{rows}.{args.format}"
            t0 = time.perf_counter()
            write_input(path, rows, args.chunk_rows, args.format)
            size = path.stat().st_size / 2**20
            print(f"generated {rows:,} rows ({size:,.0f} MiB) in {time.perf_counter() - t0:.0f} s")
            inputs[rows] = path
        runs = [("chunked", args.small_rows)] if args.small_rows != args.rows else []
        runs += [(config, args.rows) for config in args.configs.split(",")]
        for config, rows in runs:
            result = run(config, inputs[rows], Path(tmp) / f"out-{config}-{rows}", args.chunk_rows)
            print(json.dumps(result), flush=True)
            rows_done.append(result)
    print()
    print(f"machine: {machine()}")
    print(
        f"input: generated accounts (benchmarks/bench_engine.py), one {args.format} file, "
        f"chunk/partition {args.chunk_rows:,} rows; output: a folder of Parquet parts"
    )
    print()
    print(table(rows_done))


if __name__ == "__main__":
    main()
