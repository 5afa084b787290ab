"""The ``[dask.cluster]`` section: its validation, its layers (file, environment), ``config show``,
the execution rule's batch paths, and the dask-jobqueue clusters it makes for SLURM, PBS, SGE and
LSF: real cluster objects (their scheduler starts in this process) whose ``job_script()`` is what
would be submitted; nothing is submitted."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fieldkit.cli.app import app
from fieldkit.config.settings import CONFIG_FILENAME, ClusterSettings, DaskSettings, default_config_toml, load_settings
from fieldkit.errors import ConfigError
from fieldkit.pipeline.execution import choose_path
from fieldkit.pipeline.jobqueue import cluster_class, jobqueue_kwargs

SECTION = """
[dask.cluster]
kind = "pbs"
queue = "longq"
account = "lab42"
cores = 4
memory = "6GiB"
processes = 2
walltime = "02:30:00"
job_script_prologue = ["module load python/3.11"]
job_extra_directives = ["-V"]
local_directory = "/scratch/fk"
min_workers = 2
max_workers = 16
"""


@pytest.fixture
def root(tmp_path):
    (tmp_path / CONFIG_FILENAME).write_text(default_config_toml(), encoding="utf-8")
    return tmp_path


def test_the_section_from_the_file(root):
    (root / CONFIG_FILENAME).write_text(SECTION)
    loaded = load_settings(root)
    jobs = loaded.settings.dask.cluster
    assert (jobs.kind, jobs.queue, jobs.account, jobs.cores, jobs.memory, jobs.processes, jobs.walltime) == (
        "pbs", "longq", "lab42", 4, "6GiB", 2, "02:30:00")
    assert (jobs.min_workers, jobs.max_workers, jobs.local_directory) == (2, 16, "/scratch/fk")
    assert jobs.job_script_prologue == ["module load python/3.11"] and jobs.job_extra_directives == ["-V"]
    assert loaded.sources["dask.cluster.queue"] == "file" and loaded.sources["dask.cluster.interface"] == "default"


def test_the_default_file_parses_and_says_auto(root):
    assert load_settings(root).settings.dask.cluster == ClusterSettings(kind="auto")


@pytest.mark.parametrize("layer", ["file", "env"])
def test_a_string_is_the_kind_alone(root, layer):
    """``dask.cluster = "local"`` (the setting before the section existed) still works."""
    if layer == "file":
        (root / CONFIG_FILENAME).write_text('[dask]\ncluster = "slurm"\n')
        loaded = load_settings(root)
    else:
        loaded = load_settings(root, env={"FIELDKIT_DASK__CLUSTER": "slurm"})
    assert loaded.settings.dask.cluster.kind == "slurm" and loaded.sources["dask.cluster.kind"] == layer
    assert DaskSettings(cluster="lsf").cluster.kind == "lsf"


def test_the_environment_sets_one_key_or_a_list(root):
    loaded = load_settings(root, env={"FIELDKIT_DASK__CLUSTER__QUEUE": "short",
                                      "FIELDKIT_DASK__CLUSTER__JOB_EXTRA_DIRECTIVES": '["--qos=long", "--gres=gpu:0"]',
                                      "FIELDKIT_DASK__CLUSTER__JOB_SCRIPT_PROLOGUE": "module load python"})
    jobs = loaded.settings.dask.cluster
    assert (jobs.queue, jobs.job_extra_directives, jobs.job_script_prologue) == (
        "short", ["--qos=long", "--gres=gpu:0"], ["module load python"])


@pytest.mark.parametrize(("text", "named"), [
    ('[dask.cluster]\nkind = "condor"\n', "dask.cluster.kind"),
    ('[dask.cluster]\nqueu = "short"\n', "dask.cluster.queu"),  # a typo is named, not ignored
    ('[dask.cluster]\ncores = 0\n', "dask.cluster.cores"),
    ('[dask.cluster]\nmin_workers = 0\n', "dask.cluster.min_workers"),
])
def test_a_bad_section_names_the_key(root, text, named):
    (root / CONFIG_FILENAME).write_text(text)
    with pytest.raises(ConfigError, match=named):
        load_settings(root)


def test_config_show_shows_the_section(root):
    (root / CONFIG_FILENAME).write_text(SECTION)
    result = CliRunner().invoke(app, ["-w", str(root), "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["settings"]["dask"]["cluster"]["queue"] == "longq"
    assert doc["settings"]["dask"]["cluster"]["max_workers"] == 16
    assert doc["sources"]["dask.cluster.walltime"] == "file"


@pytest.mark.parametrize("kind", ["slurm", "pbs", "sge", "lsf"])
def test_the_rule_sends_batch_kinds_to_jobs(kind, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    settings = DaskSettings(cluster={"kind": kind, "min_workers": 2, "max_workers": 8, "cores": 4, "memory": "8GiB"})
    path = choose_path(kind, None, None, settings, 600.0)
    assert (path.kind, path.workers) == (kind, 8) and f"{kind.upper()} jobs: 2 to 8 workers" in path.reason
    assert choose_path(kind, None, 3, settings, 600.0).workers == 3  # --workers: the most at once
    assert choose_path(kind, "tcp://s:8786", None, settings, 600.0).kind == "scheduler"  # an address wins


JOBS = ClusterSettings(kind="pbs", queue="longq", account="lab42", cores=4, memory="6GiB", processes=2,
                       walltime="02:30:00", job_script_prologue=["module load python/3.11"],
                       job_extra_directives=["-V"], local_directory="/scratch/fk")
#: What each scheduler's job script must say of the queue, the account, the walltime and the
#: memory (dask-jobqueue's directives; SGE's memory is a site's resource_spec, so only the
#: worker's --memory-limit carries it).
EXPECTED = {
    "slurm": ["#SBATCH -p longq", "#SBATCH -A lab42", "#SBATCH -t 02:30:00", "#SBATCH --mem=6G",
              "#SBATCH --cpus-per-task=4", "#SBATCH -V"],
    "pbs": ["#PBS -q longq", "#PBS -A lab42", "#PBS -l walltime=02:30:00", "#PBS -l select=1:ncpus=4:mem=6144MB",
            "#PBS -V"],
    "sge": ["#$ -q longq", "#$ -P lab42", "#$ -l h_rt=02:30:00", "#$ -V"],
    "lsf": ["#BSUB -q longq", '#BSUB -P "lab42"', "#BSUB -W 02:30", "#BSUB -n 4", "#BSUB -M 6442451", "#BSUB -V"],
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_the_section_makes_the_job_script(kind):
    cluster = cluster_class(kind)(**jobqueue_kwargs(kind, JOBS), scheduler_options={"dashboard_address": ":0"})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    lines = script.splitlines()
    for line in EXPECTED[kind]:
        assert line in lines, (line, script)
    assert lines.index("module load python/3.11") < next(i for i, s in enumerate(lines) if "dask_worker" in s)
    worker = next(s for s in lines if "distributed.cli.dask_worker" in s)
    # two worker processes per job, each with half the job's cores and memory, scratch on the node
    for part in ("--nworkers 2", "--nthreads 2", "--memory-limit 3.00GiB", "--local-directory /scratch/fk"):
        assert part in worker, (part, worker)
    assert any("fieldkit-worker" in s for s in lines[:3])  # the job name squeue/qstat/bjobs show


def test_lsf_walltime_is_hours_and_minutes():
    assert jobqueue_kwargs("lsf", JOBS.model_copy(update={"walltime": "00:10:30"}))["walltime"] == "00:11"
    assert jobqueue_kwargs("lsf", JOBS.model_copy(update={"walltime": "30"}))["walltime"] == "30"


def test_unset_values_are_left_to_dask_config():
    kwargs = jobqueue_kwargs("sge", ClusterSettings(kind="sge"))
    assert "queue" not in kwargs and "project" not in kwargs and "interface" not in kwargs
    assert "account" not in jobqueue_kwargs("slurm", ClusterSettings(kind="slurm"))


def test_a_killed_batch_worker_names_the_batch_settings():
    """A task whose worker died each time it ran: the message says what to change for batch jobs
    (their memory is dask.cluster.memory), and the LocalCluster's settings otherwise."""
    from distributed import KilledWorker

    from fieldkit.pipeline.runloop import failure_message as _failure_message
    from fieldkit.pipeline.spec import ItemSpec, TaskSpec

    item = ItemSpec(recording_id=7, path="/archive/a.wav", subtype="PCM_16", sample_rate_hz=48_000, channels=1,
                    frames_present=48_000, channel=-1, n_clips=1, clip_start=0)
    task = TaskSpec(store="/stores/s.zarr", region_start=0, region_stop=8, clips_per_shard=8, items=(item,), dsp=None)
    died = KilledWorker("fieldkit-run1-clips0", None, 3)
    on_slurm = _failure_message(task, died, "slurm")
    assert "7 (/archive/a.wav)" in on_slurm and "raise dask.cluster.memory" in on_slurm
    assert "lower dask.n_workers or raise dask.memory_limit" in _failure_message(task, died, "local")
