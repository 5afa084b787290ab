"""The task specs carry the workflow's own parameter models to the kernels (issue #11)."""

from __future__ import annotations

import pickle

import numpy as np

from fieldkit.config.params import FeatureParams
from fieldkit.config.workflow import Workflow
from fieldkit.pipeline.plan import plan_run
from fieldkit.pipeline.tasks import process_task
from fieldkit.store.zarr_store import create_store, open_store
from tests.pipeline.conftest import WORKFLOW


def _plan(ws, workflow: Workflow, store: str = ""):
    with ws.catalogue.read() as session:
        return plan_run(session, workflow, ws.paths.archive, store)


def test_the_spec_holds_the_workflows_sections_and_pickles(processed, workflow):
    ws, _ = processed
    plan = _plan(ws, workflow)
    assert plan.dsp.features is workflow.features and plan.dsp.bit_depth is workflow.bit_depth
    assert plan.dsp.resample == workflow.resample and plan.dsp.target_rate_hz == 16000
    task = plan.tasks[0]
    assert pickle.loads(pickle.dumps(task)) == task  # what a Dask worker receives


def test_a_native_rate_workflow_gets_the_recordings_rate(processed):
    ws, _ = processed
    native = Workflow.from_dict({**WORKFLOW, "resample": {"target_rate_hz": None},
                                 "selection": {"min_sample_rate_hz": 48000, "max_sample_rate_hz": 48000}})
    plan = _plan(ws, native)
    assert plan.dsp.target_rate_hz == 48000 and plan.dsp.resample.quality == "HQ"
    assert plan.layout.sample_rate_hz == 48000


def test_kernel_settings_and_logmel_from_a_workflow_reach_the_layout(processed):
    ws, _ = processed
    features = {**WORKFLOW["features"], "compute": ["logmel", "stft"], "power": 1.0, "top_db": None}
    workflow = Workflow.from_dict({**WORKFLOW, "features": features})
    assert workflow.params_hash() != Workflow.from_dict(WORKFLOW).params_hash()
    assert workflow.to_dict()["features"]["power"] == 1.0
    plan = _plan(ws, workflow)
    assert plan.dsp.features.power == 1.0 and plan.dsp.features.top_db is None
    assert plan.layout.variable("logmel").shape[2] == 40
    assert plan.layout.variable("stft").shape[2] == 512 // 2 + 1


def test_a_waveform_only_workflow_plans_and_processes(processed, tmp_path):
    ws, _ = processed
    workflow = Workflow.from_dict({**WORKFLOW, "features": {"compute": []}})
    assert workflow.features == FeatureParams(compute=())
    store = str(tmp_path / "waveform-only.zarr")
    plan = _plan(ws, workflow, store)
    assert {v.name for v in plan.layout.variables()} >= {"waveform", "valid_samples"}
    assert not {"mel", "mfcc", "rms"} & {v.name for v in plan.layout.variables()}
    create_store(store, plan.layout, plan.coords, {"parameters": workflow.to_dict()})
    task = plan.tasks[0]
    result = process_task(task)  # in this process: what a worker runs
    assert result.clips_computed == task.region_stop - task.region_start
    ds = open_store(store)
    try:
        region = slice(task.region_start, task.region_stop)
        real = ds["recording_id"].values[region] >= 0
        assert real.any()
        assert np.all(ds["valid_samples"].values[region][real] > 0)
        assert not np.isnan(ds["waveform"].values[region][real]).any()
    finally:
        ds.close()
