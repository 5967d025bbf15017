"""Bad input across pydl's public surface raises the right exception with a message naming
the op, returns the value the contract defines, or (for the `pydl` command) exits nonzero
with a clear message and no traceback. The table is in tests/bad_input_cases.py.

The cases run in one worker subprocess, so a crash in compiled code fails its case instead
of killing pytest: the worker streams one JSON line per finished case; when it dies, the
case it was running is reported as crashed and a new worker takes the remaining ones."""
from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import pydl

import bad_input_cases as table

HERE = Path(__file__).resolve().parent

CASE_TIMEOUT_S = 60


def _worker_env():
    env = dict(os.environ)
    # The worker imports the same pydl as this process (the source tree or a sanitized copy).
    root = str(Path(pydl.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _run_worker(ids, env):
    """Results of one worker over ids, in order; stops early when the worker dies or a
    case outlasts CASE_TIMEOUT_S. Returns (results, None) or (results, failure) where
    failure describes the end of the case after the last result."""
    results = []
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, str(HERE / "bad_input_cases.py")], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, env=env, cwd=HERE)
        proc.stdin.write(json.dumps(ids).encode())
        proc.stdin.close()
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        buf, failure = b"", None
        deadline = time.monotonic() + CASE_TIMEOUT_S
        while len(results) < len(ids):
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                proc.kill()
                failure = f"timed out after {CASE_TIMEOUT_S} s"
                break
            chunk = os.read(proc.stdout.fileno(), 1 << 16)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                results.append(json.loads(line))
                deadline = time.monotonic() + CASE_TIMEOUT_S
        proc.stdout.close()
        code = proc.wait()
        if failure is None and len(results) < len(ids):
            failure = f"worker died with exit status {code}"
        if failure is not None:
            err.seek(0)
            failure += "; its stderr ends with:\n" + err.read().decode(errors="replace")[-3000:]
    return results, failure


@pytest.fixture(scope="module")
def outcomes(request):
    """case id -> result, running each case selected in this session once."""
    selected = {item.callspec.params["case_id"] for item in request.session.items
                if item.originalname == "test_bad_input" and hasattr(item, "callspec")}
    env, out = _worker_env(), {}
    pending = [c for c in table.CASES if c in selected]
    while pending:
        results, failure = _run_worker(pending, env)
        for res in results:
            out[res["id"]] = res
        pending = pending[len(results):]
        if failure is not None:
            out[pending[0]] = {"outcome": "crashed", "message": failure}
            pending = pending[1:]
    return out


def _describe(res):
    if res["outcome"] == "raised":
        return f"raised {res['type']}: {res['message']}\n{res['traceback']}"
    return json.dumps(res)[:3000]


def _check(case, res):
    """What is wrong with a result, or None."""
    if res["outcome"] == "crashed":
        return res["message"]
    if case.kind == "value":
        return None if res["outcome"] == "ok" else _describe(res)
    if case.kind == "bad":
        expected = case.exc if isinstance(case.exc, tuple) else (case.exc,)
        names = [f"{e.__module__}.{e.__qualname__}" for e in expected]
        if res["outcome"] != "raised":
            return f"expected {' or '.join(names)}, but the call returned"
        if not any(n in res["mro"] for n in names):
            return f"expected {' or '.join(names)}; {_describe(res)}"
        if case.op.lower() not in res["message"].lower():
            return f"the message does not name {case.op!r}: {res['message']!r}"
        return None
    if res["outcome"] != "exit":  # the command raised instead of exiting
        return _describe(res)
    if res["code"] == 0:
        return f"exit status 0; stderr: {res['stderr']!r}"
    if "Traceback" in res["stderr"]:
        return f"a traceback instead of a message:\n{res['stderr']}"
    if case.op.replace("{file}", "a-file") not in res["stderr"]:
        return f"the message does not say {case.op!r}: {res['stderr']!r}"
    return None


@pytest.mark.parametrize("case_id", list(table.CASES))
def test_bad_input(outcomes, case_id):
    res = outcomes[case_id]
    if res["outcome"] == "skip":
        pytest.skip(res["message"])
    problem = _check(table.CASES[case_id], res)
    if problem:
        pytest.fail(f"{case_id}: {problem}", pytrace=False)
