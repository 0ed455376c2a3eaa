"""Tests of helpers.ehr_models (GRU-D cell, mortality models, Cox loss) and smoke runs of the
chapter-08 benchmarks."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from benchmarks.report import validate
from helpers import ehr_models as em
from tests.conftest import require


def _cell(units=3, d=2):
    cell = em.GRUDCell(units, d)
    cell.build((None, 3 * d))
    return cell


def test_grud_cell_decays_missing_input_from_last_value_to_mean():
    d = 2
    cell = _cell(units=3, d=d)
    x_last = np.array([[2.0, -1.0]], dtype=np.float32)
    h = np.zeros((1, 3), dtype=np.float32)
    missing = np.array([[0.0, 0.0, 0.0, 0.0, 5.0, 5.0]], dtype=np.float32)  # x, m, delta
    # zero decay weights: gamma = exp(-relu(0)) = 1, the last value is carried forward
    _, (_, carried) = cell(missing, [h, x_last])
    assert np.allclose(carried, x_last)
    # a strong decay: long after the last measurement the input is the mean (0)
    cell.w_x.assign(np.full(d, 10.0, dtype=np.float32))
    out_decayed, _ = cell(missing, [h, x_last])
    cell.w_x.assign(np.zeros(d, dtype=np.float32))
    cell.kernel.assign(np.asarray(cell.kernel) * 1.0)
    out_carried, _ = cell(missing, [h, x_last])
    assert not np.allclose(out_decayed, out_carried)  # the decay changed what the GRU saw
    zero_last = np.zeros_like(x_last)
    out_mean, _ = cell(missing, [h, zero_last])
    cell.w_x.assign(np.full(d, 10.0, dtype=np.float32))
    out_decayed_again, _ = cell(missing, [h, x_last])
    assert np.allclose(out_decayed_again, out_mean, atol=1e-4)  # decayed = imputed mean


def test_grud_cell_observed_input_updates_last_value_and_hidden_decay():
    d = 2
    cell = _cell(units=4, d=d)
    step = np.array([[0.5, 3.0, 1.0, 0.0, 0.0, 2.0]], dtype=np.float32)  # var 0 seen, var 1 not
    x_last = np.array([[9.0, 7.0]], dtype=np.float32)
    _, (_, new_last) = cell(step, [np.zeros((1, 4), np.float32), x_last])
    assert np.allclose(new_last, [[0.5, 7.0]])  # seen value replaces, missing keeps its last
    # hidden-state decay: with a huge positive decay the old state is forgotten entirely
    h_old = np.ones((1, 4), dtype=np.float32)
    cell.b_h.assign(np.full(4, 50.0, dtype=np.float32))
    forgot, _ = cell(step, [h_old, x_last])
    fresh, _ = cell(step, [np.zeros((1, 4), np.float32), x_last])
    assert np.allclose(forgot, fresh, atol=1e-5)


def test_grud_cell_rejects_wrong_width():
    with pytest.raises(ValueError, match="3 x 2 = 6"):
        em.GRUDCell(3, 2).build((None, 5))


@pytest.mark.parametrize("kind", ["gru", "grud", "mask"])
def test_mortality_model_outputs_causal_hourly_risks(kind):
    keras.utils.set_random_seed(0)
    t, d, s = 6, 3, 4
    model = em.mortality_model(t, d, s, kind=kind, units=5)
    rng = np.random.default_rng(0)
    series = rng.normal(size=(2, t, 3 * d)).astype(np.float32)
    series[..., d : 2 * d] = 1.0
    series[..., 2 * d :] = 1.0
    static = rng.normal(size=(2, s)).astype(np.float32)
    risk = em.predict_risk(model, series, static)
    assert risk.shape == (2, t) and np.all((risk > 0) & (risk < 1))
    changed = series.copy()
    changed[:, 4:, :d] += 3.0  # change only hours 5 and 6
    changed[:, 4:, d : 2 * d] = 0.0
    later = em.predict_risk(model, changed, static)
    assert np.allclose(later[:, :4], risk[:, :4], atol=1e-6)  # earlier hours cannot see them
    if kind != "mask":
        assert not np.allclose(later[:, 4:], risk[:, 4:])
    with pytest.raises(ValueError, match="kind"):
        em.mortality_model(t, d, s, kind="lstm")


def test_fit_mortality_stops_on_validation_auroc():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n, t, d = 80, 4, 2
    y = np.array([0, 1] * (n // 2))
    series = rng.normal(size=(n, t, 3 * d)).astype(np.float32)
    series[..., 0] += 2.0 * y[:, None]  # a learnable signal
    series[..., d : 2 * d] = 1.0
    series[..., 2 * d :] = 1.0
    static = np.zeros((n, 3), dtype=np.float32)
    model = em.mortality_model(t, d, 3, kind="gru", units=4, learning_rate=0.02)
    history = em.fit_mortality(
        model, series, static, y, np.arange(60), np.arange(60, 80), epochs=4, patience=2
    )
    assert 1 <= history["best_epoch"] <= history["epochs_run"] <= 4
    assert len(history["val_auroc48"]) == history["epochs_run"]
    assert max(history["val_auroc48"]) > 0.8
    assert em.per_hour_labels(y[:3], t).shape == (3, t)


def _cox_numpy(t, e, r):
    total = 0.0
    for i in np.flatnonzero(e):
        total -= r[i] - np.log(np.sum(np.exp(r[t >= t[i]])))
    return total / max(e.sum(), 1)


def test_cox_loss_matches_hand_computation_with_ties():
    t = np.array([5.0, 3.0, 3.0, 8.0, 1.0])
    e = np.array([1, 1, 0, 0, 1])
    r = np.array([0.2, -0.5, 1.0, 0.3, 2.0])
    loss = em.cox_loss(np.stack([t, e], 1).astype(np.float32), r[:, None].astype(np.float32))
    assert float(loss) == pytest.approx(_cox_numpy(t, e, r), rel=1e-5)
    none = em.cox_loss(np.stack([t, np.zeros(5)], 1).astype(np.float32), r[:, None])
    assert float(none) == 0.0
    # shifting every risk by a constant leaves the partial likelihood unchanged
    shifted = em.cox_loss(
        np.stack([t, e], 1).astype(np.float32), (r + 3)[:, None].astype(np.float32)
    )
    assert float(shifted) == pytest.approx(float(loss), rel=1e-5)


def test_cox_loss_and_its_gradient_match_the_risk_set_definition_on_many_ties():
    """The sorted running sum against the n x n risk-set matrix it replaced (float64 NumPy),
    with times drawn from 30 values so that most patients share their time with others."""
    rng = np.random.default_rng(1)
    n = 400
    t = rng.integers(1, 30, n).astype(np.float32)
    e = (rng.random(n) < 0.6).astype(np.float32)
    r = (3 * rng.normal(size=n)).astype(np.float32)
    at_risk = t[None, :] >= t[:, None]
    shifted = np.where(at_risk, np.exp(r[None, :] - r.max()), 0.0).sum(1)
    log_risk = np.log(shifted) + r.max()
    # d loss / d r_k = (-e_k + sum_i e_i [k in R_i] exp(r_k) / S_i) / n_events
    weights = np.where(at_risk, np.exp(r[None, :] - log_risk[:, None]), 0.0)
    expected_grad = (-e + (e[:, None] * weights).sum(0)) / e.sum()
    import tensorflow as tf

    risk = tf.Variable(r[:, None])
    with tf.GradientTape() as tape:
        loss = em.cox_loss(np.stack([t, e], 1), risk)
    assert float(loss) == pytest.approx(_cox_numpy(t, e, r.astype(np.float64)), rel=1e-5)
    grad = tape.gradient(loss, risk).numpy()[:, 0]
    np.testing.assert_allclose(grad, expected_grad, atol=1e-6)
    # the latest patient's log-risk 205 below the highest: alone in its risk set, exp(-205)
    # underflows in float32 (a loss of -inf) but not in the float64 running sum
    far = em.cox_loss(
        np.array([[3, 1], [2, 1], [1, 1]], np.float32), np.array([[-200.0], [0.0], [5.0]])
    )
    assert float(far) == pytest.approx(
        _cox_numpy(np.array([3.0, 2, 1]), np.ones(3), np.array([-200.0, 0, 5])), rel=1e-5
    )


def test_cox_model_learns_a_risk_ordering():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    t = rng.exponential(np.exp(-1.5 * x[:, 0]))
    e = (rng.random(400) < 0.8).astype(np.float32)
    model = em.cox_model(3, hidden=(), dropout=0.0, learning_rate=0.05)
    model.fit(x, np.stack([t, e], 1).astype(np.float32), epochs=30, batch_size=400, verbose=0)
    weights = model.get_layer("log_risk").get_weights()[0][:, 0]
    assert weights[0] > 0.8 and abs(weights[1]) < 0.4  # the true log-hazard slope is 1.5


def test_survival_benchmark_smoke(tmp_path, monkeypatch):
    require("deepsurv_gbsg")
    from benchmarks import survival

    monkeypatch.setenv("DL4H_PROFILE", "smoke")
    out = tmp_path / "survival.json"
    report = survival.main(
        ["--dataset", "gbsg", "--profile", "smoke", "--seeds", "0", "--out", str(out)]
    )
    validate(json.loads(out.read_text()))
    assert 0.3 < report["headline"]["test_cindex"] < 0.9
    assert "random survival forest (scikit-survival)" in report["baselines"]
    # the headline model is the one validation chose, and its test C is that model's own
    selection = report["details"]["selection"]
    means = selection["mean_validation_cindex"]
    assert selection["chosen"] == max(means, key=means.get)
    key = next(k for k, name in survival.MODEL_NAMES.items() if name == selection["chosen"])
    (run,) = report["per_seed"]
    assert run["selected_test_cindex"] == run[key]["harrell_c"]
    assert selection["chosen"] in report["metrics"]["selected_test_cindex"]["label"]


def test_survival_choice_is_the_best_mean_validation_c_not_the_best_seed():
    from benchmarks import survival

    def seeds(*rows):
        others = {"neural": 0.6, "ensemble_nn_rsf": 0.6, "cox": 0.5}
        return [{"validation_cindex": {**others, "rsf": rsf, "gbs": gbs}} for rsf, gbs in rows]

    # the forest wins the first seed by far, the boosted model wins on average
    chosen, means = survival.choose_on_validation(seeds((0.80, 0.70), (0.50, 0.70)))
    assert chosen == "gbs" and means["rsf"] == pytest.approx(0.65)
    # a tie goes to the first candidate in CANDIDATES: the network
    tie = [{"validation_cindex": dict.fromkeys(survival.CANDIDATES, 0.7)}]
    assert survival.choose_on_validation(tie)[0] == survival.CANDIDATES[0] == "neural"


def test_survival_plan_is_deepsurvs_published_configuration(monkeypatch):
    from benchmarks import survival
    from helpers import config

    monkeypatch.delenv("DL4H_PROFILE", raising=False)
    plan = survival.make_plan(config.get_settings("cpu"), "support")
    assert plan["hidden"] == (44,) and plan["epochs"] == 800
    assert plan["learning_rate"] == pytest.approx(0.0473, abs=1e-4)
    assert survival.make_plan(config.get_settings("gpu"), "whas")["epochs"] == 1200
    assert survival.make_plan(config.get_settings("smoke"), "gbsg")["epochs"] == 2
    with pytest.raises(ValueError, match="metabric"):
        survival.make_plan(config.get_settings("cpu"), "metabric")


def test_deepsurv_network_penalises_only_its_output_and_decays_the_learning_rate():
    from benchmarks import survival

    plan = survival.DEEPSURV_CONFIGS["whas"]
    net = survival.deepsurv_network(6, plan, n_events=200)
    dropouts = [layer for layer in net.layers if "dropout" in type(layer).__name__.lower()]
    assert [type(layer) for layer in dropouts] == [keras.layers.Dropout] * 3  # not AlphaDropout
    assert all(layer.rate == pytest.approx(plan["dropout"]) for layer in dropouts)
    # one penalty, on the log-risk layer's weights, scaled to the mean-per-event loss
    w = net.get_layer("log_risk").kernel.numpy()
    assert len(net.losses) == 1
    expected = plan["l2_output"] / 200 * float(np.sum(w**2))
    assert float(net.losses[0]) == pytest.approx(expected, rel=1e-5)
    # Adam at lr / (1 + step * lr_decay): one full-batch step per epoch, as in DeepSurv
    schedule = keras.optimizers.schedules.deserialize(net.optimizer.get_config()["learning_rate"])
    assert float(schedule(100)) == pytest.approx(
        plan["learning_rate"] / (1 + 100 * plan["lr_decay"])
    )


def test_survival_benchmark_metabric_fails_fast(tmp_path, monkeypatch):
    from benchmarks import survival
    from helpers import data

    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    with pytest.raises(data.DatasetUnavailable, match="metabric"):
        survival.main(
            ["--dataset", "metabric", "--profile", "smoke", "--out", str(tmp_path / "m.json")]
        )


def test_mortality_benchmark_smoke(tmp_path, monkeypatch):
    require("physionet2012_set_a")
    from benchmarks import ehr_mortality

    monkeypatch.setenv("DL4H_PROFILE", "smoke")
    out = tmp_path / "mortality.json"
    report = ehr_mortality.main(["--profile", "smoke", "--splits", "1", "2", "--out", str(out)])
    validate(json.loads(out.read_text()))
    assert set(report["headline"]) >= {"test_auroc", "test_auprc", "grud_auroc"}
    assert report["per_seed"][0]["n_test"] > 0
    # the same splits in two spawned workers sharing the cores: the same numbers
    parallel = ehr_mortality.main(
        ["--profile", "smoke", "--splits", "1", "2", "--jobs", "2", "--out", str(out)]
    )
    for alone, worker in zip(report["per_seed"], parallel["per_seed"], strict=True):
        assert worker["seed"] == alone["seed"]
        for key in ("saps_auroc", "gbm_auroc", "grud_auroc", "test_auroc", "test_auprc"):
            assert worker[key] == pytest.approx(alone[key], abs=1e-3), key
