"""--engine dask: the unchanged engine on every partition of a real distributed cluster.

One LocalCluster serves the module: two worker *processes* (one thread each) on loopback,
no dashboard. Starting it costs about two seconds on a 2-core machine; every test then
talks to it over TCP as it would to a remote scheduler.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from relationships import classify, default_rulebook  # noqa: E402
from relationships.batch import classify_file  # noqa: E402
from relationships.errors import InputError  # noqa: E402
from relationships.scale import _broadcast, classify_dask, run_scale  # noqa: E402

AS_OF = dt.date(2026, 1, 31)


def accounts(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def pick(*options: str) -> np.ndarray:
        return np.asarray(options, dtype=object)[rng.integers(0, len(options), n)]

    return pd.DataFrame(
        {
            "Account": [f"ACC-{i:05d}" for i in range(n)],
            "Industry": pick("Law firm", "SaaS", "Retail store", "Accounting", "=1+1", ""),
            "Service type": pick("Tax advice", "Subscription", "Coffee", "Audit", "-5 units"),
            "Billing": pick("Retainer", "Per item", "Monthly subscription", "Hourly", ""),
            "Tenure (months)": pick("3", "12", "48", "n/a", "", "1,200"),
            "Customer since": pick("2020-01-15", "2025-11-01", "", "yesterday"),
            "Personalization": pick("tailored", "standard", "partial", ""),
            "Needs advice": pick("yes", "no", ""),
            "Notes": pick("VIP", "@mention", "", "a;b"),
        }
    )


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster) as c:
        yield c


def test_the_workers_are_separate_processes_listening_on_loopback_only(client):
    psutil = pytest.importorskip("psutil")  # a dependency of distributed
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    assert all(address.startswith("tcp://127.0.0.1:") for address in pids)
    workers = [psutil.Process(pid) for pid in pids.values()]
    processes = [psutil.Process(), *workers, *(w.parent() for w in workers)]  # + nannies
    listening = [
        c.laddr.ip
        for p in processes
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening and set(listening) == {"127.0.0.1"}


def test_classify_dask_equals_classify_row_for_row_with_index_and_order(client):
    frame = accounts(3000, seed=7)
    rng = np.random.default_rng(1)
    frame.index = pd.Index([f"id-{i}" for i in rng.permutation(3000)], name="account_key")
    want = classify(frame, default_rulebook(), as_of=AS_OF)
    with dask.config.set({"dataframe.convert-string": False}):  # keep pandas' own dtypes
        ddf = dd.from_pandas(frame, npartitions=5, sort=False)
    got = classify_dask(ddf, as_of=AS_OF).compute()
    pd.testing.assert_frame_equal(got, want)
    # Dask's default turns text into pd.NA-strings; the results are the same all the same.
    converted = classify_dask(dd.from_pandas(frame, npartitions=5, sort=False), as_of=AS_OF)
    pd.testing.assert_frame_equal(converted.compute(), want, check_index_type=False)


def test_the_rulebook_is_scattered_once_not_shipped_per_task(client):
    shipped = _broadcast(default_rulebook())
    assert isinstance(shipped, distributed.Future)
    assert len(client.who_has([shipped])[shipped.key]) == 2  # a copy on each worker
    assert client.gather(shipped) == default_rulebook()


# ------------------------------------------------------------------------------ files
def write_inputs(tmp_path: Path) -> dict[str, Path]:
    frame = accounts(4000, seed=3)
    frame.to_csv(tmp_path / "in.csv", index=False)
    keyed = frame.copy()
    keyed.index = pd.Index([f"k{i}" for i in range(4000)][::-1], name="key")
    keyed.to_parquet(tmp_path / "keyed.parquet", row_group_size=700)
    parts = tmp_path / "parts"
    parts.mkdir()
    for number, start in enumerate(range(0, 4000, 1000)):
        frame.iloc[start : start + 1000].to_parquet(parts / f"part.{number * 5}.parquet")
    return {"csv": tmp_path / "in.csv", "keyed": tmp_path / "keyed.parquet", "parts": parts}


@pytest.mark.parametrize(
    ("source", "out_name"),
    [
        ("csv", "out.csv"),
        ("csv", "out.parquet"),
        ("csv", "out_folder"),
        ("keyed", "out.parquet"),
        ("keyed", "out_folder"),
        ("keyed", "out.csv"),
        ("parts", "out.csv"),
        ("parts", "out_folder"),
    ],
)
def test_dask_outputs_equal_the_chunked_outputs(tmp_path, cluster, source, out_name):
    src = write_inputs(tmp_path)[source]
    dask_out, chunked_out = tmp_path / "dask" / out_name, tmp_path / "chunked" / out_name
    report = run_scale(
        [src],
        dask_out,
        engine="dask",
        scheduler=cluster.scheduler_address,
        as_of=AS_OF,
        chunk_rows=600,
    )
    (dask_report,) = report.files
    assert dask_report.ok, dask_report.reason
    assert dask_report.notes[0].startswith("dask: ") and dask_report.rows == 4000
    chunked = run_scale([src], chunked_out, as_of=AS_OF, chunk_rows=900).files[0]
    assert chunked.ok, chunked.reason
    assert dask_report.counts == chunked.counts
    assert dask_report.buyer_counts == chunked.buyer_counts
    if out_name.endswith(".csv"):
        assert dask_out.read_bytes() == chunked_out.read_bytes()
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(dask_out), pd.read_parquet(chunked_out))
    if source == "keyed":  # the stored index travels through, in order
        if out_name.endswith(".csv"):
            assert dask_out.read_text().splitlines()[1].startswith("k3999,")
        else:
            assert pd.read_parquet(dask_out).index[:2].tolist() == ["k3999", "k3998"]


def test_dask_csv_output_is_byte_identical_to_the_pandas_batch_path(tmp_path, cluster):
    src = write_inputs(tmp_path)["csv"]
    assert classify_file(src, out=tmp_path / "whole.csv", as_of=AS_OF).ok
    report = run_scale(
        [src],
        tmp_path / "dask.csv",
        engine="dask",
        scheduler=cluster.scheduler_address,
        as_of=AS_OF,
        chunk_rows=500,
    )
    assert report.ok, report.files[0].reason
    assert int(report.files[0].notes[0].split()[1]) > 2, "the input was split into partitions"
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()


def test_without_a_scheduler_a_local_cluster_runs_on_loopback(tmp_path, monkeypatch):
    started: list[dict] = []
    real = distributed.LocalCluster

    def spy(*args, **kwargs):
        started.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(distributed, "LocalCluster", spy)
    src = write_inputs(tmp_path)["csv"]
    report = run_scale([src], tmp_path / "out.parquet", engine="dask", workers=2, as_of=AS_OF)
    assert report.ok, report.files[0].reason
    (options,) = started
    assert options["host"] == "127.0.0.1" and options["dashboard_address"] is None
    assert options["n_workers"] == 2 and options["processes"] is True


def test_an_unreachable_scheduler_is_an_input_error(tmp_path, monkeypatch):
    monkeypatch.setattr("relationships.scale.SCHEDULER_TIMEOUT", "1s")
    src = write_inputs(tmp_path)["csv"]
    with pytest.raises(InputError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_scale([src], tmp_path / "out.csv", engine="dask", scheduler="tcp://127.0.0.1:9")


def test_a_csv_with_line_breaks_in_cells_fails_with_a_way_out(tmp_path, cluster):
    frame = accounts(3000)
    frame.loc[frame.index[::3], "Notes"] = 'called back,\nsaid "later"'
    frame.to_csv(tmp_path / "in.csv", index=False)
    dask_run = run_scale(
        [tmp_path / "in.csv"],
        tmp_path / "dask.csv",
        engine="dask",
        scheduler=cluster.scheduler_address,
        as_of=AS_OF,
        chunk_rows=200,
    )
    assert "classify it without --engine dask, or convert it to Parquet" in dask_run.files[0].reason
    assert not (tmp_path / "dask.csv").exists()
    chunked = run_scale([tmp_path / "in.csv"], tmp_path / "chunked.csv", as_of=AS_OF)
    assert chunked.ok and chunked.files[0].rows == 3000
