"""benchmarks/gpu_estimate.py: its counters on hand-computable models, its job table against
the notebooks' gpu profile, and the README's table against the committed report."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import nbformat
import pytest

from benchmarks import gpu_estimate as ge

ROOT = Path(__file__).resolve().parents[1]
REPORT = ge.OUT_DIR / "gpu_estimate.json"


def _keras():
    import keras

    keras.mixed_precision.set_global_policy("float32")
    return keras


def test_flop_counter_is_exact_on_dense_and_conv_layers():
    keras = _keras()
    # Dense: 2 x in x out multiply-adds, + out for the bias
    dense = keras.Sequential([keras.Input((10,)), keras.layers.Dense(20, use_bias=False)])
    assert ge.forward_flops(dense)["total"] == 2 * 10 * 20
    dense = keras.Sequential([keras.Input((10,)), keras.layers.Dense(20)])
    assert ge.forward_flops(dense)["total"] == 2 * 10 * 20 + 20
    # Conv2D, 3x3, valid: 2 x output pixels (6 x 6) x kernel (3 x 3 x 3) x filters (4)
    conv = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, use_bias=False)])
    assert ge.forward_flops(conv)["total"] == 2 * 6 * 6 * 3 * 3 * 3 * 4
    # two layers add up (the second: 2 x 4 x 4 x (3 x 3 x 4) x 2)
    two = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, use_bias=False),
            keras.layers.Conv2D(2, 3, use_bias=False),
        ]
    )
    assert ge.forward_flops(two)["total"] == 2 * 6 * 6 * 27 * 4 + 2 * 4 * 4 * 36 * 2


def test_flop_counter_fills_the_profilers_gaps():
    keras = _keras()
    # Conv3DTranspose (stride 2, kernel 2): every input voxel meets every kernel weight once
    up = keras.Sequential(
        [keras.Input((4, 4, 4, 8)), keras.layers.Conv3DTranspose(2, 2, strides=2, use_bias=False)]
    )
    counted = ge.forward_flops(up)
    assert counted["profiled"] == 0  # no FLOP statistic registered for its op
    assert counted["total"] == 2 * 4**3 * 8 * 2**3 * 2
    # a recurrent layer: 2 x its parameters x time steps (the loop body is not profiled)
    lstm = keras.Sequential([keras.Input((60, 4)), keras.layers.LSTM(16)])
    assert ge.forward_flops(lstm)["supplement"] == 2 * lstm.count_params() * 60


def test_activation_and_memory_rules_on_a_known_model():
    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(5),
        ]
    )
    # outputs: 6 x 6 x 4, the same flattened, 5
    assert ge.activation_elements(model) == 144 + 144 + 5
    assert ge.largest_output(model) == 144
    params = model.count_params()
    assert params == 3 * 3 * 3 * 4 + 4 + 144 * 5 + 5
    # 18 B per parameter; 2 B per activation element per sample, times the factor
    assert ge.training_memory_bytes(params, 293, batch=16) == 18 * params + 2 * 293 * 16
    assert ge.training_memory_bytes(params, 293, 16, factor=2) == 18 * params + 4 * 293 * 16
    assert ge.inference_memory_bytes(params, 144, batch=16) == 6 * params + 4 * 144 * 16


def test_every_chapter_has_an_entry():
    chapters = [f"{k:02d}" for k in range(10)]
    assert list(ge.NOTEBOOKS) == chapters
    assert list(ge.GPU_KNOBS) == chapters
    assert list(ge.CPU_SIDE) == chapters
    for chapter, name in ge.NOTEBOOKS.items():
        assert (ROOT / "notebooks" / f"{name}.ipynb").is_file(), chapter
    report = json.loads(REPORT.read_text())
    assert list(report["chapters"]) == chapters


def _gpu_picks(notebook: str) -> dict[str, str]:
    """NAME -> the source of its gpu value, for every `NAME = S.pick(..., gpu=VALUE)`."""
    picks = {}
    for cell in nbformat.read(ROOT / "notebooks" / f"{notebook}.ipynb", as_version=4).cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(
            line for line in cell.source.splitlines() if not line.lstrip().startswith(("!", "%"))
        )
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Attribute)
                and node.value.func.attr == "pick"
                and isinstance(node.targets[0], ast.Name)
            ):
                for keyword in node.value.keywords:
                    if keyword.arg == "gpu":
                        picks[node.targets[0].id] = ast.unparse(keyword.value)
    return picks


@pytest.mark.parametrize("chapter", list(ge.NOTEBOOKS))
def test_the_knobs_match_the_notebooks_gpu_profile(chapter):
    from helpers import config

    picks = _gpu_picks(ge.NOTEBOOKS[chapter])
    profile = config.PROFILES["gpu"]
    for knob, value in ge.GPU_KNOBS[chapter].items():
        if knob.startswith("S."):
            assert getattr(profile, knob[2:]) == value, (chapter, knob)
            continue
        assert knob in picks, f"{chapter}: the notebook has no S.pick for {knob}"
        assert ast.literal_eval(picks[knob]) == value, (
            f"{chapter}: {knob} is gpu={picks[knob]} in the notebook but {value!r} in "
            "benchmarks/gpu_estimate.py: update GPU_KNOBS and re-run the script"
        )


def test_the_committed_report_holds_the_current_job_table():
    report = json.loads(REPORT.read_text())
    jobs = ge._jobs(report["sizes"])
    keys = (
        "chapter",
        "name",
        "models",
        "samples",
        "epochs",
        "batch",
        "repeats",
        "steps",
        "val_samples",
        "ceiling",
        "fused",
        "loop",
    )
    current = [{k: getattr(job, k) for k in keys} for job in jobs]
    committed = [{k: row[k] for k in keys} for row in report["jobs"]]
    assert committed == current, "re-run .venv/bin/python benchmarks/gpu_estimate.py"
    assert {k for job in jobs for k in job.models} <= set(report["models"])


def test_the_readme_table_is_the_reports():
    report = json.loads(REPORT.read_text())
    table = ge.markdown_table(report)
    assert table in (ROOT / "README.md").read_text()
    assert table in (ge.OUT_DIR / "gpu_estimate.md").read_text()
    for chapter in report["chapters"].values():
        assert chapter["gpu_minutes_low"] <= chapter["gpu_minutes_high"]
        assert chapter["gpu_memory_gb_low"] <= chapter["gpu_memory_gb_high"]


def test_the_calibration_rate_follows_from_the_quoted_numbers():
    report = json.loads(REPORT.read_text())
    cal = report["calibration"]
    resnet = cal["resnet50_forward_flops"]
    assert 7.0e9 < resnet < 8.5e9  # Keras ResNet50 at 224 px: about 3.9 G multiply-adds
    fast = cal["t4_inference_img_s"] / (cal["v100_inference_img_s"] / cal["v100_training_img_s"])
    assert math.isclose(cal["sustained_flop_s"]["fast"], fast * 3 * resnet, rel_tol=1e-9)
    slow = cal["t4_inference_img_s"] / 3
    assert math.isclose(cal["sustained_flop_s"]["slow"], slow * 3 * resnet, rel_tol=1e-9)


def test_chapter_03_pipeline_passes_follow_the_notebook():
    # cell 66: 3 uncached PNG variants decode every epoch, 3 cached ones once; 6 variants
    # augment every epoch
    epochs = ge.GPU_KNOBS["03"]["TIMED_EPOCHS"]
    assert ge.PIPELINE_PASSES == {"decode": 3 * epochs + 3, "augment": 6 * epochs}
    minutes = ge.pipeline_minutes({"decode": 1.0, "augment": 2.0}, films=600)
    assert minutes["low"] == pytest.approx(600 * (18 * 1.0 + 30 * 2.0) / 1e3 / 60, rel=0.05)
    assert minutes["high"] == pytest.approx(1.5 * minutes["low"], rel=0.05)
