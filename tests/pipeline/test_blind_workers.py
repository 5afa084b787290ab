"""Workers that cannot see the driver's disk: a real `dask scheduler` and two `dask worker`
processes run as another Unix user, for whom the workspace folder is unreadable; the archive and
the store are on the S3 server. The run completes and its arrays equal a LocalCluster run on
local disk, value for value.

The workers get only the roots' URLs (in the pickled task specs) and the AWS_* variables of their
own environment. The code they import is a readable copy of ``fieldkit/`` (the repository may sit
under a folder the worker user cannot enter); their interpreter is this one when that user may
run it, else the system's ``python3.X`` of the same version with this environment's
site-packages on ``PYTHONPATH`` (a virtualenv made from a pyenv Python under ``/root`` is not
executable by another user).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest
import yaml

from fieldkit.config.workflow import Workflow
from fieldkit.pipeline.driver import run_workflow
from tests.conftest import skip_unless_required
from tests.pipeline.conftest import WORKFLOW, arrays_of, assert_same_arrays
from tests.pipeline.test_resume_distributed import _env, _process
from tests.pipeline.test_s3_process import local_and_s3_workspaces

USER = "fkworker"
REPO = Path(__file__).resolve().parents[2]


def _worker_user() -> pwd.struct_passwd:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        skip_unless_required("the blind-worker test needs root and runuser to start workers as another user")
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
        return pwd.getpwnam(USER)


def _as_user(*argv: str, env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([shutil.which("runuser") or "runuser", "-u", USER, "--", *argv], env=env, start_new_session=True, **kwargs)


def _worker_interpreter(env: dict[str, str]) -> tuple[str, list[str]]:
    """A Python the worker user may run, and what it needs on PYTHONPATH besides the code."""
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    for python, extra in ((sys.executable, []), (system, [sysconfig.get_paths()["purelib"],
                                                         sysconfig.get_paths()["platlib"]])):
        check = _as_user(python, "-c", "import distributed, zarr, s3fs, soundfile",
                         env={**env, "PYTHONPATH": os.pathsep.join(extra)}, stderr=subprocess.DEVNULL)
        if check.wait(timeout=120) == 0:
            return python, extra
    skip_unless_required(f"no Python that user {USER} may run with this environment's packages (the interpreter "
                         "and site-packages must be readable by other users; a checkout under /root is not)")
    raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Mismatched versions found")  # a system Python of the same minor version
def test_blind_workers_on_s3_equal_a_local_cluster(tmp_path, s3_server, s3_bucket) -> None:
    user = _worker_user()
    local, remote = local_and_s3_workspaces(tmp_path, s3_server, s3_bucket, count=6, seconds=8.0)
    workflow_file = tmp_path / "wf.yaml"
    workflow_file.write_text(yaml.safe_dump(WORKFLOW))
    os.chmod(remote.root, 0o700)  # root's own: the worker user cannot list or read it
    assert remote.root.stat().st_uid == 0

    readable = Path(tempfile.mkdtemp(prefix="fk-blind-", dir="/tmp"))
    procs: list[subprocess.Popen] = []
    try:
        os.chmod(readable, 0o755)
        shutil.copytree(REPO / "fieldkit", readable / "code" / "fieldkit",
                        ignore=shutil.ignore_patterns("__pycache__"))
        base_env = {"PATH": "/usr/bin:/bin", "HOME": str(readable), "LANG": "C.UTF-8",
                    **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
        python, extra = _worker_interpreter(base_env)
        worker_env = {**base_env, "PYTHONPATH": os.pathsep.join([str(readable / "code"), *extra])}
        denied = _as_user("cat", str(remote.root / "fieldkit.toml"), env=base_env, stderr=subprocess.DEVNULL)
        assert denied.wait(timeout=30) != 0, "the worker user must not read the workspace"

        port = _free_port()
        address = f"tcp://127.0.0.1:{port}"
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                       "--port", str(port), "--dashboard-address", ":0"],
                                      env=_env(), start_new_session=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        for i in range(2):
            space = readable / f"space-{i}"
            space.mkdir()
            os.chown(space, user.pw_uid, user.pw_gid)
            procs.append(_as_user(python, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                  "--no-nanny", "--no-dashboard", "--local-directory", str(space),
                                  env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
            uids = client.run(os.geteuid)
        assert sorted(uids.values()) == [user.pw_uid, user.pw_uid]

        blind = _process(remote.root, workflow_file, "--scheduler", address)
        assert blind.returncode == 0, blind.stderr[-3000:]
        doc = json.loads(blind.stdout)
        assert doc["state"] == "complete" and doc["execution"] == "scheduler" and doc["store"].startswith(s3_bucket)

        reference = run_workflow(local, Workflow.from_dict(WORKFLOW), workflow_source="test", workers=2,
                                 cluster="local")
        assert reference.state == "complete" and reference.execution == "local"
        assert doc["clips_computed"] == reference.clips_computed > 0
        assert_same_arrays(arrays_of(local, reference.store), arrays_of(remote, doc["store"]))
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(readable, ignore_errors=True)
        local.close()
        remote.close()
