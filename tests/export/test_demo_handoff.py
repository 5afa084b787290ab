"""``fieldkit demo`` writes the Parquet-with-audio export and its one-line HF loader works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from fieldkit.export.flac_audio import FLOAT_FLAC_STEP
from fieldkit.store.zarr_store import open_store
from tests.test_cli_foundation import run

CHECK = """
import io, json, sys
import soundfile as sf
from datasets import Audio
{loader}
raw = ds.cast_column("audio", Audio(decode=False))
print(json.dumps({{s: [[row["clip_id"], sf.read(io.BytesIO(row["audio"]["bytes"]),
                                                 dtype="float32")[0].tolist()]
                      for row in raw[s]] for s in raw}}))
"""


def test_demo_prints_a_one_line_hf_loader_that_loads_its_audio(tmp_path):
    result = run("demo", str(tmp_path / "demo"), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    stage = next(s for s in doc["stages"] if s["name"] == "export-hf")
    out = tmp_path / "demo" / stage["out_dir"]
    assert stage["loader"] == f"from datasets import load_dataset; ds = load_dataset({str(out.resolve())!r})"
    assert stage["loader"] in " ".join(stage["summary"].split())
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-c", CHECK.format(loader=stage["loader"])], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    decoded = json.loads(done.stdout.strip().splitlines()[-1])
    process = next(s for s in doc["stages"] if s["name"] == "process")
    store = open_store(tmp_path / "demo" / process["store"], consolidated=True, chunks=None)
    n = 0
    for rows in decoded.values():
        for clip_id, samples in rows:
            valid = int(store["valid_samples"].values[clip_id])
            stored = np.clip(store["waveform"].values[clip_id][:valid].astype(np.float64), -1, 1)
            assert np.max(np.abs(np.asarray(samples) - stored)) <= FLOAT_FLAC_STEP
            n += 1
    assert n == sum(json.loads((out / "export.json").read_text())["splits"].values()) > 0


def test_export_publisher_comes_from_fieldkit_toml_unless_given(tmp_path):
    assert run("demo", str(tmp_path / "demo"), "--json").exit_code == 0
    toml = tmp_path / "demo" / "fieldkit.toml"
    text = toml.read_text()
    assert '[export]\nlicence = "CC-BY-4.0"' in text
    toml.write_text(text.replace('# creator = "Your lab"', 'creator = "Wood Lab"')
                    .replace('licence = "CC-BY-4.0"', 'licence = "CC0-1.0"'))
    result = run("-w", str(tmp_path / "demo"), "export", "demo", "--format", "numpy",
                 "--url", "https://example.org/wood", "--json")
    assert result.exit_code == 0, result.output
    out = Path(json.loads(result.stdout)["out_dir"])
    croissant = json.loads((out / "croissant.json").read_text())
    assert croissant["creator"]["name"] == "Wood Lab" and croissant["license"] == "CC0-1.0"
    assert croissant["url"] == "https://example.org/wood"
