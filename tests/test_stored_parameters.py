"""The stored form of the processing parameters never changes under a refactor.

Runs are resumed only by a workflow of the same ``params_hash``, and the parameters are saved
in the ``processing_run`` row and the Zarr attributes (``parameters``, ``layout``): the values
below were taken from the code before the parameter models were unified (issue #11), so a
change to how the models are declared, dumped or hashed fails here instead of silently
orphaning every existing run.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from fieldkit.config.workflow import Workflow, load_workflow
from fieldkit.config.workflow_files import bundled_workflows_dir
from fieldkit.store.layout import StoreLayout

WORKFLOWS = bundled_workflows_dir()

#: workflow file -> (params_hash, sha256 of json.dumps(workflow.to_dict()))
PINNED = {
    "bats-ultrasonic.yaml": ("1ed5b86392d8dcff34b07a8972e0ded23c4c47586db240a65293bf5051a14406",
                             "e0fb9feb6a297173cd43807150f6e237ef85ada47f9e464bcfcb1b966016a316"),
    "birds-16k.yaml": ("3cca618f0dabbd9dc83a8c9f0fe52e985bc7b7453ee7f62716049cd17ce7969a",
                       "f73da59786406a04f38ee25f0387ea69f59996dcfd658adcf32caa4abb31d4c3"),
    "demo.yaml": ("e3de81e56fdfcfa3a42e72c2845cacec38ca698d6f02805763ab8ae7db6469f0",
                  "cd70dc96a50a09b68acb5c105affea829ef917e33cc8136876c57dc09562058f"),
    "soundscape.yaml": ("08b3fada1992b66116aab111fb495c91c0c1f79cafd6d10b1c64ab611be2412e",
                        "8d0227c55ddacea13758eff5b2af234806b061b2eea5c9a87f43526c947ad714"),
}

BIRDS_PARAMETERS = (
    '{"name": "birds-16k", "description": "Dawn and dusk choruses at 16 kHz (8 kHz bandwidth covers '
    'most passerine song): 3 s clips, 64-band mel, 20 MFCC, 12-bin chroma, spectral centroid/bandwidth '
    'and RMS.\\n", "selection": {"sites": [], "deployments": [], "start": null, "end": null, '
    '"time_of_day": {"start": "04:00:00", "end": "21:00:00", "zone": "local"}, "statuses": ["ok", '
    '"truncated"], "min_duration_s": 3.0, "min_sample_rate_hz": null, "max_sample_rate_hz": null}, '
    '"resample": {"target_rate_hz": 16000, "quality": "HQ"}, "bit_depth": {"policy": "float32", '
    '"dither": "tpdf", "seed": 0}, "channels": {"policy": "mix", "pick": null}, "clips": {"length_s": '
    '3.0, "hop_s": 3.0, "min_valid_fraction": 0.5, "pad": "zero"}, "features": {"n_fft": 1024, '
    '"hop_length": 320, "win_length": null, "window": "hann", "n_mels": 64, "fmin_hz": 150.0, '
    '"fmax_hz": 8000.0, "n_mfcc": 20, "n_chroma": 12, "tuning": 0.0, "compute": ["mel", "mfcc", '
    '"centroid", "bandwidth", "chroma", "rms"]}, "store": {"waveform": true, "dtype": "float32", '
    '"clips_per_chunk": 16, "clips_per_shard": 128, "compressor": {"name": "zstd", "level": 1}}}'
)

BIRDS_LAYOUT = (
    '{"n_clips": 300, "samples_per_clip": 48000, "sample_rate_hz": 16000, "n_frames": 151, '
    '"features": ["mel", "mfcc", "centroid", "bandwidth", "chroma", "rms"], "n_mels": 64, "n_mfcc": '
    '20, "n_chroma": 12, "n_freq": null, "waveform": true, "waveform_dtype": "float32", '
    '"feature_dtype": "float32", "clips_per_chunk": 16, "clips_per_shard": 128, '
    '"compression_level": 1}'
)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_shipped_workflows_keep_their_hash_and_stored_parameters(name):
    workflow = load_workflow(WORKFLOWS / name)
    params_hash, stored_sha = PINNED[name]
    assert workflow.params_hash() == params_hash
    assert hashlib.sha256(json.dumps(workflow.to_dict()).encode()).hexdigest() == stored_sha


def test_the_stored_parameters_are_byte_identical_in_key_order():
    assert json.dumps(load_workflow(WORKFLOWS / "birds-16k.yaml").to_dict()) == BIRDS_PARAMETERS


@pytest.mark.parametrize(("data", "params_hash"), [
    ({"name": "t", "clips": {"length_s": 3}},
     "6f86c91818010cc65a1e84f379914fc9804c8c3c9d9ac440e3a5d0f7455f24b3"),
    ({"name": "t", "clips": {"length_s": 3}, "bit_depth": {"policy": "int16"},
      "resample": {"target_rate_hz": None, "quality": "VHQ"},
      "features": {"compute": ["stft", "mel"], "win_length": 512}},
     "ec79af1b19b7a0d90d85755a383e22b15ad70bb897dcd72b15e47aed9f42fa2d"),
])
def test_defaults_hash_as_before(data, params_hash):
    assert Workflow.from_dict(data).params_hash() == params_hash


def test_the_stored_layout_is_byte_identical():
    workflow = load_workflow(WORKFLOWS / "birds-16k.yaml")
    layout = StoreLayout.from_feature_params(300, 48000, 16000, workflow.features, waveform=workflow.store.waveform,
                                             feature_dtype=workflow.store.dtype)
    assert json.dumps(layout.to_dict()) == BIRDS_LAYOUT
    assert StoreLayout.from_dict(json.loads(BIRDS_LAYOUT)) == layout
