"""The workspace store (cvcore.workspace) and the run record (cvcore.records): round trips, atomic
writes, damaged and foreign files, quota, sweep, ownership, and two processes writing at once."""
import json
import os
import pickle
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cvcore import workspace as wsmod
from cvcore.records import RecordError, RunRecord
from cvcore.workspace import QuotaExceededError, Store, StoreError, new_token

ROOT = Path(__file__).resolve().parents[1]
keras = pytest.importorskip("keras")


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "store")


@pytest.fixture
def ws(store):
    return store.anonymous(new_token())


def tiny_model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])


# ============================================================================ ownership


def test_a_token_finds_the_same_workspace_and_names_it_only_by_a_hash(store):
    token = new_token()
    a, b = store.anonymous(token), store.anonymous(token)
    assert a == b and a.kind == "anonymous" and token not in str(a.path)
    assert store.anonymous(new_token()) != a
    assert stat.S_IMODE(a.path.stat().st_mode) == 0o700
    assert len(token) >= 22  # 128 bits or more, URL-safe


def test_a_store_folder_removed_under_a_running_server_is_made_again(store):
    import shutil

    shutil.rmtree(store.root)  # an operator's clean-up while the app runs
    ws = store.user("https://id.example", "carol")
    assert ws.path.is_dir() and stat.S_IMODE(store.root.stat().st_mode) == 0o700


@pytest.mark.parametrize("bad", ["", "short", "../../etc", "a" * 21, "x" * 200, "spaces are not ok here!!"])
def test_a_malformed_token_is_refused(store, bad):
    with pytest.raises(StoreError, match="not valid"):
        store.anonymous(bad)


def test_a_signed_in_user_is_keyed_by_issuer_and_subject(store):
    alice = store.user("https://id.example", "alice")
    assert alice == store.user("https://id.example", "alice") and alice.kind == "user"
    assert alice != store.user("https://other.example", "alice")  # the same subject at another issuer
    assert alice != store.user("https://id.example", "bob")
    assert "alice" not in str(alice.path)
    with pytest.raises(StoreError, match="issuer and a subject"):
        store.user("https://id.example", "")


# ============================================================================ runs


def test_a_run_round_trips_with_its_model_arrays_and_history(ws):
    rec = ws.new_run("train", name="Run 1", title="tiny", config={"epochs": 2}, data={"dataset": "digits"})
    assert len(rec.id) == 32 and rec.status == "running" and ws.status(rec) == "running"
    rec.history = {"loss": [1.0, float("nan")], "accuracy": [0.5, 0.6]}
    model = tiny_model()
    ws.save_model(rec.id, model)
    ws.save_arrays(rec.id, "evaluation", proba=np.eye(3, dtype="float32"), predicted=np.arange(3))
    rec.has_model, rec.status = True, "finished"
    ws.save_run(rec)
    back = ws.run(rec.id)
    assert back.history["accuracy"] == [0.5, 0.6] and np.isnan(back.history["loss"][1])
    assert (back.name, back.status, back.config, back.data) == ("Run 1", "finished", {"epochs": 2}, {"dataset": "digits"})
    loaded = ws.load_model(rec.id)
    x = np.ones((1, 4), "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    arrays = ws.load_arrays(rec.id, "evaluation")
    np.testing.assert_array_equal(arrays["predicted"], np.arange(3))
    assert [r.id for r in ws.runs()] == [rec.id] and ws.problems() == []


def test_runs_are_listed_oldest_first_by_kind_renamed_and_deleted(ws):
    first = ws.new_run("train", name="Run 1", title="a")
    second = ws.new_run("upload", name="Run 2", title="b")
    third = ws.new_run("transfer", name="Transfer 1", title="c")
    assert [r.id for r in ws.runs()] == [first.id, second.id, third.id]
    assert [r.id for r in ws.runs(("train", "upload"))] == [first.id, second.id]
    assert ws.rename_run(first.id, "  my best  ").name == "my best"
    with pytest.raises(StoreError, match="1 to 80"):
        ws.rename_run(first.id, "   ")
    ws.delete_run(second.id)
    assert [r.name for r in ws.runs()] == ["my best", "Transfer 1"]
    assert not any(p.name.startswith(".deleted") for p in (ws.path / "runs").iterdir())
    with pytest.raises(StoreError, match="no run"):
        ws.run(second.id)


def test_run_ids_never_reach_outside_the_workspace(ws):
    for bad in ("../../etc/passwd", "x" * 32, "0" * 31, None):
        with pytest.raises(RecordError, match="32 hexadecimal"):
            ws.run(bad)
        with pytest.raises(RecordError):
            ws.delete_run(bad)


def test_a_whole_run_downloads_as_a_zip(ws):
    import io
    import zipfile

    rec = ws.new_run("train", name="Run 1", title="tiny", config={"epochs": 1})
    rec.history = {"loss": [0.5]}
    ws.save_run(rec)
    ws.save_model(rec.id, tiny_model())
    with zipfile.ZipFile(io.BytesIO(ws.run_archive(rec.id, {"train.py": "print(1)"}))) as zf:
        assert sorted(zf.namelist()) == ["history.json", "model.keras", "run.json", "train.py"]
        assert json.loads(zf.read("history.json")) == {"loss": [0.5]}
        assert RunRecord.from_json(zf.read("run.json")).id == rec.id


# ============================================================================ heartbeat


def test_a_running_record_whose_job_stopped_beating_reads_as_interrupted(ws):
    rec = ws.new_run("train", name="Run 1", title="t")
    now = time.time()
    assert ws.status(rec, now=now) == "running"
    assert ws.status(rec, now=now + wsmod.STALE_AFTER_S + 1) == "interrupted"
    ws.beat(rec.id)
    assert ws.status(rec, now=time.time()) == "running"
    assert ws.run(rec.id).status == "running"  # judged when read, never written: another server's job may live
    rec.status = "finished"
    assert ws.status(rec, now=now + 10**6) == "finished"


def test_beating_keeps_the_heartbeat_fresh_while_a_job_runs(ws):
    rec = ws.new_run("train", name="Run 1", title="t")
    beat = ws.path / "runs" / rec.id / "heartbeat"
    os.utime(beat, (0, 0))
    with ws.beating(rec.id, every=0.05):
        deadline = time.monotonic() + 10
        while beat.stat().st_mtime < time.time() - 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert beat.stat().st_mtime > time.time() - 5


# ============================================================================ bad files


def test_damaged_foreign_and_newer_records_are_reported_and_skipped(ws):
    good = ws.new_run("train", name="Run 1", title="fine")

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch pwned-by-pickle",))

    planted = {}
    for label, payload in {
        "pickle": pickle.dumps(Boom()),
        "truncated": good.to_json().encode()[:40],
        "foreign": json.dumps({"hello": "world"}).encode(),
        "newer": json.dumps({**json.loads(good.to_json()), "schema": 99}).encode(),
    }.items():
        rec = ws.new_run("train", name=label, title=label)
        (ws.path / "runs" / rec.id / "run.json").write_bytes(payload)
        planted[rec.id] = label
    (ws.path / "runs" / "not-a-run-folder").mkdir()
    (ws.path / "runs" / "not-a-run-folder" / "run.json").write_text("{}")
    assert [r.id for r in ws.runs()] == [good.id]
    problems = " ".join(ws.problems())
    for run_id in planted:
        assert run_id in problems
    assert "not JSON" in problems and "newer version" in problems and "not a run record" in problems
    assert "not-a-run-folder" in problems
    assert not Path("pwned-by-pickle").exists()


def test_arrays_that_would_need_pickle_are_refused_both_ways(ws):
    rec = ws.new_run("train", name="Run 1", title="t")
    with pytest.raises(StoreError, match="Python objects"):
        ws.save_arrays(rec.id, "evaluation", bad=np.array([{"a": 1}], dtype=object))
    # A planted .npz holding an object array: read with allow_pickle=False, so refused.
    np.savez(ws.path / "runs" / rec.id / "evaluation.npz", bad=np.array([{"a": 1}], dtype=object))
    with pytest.raises(StoreError, match="cannot be read"):
        ws.load_arrays(rec.id, "evaluation")


def test_a_damaged_or_planted_model_file_is_refused(ws):
    rec = ws.new_run("train", name="Run 1", title="t")
    (ws.path / "runs" / rec.id / "model.keras").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(StoreError, match="cannot be loaded"):
        ws.load_model(rec.id)
    other = ws.new_run("train", name="Run 2", title="t")
    with pytest.raises(StoreError, match="no saved model"):
        ws.load_model(other.id)


# ============================================================================ atomic writes


def test_a_write_that_fails_midway_leaves_the_old_file_whole(ws, monkeypatch):
    import errno

    rec = ws.new_run("train", name="Run 1", title="before")
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[: len(data) // 2])  # half of it lands, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wsmod.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    rec.title = "after"
    with pytest.raises(StoreError, match="No space left.*nothing was changed"):
        ws.save_run(rec)
    monkeypatch.undo()
    assert ws.run(rec.id).title == "before"
    assert not [p for p in (ws.path / "runs" / rec.id).iterdir() if p.name.startswith(".tmp-")]


def test_a_model_save_that_fails_keeps_the_previous_model(ws):
    rec = ws.new_run("train", name="Run 1", title="t")
    ws.save_model(rec.id, tiny_model())
    before = ws.model_path(rec.id).read_bytes()

    class Broken:
        def save(self, path):
            Path(path).write_bytes(b"half a model")
            raise OSError(28, "No space left on device")

    with pytest.raises(StoreError, match="keeps its previous one"):
        ws.save_model(rec.id, Broken())
    assert ws.model_path(rec.id).read_bytes() == before
    assert not [p for p in (ws.path / "runs" / rec.id).iterdir() if p.name.startswith(".tmp-")]


WRITER = """
import sys
sys.path.insert(0, {root!r})
from cvcore.workspace import Store
ws = Store({store!r}).anonymous({token!r})
for i in range(40):
    rec = ws.new_run("train", name=f"{{sys.argv[1]}} {{i}}", title="x")
    for epoch in range(3):
        rec.history = {{"loss": [1.0] * (epoch + 1)}}
        ws.save_run(rec)
    ws.runs()
"""


def test_two_processes_writing_one_workspace_at_once(store, tmp_path):
    token = new_token()
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=str(ROOT), store=str(store.root), token=token))
    procs = [subprocess.Popen([sys.executable, str(script), name], stderr=subprocess.PIPE) for name in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
    ws = store.anonymous(token)
    runs = ws.runs()
    assert len(runs) == 80 and ws.problems() == []
    assert all(r.epochs_done == 3 for r in runs)


# ============================================================================ quota and sweep


def test_a_full_workspace_says_how_much_is_used(tmp_path):
    ws = Store(tmp_path / "s", quota_bytes=10_000).anonymous(new_token())
    folder = ws.new_folder("upload")
    (folder / "big.bin").write_bytes(b"x" * 12_000)
    with pytest.raises(QuotaExceededError) as info:
        ws.new_run("train", name="Run 1", title="t")
    assert info.value.quota == 10_000 and info.value.used >= 12_000
    assert "9.8 KiB" in str(info.value) and "Delete runs" in str(info.value)
    ws.remove(folder)
    ws.new_run("train", name="Run 1", title="t")


def test_the_quota_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CVCORE_WORKSPACE_QUOTA_MB", "3")
    assert Store(tmp_path / "s").anonymous(new_token()).quota_bytes == 3 * 1024**2
    assert Store(tmp_path / "t", quota_bytes=5).quota_bytes == 5


def test_the_sweep_removes_anonymous_workspaces_unused_for_long_and_never_a_users(tmp_path):
    store = Store(tmp_path / "s", ttl_days=30)
    old_anon, fresh_anon = store.anonymous(new_token()), store.anonymous(new_token())
    old_user = store.user("https://id.example", "alice")
    long_ago = time.time() - 31 * 86400
    for ws in (old_anon, old_user):
        os.utime(ws.path / "workspace.json", (long_ago, long_ago))
    assert store.sweep() == [old_anon.path]
    assert not old_anon.path.exists() and fresh_anon.path.exists() and old_user.path.exists()


def test_files_stay_inside_their_workspace(store):
    a, b = store.anonymous(new_token()), store.anonymous(new_token())
    folder = a.new_folder("upload")
    assert folder.parent == a.path / "files"
    with pytest.raises(StoreError, match="not inside"):
        a.remove(b.path)
    with pytest.raises(StoreError, match="1-40 lowercase"):
        a.write_json("../escape", {})
    a.write_json("dataset", {"manifest": "x"})
    assert a.read_json("dataset") == {"manifest": "x"} and b.read_json("dataset") is None
