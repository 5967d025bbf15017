"""Checkpoints: round trips, atomic writes under SIGKILL, and clear errors for damaged,
foreign or mismatched files (never a partial load)."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import pydl
from pydl.serialization import CheckpointError, load_checkpoint, save_checkpoint


def _trained(seed=0, steps=3):
    pydl.manual_seed(seed)
    model = pydl.nn.Sequential(pydl.nn.Linear(5, 7), pydl.nn.ReLU(), pydl.nn.Linear(7, 3))
    opt = pydl.optim.Adam(model.parameters(), lr=0.05)
    sched = pydl.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    x = pydl.randn(11, 5)
    for _ in range(steps):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()
        sched.step()
    return model, opt, sched


def _fresh():
    model = pydl.nn.Sequential(pydl.nn.Linear(5, 7), pydl.nn.ReLU(), pydl.nn.Linear(7, 3))
    opt = pydl.optim.Adam(model.parameters(), lr=0.05)
    sched = pydl.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, opt, sched


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64"])
def test_tensor_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(3)
    t = pydl.tensor(rng.standard_normal((3, 5)) * 10).to(getattr(pydl, dtype))
    path = tmp_path / "t.safetensors"
    pydl.save({"a": t, "b": np.arange(7)}, path, metadata={"note": "hi", "n": 3})
    back = pydl.load(path)
    assert set(back) == {"a", "b"}
    assert back["a"].dtype == t.dtype and back["a"].shape == t.shape
    assert np.array_equal(back["a"].numpy().astype(np.float64), t.numpy().astype(np.float64))
    assert np.array_equal(back["b"].numpy(), np.arange(7))
    assert pydl.serialization.load_metadata(path) == {"note": "hi", "n": "3"}


def test_save_rejects_non_tensors(tmp_path):
    with pytest.raises(TypeError, match="save"):
        pydl.save({"a": [1, 2]}, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="reserved"):
        pydl.save({"a": np.ones(2)}, tmp_path / "x.safetensors", metadata={"sha256": "x"})


def test_checkpoint_round_trip_restores_everything(tmp_path):
    model, opt, sched = _trained()
    path = tmp_path / "ck.safetensors"
    pydl.manual_seed(123)
    pydl.randn(4)  # move the generator away from its seed
    rng_before = pydl.get_rng_state()
    save_checkpoint(path, model=model, optimizer=opt, scheduler=sched, step=3,
                    config={"width": 7}, extra={"losses": [1.5, 1.25], "buffer": np.arange(4.0)})
    expect_next = pydl.randn(6).numpy()
    pydl.manual_seed(999)
    m2, o2, s2 = _fresh()
    info = load_checkpoint(path, m2, o2, s2)
    assert info["step"] == 3 and info["config"] == {"width": 7}
    assert info["extra"]["losses"] == [1.5, 1.25]
    assert np.array_equal(info["extra"]["buffer"].numpy(), np.arange(4.0))
    assert pydl.get_rng_state()["numpy"] == rng_before["numpy"]
    assert np.array_equal(pydl.randn(6).numpy(), expect_next)
    for (k, a), (_, b) in zip(model.state_dict().items(), m2.state_dict().items()):
        assert np.array_equal(a.numpy(), b.numpy()), k
    assert s2.state_dict() == sched.state_dict()
    sa, sb = opt.state_dict(), o2.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i in sa["state"]:
        for k, v in sa["state"][i].items():
            w = sb["state"][i][k]
            assert np.array_equal(np.asarray(v.numpy() if hasattr(v, "numpy") else v),
                                  np.asarray(w.numpy() if hasattr(w, "numpy") else w)), (i, k)
    # Both continue identically.
    x = pydl.randn(11, 5)
    for m, o in ((model, opt), (m2, o2)):
        o.zero_grad()
        (m(x) ** 2).mean().backward()
        o.step()
    for a, b in zip(model.parameters(), m2.parameters()):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())


def _snapshot(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


def _assert_untouched(model, before):
    for p, b in zip(model.parameters(), before):
        assert np.array_equal(p.detach().numpy(), b)


@pytest.fixture
def checkpoint(tmp_path):
    model, opt, sched = _trained()
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, model=model, optimizer=opt, scheduler=sched, step=3, config={"width": 7})
    return path


@pytest.mark.parametrize("keep", [0, 5, 8, 40, -1, -100])
def test_truncated_file_is_refused(checkpoint, keep):
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])
    m, o, s = _fresh()
    before = _snapshot(m)
    with pytest.raises(CheckpointError, match="ck.safetensors"):
        load_checkpoint(checkpoint, m, o, s)
    _assert_untouched(m, before)
    with pytest.raises(ValueError, match="ck.safetensors"):
        pydl.load(checkpoint)


def test_corrupted_data_is_refused(checkpoint):
    data = bytearray(checkpoint.read_bytes())
    data[-3] ^= 0x5A  # inside the tensor data: safetensors itself would not notice
    checkpoint.write_bytes(bytes(data))
    m, o, s = _fresh()
    before = _snapshot(m)
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(checkpoint, m, o, s)
    _assert_untouched(m, before)


def test_corrupted_header_is_refused(checkpoint):
    data = bytearray(checkpoint.read_bytes())
    data[10] = ord("#")
    checkpoint.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(checkpoint, _fresh()[0])


def _rewrite_metadata(path, **changes):
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["__metadata__"].update(changes)
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + n:])


def test_wrong_version_is_refused(checkpoint):
    _rewrite_metadata(checkpoint, format_version="99")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(checkpoint, _fresh()[0])


def test_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": np.ones(3, np.float32)}, str(path))
    with pytest.raises(CheckpointError, match="not a pydl checkpoint"):
        pydl.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        pydl.load(tmp_path / "nothing.safetensors")


def test_wrong_model_is_refused(checkpoint):
    other = pydl.nn.Sequential(pydl.nn.Linear(5, 8), pydl.nn.ReLU(), pydl.nn.Linear(8, 3))
    before = _snapshot(other)
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(checkpoint, other)
    _assert_untouched(other, before)
    with pytest.raises(CheckpointError, match="'Sequential' model, not a 'Linear'"):
        load_checkpoint(checkpoint, pydl.nn.Linear(5, 3))
    deeper = pydl.nn.Sequential(pydl.nn.Linear(5, 7), pydl.nn.ReLU(), pydl.nn.Linear(7, 3),
                                pydl.nn.Linear(3, 3))
    with pytest.raises(CheckpointError, match="unexpected|missing"):
        load_checkpoint(checkpoint, deeper)


def test_wrong_optimizer_leaves_model_untouched(checkpoint):
    m = _fresh()[0]
    before = _snapshot(m)
    with pytest.raises(CheckpointError, match="Adam state, not SGD"):
        load_checkpoint(checkpoint, m, pydl.optim.SGD(m.parameters(), lr=0.1))
    _assert_untouched(m, before)


def test_config_mismatch_is_refused(checkpoint):
    with pytest.raises(CheckpointError, match="configuration"):
        load_checkpoint(checkpoint, _fresh()[0], strict_config={"width": 8})


def test_plain_tensor_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "t.safetensors"
    pydl.save({"a": np.ones(2)}, path)
    with pytest.raises(CheckpointError, match="no training state"):
        load_checkpoint(path, _fresh()[0])


_SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    import pydl
    path = sys.argv[1]
    big = np.empty((4, 1 << 21), np.float32)  # 32 MiB per save
    k = 0
    while True:
        big[:] = k
        pydl.save({"w": big, "k": np.array([k])}, path)
        if k == 0:
            print("ready", flush=True)
        k += 1
""")


def test_killed_save_leaves_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "ck.safetensors"
    script = tmp_path / "saver.py"
    script.write_text(_SAVER)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for delay in (0.05, 0.23, 0.41):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                                env=env)
        try:
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(delay)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        back = pydl.load(path)
        k = int(back["k"].numpy()[0])
        w = back["w"].numpy()
        assert w.shape == (4, 1 << 21) and w[0, 0] == k and w[-1, -1] == k
