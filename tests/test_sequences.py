"""helpers.sequences: DNA encoding (ambiguity codes, bad input), k-mers, padding, the
recurrent model builders; and benchmarks/rnn_sequences.py in the smoke profile."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import config, data
from helpers import sequences as sq
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- encoding
def test_one_hot_of_the_four_bases_is_the_identity():
    x = sq.one_hot_dna("ACGT")
    assert x.shape == (1, 4, 4) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], np.eye(4))
    np.testing.assert_array_equal(sq.one_hot_dna(["acgt"]), x)  # lower case is the same


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("N", [0.25, 0.25, 0.25, 0.25]),
        ("R", [0.5, 0, 0.5, 0]),
        ("S", [0, 0.5, 0.5, 0]),
        ("D", [1 / 3, 0, 1 / 3, 1 / 3]),
        ("Y", [0, 0.5, 0, 0.5]),
    ],
)
def test_ambiguity_codes_are_the_average_of_their_bases(code, expected):
    x = sq.one_hot_dna(f"A{code}T")
    np.testing.assert_allclose(x[0, 1], expected, rtol=1e-6)
    np.testing.assert_array_equal(x[0, 0], [1, 0, 0, 0])


def test_every_iupac_code_is_a_probability_vector():
    x = sq.one_hot_dna("".join(sq.IUPAC))
    np.testing.assert_allclose(x[0].sum(axis=1), 1.0, rtol=1e-6)
    assert (x > 0).sum(axis=2)[0].tolist() == [len(b) for b in sq.IUPAC.values()]


@pytest.mark.parametrize(
    ("sequences", "message"),
    [
        ("ACXT", "illegal character 'X' at position 2 of sequence 0"),
        (["ACGT", "AC-T"], "illegal character '-' at position 2 of sequence 1"),
        (["ACGT", "ACG"], "sequence 1 has length 3, expected 4"),
        ([], "empty input"),
        ("", "sequence 0 is empty"),
    ],
)
def test_bad_sequences_are_named(sequences, message):
    with pytest.raises(ValueError, match=message):
        sq.one_hot_dna(sequences)


def test_explicit_length_is_enforced_and_non_strings_refused():
    with pytest.raises(ValueError, match="sequence 0 has length 4, expected 5"):
        sq.one_hot_dna(["ACGT"], length=5)
    with pytest.raises(TypeError, match="sequence 1 is a int"):
        sq.one_hot_dna(["ACGT", 7])


def test_ambiguity_counts():
    assert sq.ambiguity_counts(["ANNR", "acgd"]) == {"D": 1, "N": 2, "R": 1}


def test_real_splice_data_is_encoded_without_dropping_anything():
    require("splice")
    frame = data.load_uci_sequences("splice")
    x = sq.one_hot_dna(frame["sequence"])
    assert x.shape == (3190, 60, 4)
    np.testing.assert_allclose(x.sum(axis=2), 1.0, rtol=1e-6)
    counts = sq.ambiguity_counts(frame["sequence"])
    assert set(counts) == {"D", "N", "R", "S"}
    # every N in the file became a uniform row, every other row is one-hot or ambiguous
    uniform = np.isclose(x, 0.25).all(axis=2).sum()
    assert uniform == counts["N"]
    not_one_hot = (x.max(axis=2) < 1).sum()
    assert not_one_hot == sum(counts.values())


# --------------------------------------------------------------------------- k-mers
def test_bag_of_kmers_counts_overlapping_windows():
    x = sq.one_hot_dna("ACGTA")
    bag = sq.kmer_features(x, k=2)
    names = sq.kmer_names(2)
    assert bag.shape == (1, 16) and len(names) == 16
    counted = {names[j]: float(v) for j, v in enumerate(bag[0]) if v}
    assert counted == {"AC": 1.0, "CG": 1.0, "GT": 1.0, "TA": 1.0}


def test_ambiguous_kmers_spread_their_weight():
    bag = sq.kmer_features(sq.one_hot_dna("AN"), k=2)[0]
    names = sq.kmer_names(2)
    assert {names[j]: float(v) for j, v in enumerate(bag) if v} == {
        "AA": 0.25,
        "AC": 0.25,
        "AG": 0.25,
        "AT": 0.25,
    }
    assert bag.sum() == pytest.approx(1.0)


def test_positional_kmers_keep_the_position():
    x = sq.one_hot_dna(["ACGT", "GTAC"])
    pos = sq.kmer_features(x, k=2, positional=True)
    assert pos.shape == (2, 3 * 16)
    names = sq.kmer_names(2)
    assert pos[0, 0 * 16 + names.index("AC")] == 1 and pos[1, 2 * 16 + names.index("AC")] == 1
    assert pos.sum() == 6  # three windows per sequence
    np.testing.assert_array_equal(sq.kmer_features(x, k=1, positional=True), x.reshape(2, -1))


@pytest.mark.parametrize(
    ("shape", "k", "message"),
    [
        ((2, 5), 2, "shape \\(n, L, 4\\)"),
        ((1, 5, 4), 6, "between 1 and"),
        ((1, 5, 4), 0, "between 1 and"),
    ],
)
def test_kmer_bad_input(shape, k, message):
    with pytest.raises(ValueError, match=message):
        sq.kmer_features(np.zeros(shape), k=k)
    with pytest.raises(ValueError, match="k must be >= 1"):
        sq.kmer_names(0)


# --------------------------------------------------------------------------- padding
def test_pad_sequences_pads_at_the_end_and_masks():
    padded, mask = sq.pad_sequences([np.array([1.0, 2.0, 3.0]), np.array([4.0])], value=-1)
    assert padded.shape == (2, 3, 1)
    np.testing.assert_array_equal(padded[..., 0], [[1, 2, 3], [4, -1, -1]])
    np.testing.assert_array_equal(mask, [[True, True, True], [True, False, False]])
    padded, mask = sq.pad_sequences([np.ones((2, 4))], maxlen=5)
    assert padded.shape == (1, 5, 4) and mask.sum() == 2 and padded[0, 2:].sum() == 0


def test_pad_sequences_bad_input():
    with pytest.raises(ValueError, match="sequence 0 has length 3 > maxlen 2"):
        sq.pad_sequences([np.zeros(3)], maxlen=2)
    with pytest.raises(ValueError, match="empty input"):
        sq.pad_sequences([])
    with pytest.raises(ValueError, match="same features"):
        sq.pad_sequences([np.zeros((3, 2)), np.zeros((3, 4))])


# --------------------------------------------------------------------------- models
@pytest.mark.parametrize("cell", sq.CELLS)
def test_rnn_classifier_shapes(cell):
    x = sq.one_hot_dna(["ACGTACGTAC", "TTTTGGGGCA", "ACGTNNNNAC"])
    three = sq.rnn_classifier((10, 4), 3, cell=cell, units=4)
    probs = three.predict(x, verbose=0)
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    two = sq.rnn_classifier((10, 4), 2, cell=cell, units=4, bidirectional=True, readout="all")
    assert two.predict(x, verbose=0).shape == (3, 1)
    bi = two.get_layer(f"bi_{cell}")
    import keras

    assert (
        isinstance(bi, keras.layers.Bidirectional) and bi.output.shape[-1] == 2 * 4
    )  # both directions


def test_hybrid_and_autoencoder_shapes():
    hybrid = sq.conv_bilstm_classifier((60, 4), 3, filters=4, units=4)
    assert hybrid.predict(np.zeros((2, 60, 4)), verbose=0).shape == (2, 3)
    auto = sq.lstm_autoencoder(140, units=4)
    beats = np.zeros((5, 140), dtype=np.float32)
    assert auto.predict(beats[..., None], verbose=0).shape == (5, 140, 1)
    errors = sq.reconstruction_error(auto, beats)
    assert errors.shape == (5,) and (errors >= 0).all()
    with pytest.raises(ValueError, match="expected series"):
        sq.reconstruction_error(auto, np.zeros(3))


def test_autoencoder_with_convolutional_stages():
    auto = sq.lstm_autoencoder(140, units=4, conv_stages=2, filters=4)
    assert auto.get_layer("encoder").input.shape[1] == 35  # the LSTM reads 140 / 4 steps
    assert auto.predict(np.zeros((3, 140, 1)), verbose=0).shape == (3, 140, 1)
    assert sq.lstm_autoencoder(140, units=4).get_layer("encoder").input.shape[1] == 140
    with pytest.raises(ValueError, match="not divisible"):
        sq.lstm_autoencoder(141, units=4, conv_stages=2)
    with pytest.raises(ValueError, match="conv_stages must be"):
        sq.lstm_autoencoder(140, units=4, conv_stages=-1)


def test_model_builders_refuse_bad_settings():
    with pytest.raises(ValueError, match="unknown cell 'transformer'"):
        sq.rnn_classifier((10, 4), 3, cell="transformer")
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        sq.rnn_classifier((10, 4), 1)
    with pytest.raises(ValueError, match="readout must be"):
        sq.rnn_classifier((10, 4), 2, readout="mean")
    with pytest.raises(ValueError, match="fixed-length sequences without a mask"):
        sq.rnn_classifier((None, 4), 2, readout="all")


def test_masked_steps_do_not_change_the_prediction():
    config.set_seed(0)
    model = sq.rnn_classifier((None, 4), 2, cell="gru", units=8, mask_value=0.0)
    short = sq.one_hot_dna("ACGTTGCA")
    padded, mask = sq.pad_sequences([short[0], short[0][:5]], maxlen=12)
    assert mask.sum(axis=1).tolist() == [8, 5]
    p_short = model.predict(short, verbose=0)[0, 0]
    p_padded = model.predict(padded, verbose=0)
    assert p_padded[0, 0] == pytest.approx(p_short, abs=1e-5)
    assert p_padded[1, 0] == pytest.approx(model.predict(short[:, :5], verbose=0)[0, 0], abs=1e-5)


def test_a_tiny_model_can_overfit_a_tiny_task():
    """Label = 'is there a G at position 3'; the network must find the position."""
    config.set_seed(0)
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 8)) for _ in range(32)]
    y = np.array([s[3] == "G" for s in seqs], dtype=np.float32)
    assert 0 < y.sum() < len(y)
    x = sq.one_hot_dna(seqs)
    model = sq.rnn_classifier((8, 4), 2, cell="gru", units=8, learning_rate=0.03)
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    model.fit(x, y, epochs=60, batch_size=32, verbose=0)
    after = model.evaluate(x, y, verbose=0, return_dict=True)
    assert after["accuracy"] == 1.0
    assert after["loss"] < 0.2 * before["loss"]


def test_sequence_models_train_with_the_shared_loop_and_have_logits():
    from helpers import models

    config.set_seed(0)
    x = sq.one_hot_dna(["ACGT", "TGCA", "AAGT", "TTCA"] * 4)
    y = np.array([0, 1, 0, 1] * 4)
    model = sq.rnn_classifier((4, 4), 2, cell="gru", units=4)
    history = models.train(
        model, x[:12], y[:12], x[12:], y[12:], epochs=3, patience=2, **sq.RNN_SCHEDULE
    )
    assert len(history["loss"]) == 3 and 1 <= history["best_epoch"] <= 3
    # the named logits layer: probability = sigmoid(logit), so temperature scaling applies
    logits = models.predict_logits(model, x)
    np.testing.assert_allclose(
        1 / (1 + np.exp(-logits)), model.predict(x, verbose=0)[:, 0], atol=1e-5
    )
    three = sq.rnn_classifier((4, 4), 3, cell="lstm", units=4)
    z = models.predict_logits(three, x)
    soft = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(soft, three.predict(x, verbose=0), atol=1e-5)
    with pytest.raises(ValueError, match="12 training inputs but 11 labels"):
        models.train(model, x[:12], y[:11], x[12:], y[12:], epochs=1)


# --------------------------------------------------------------------------- benchmark
def _benchmark_module():
    spec = importlib.util.spec_from_file_location(
        "rnn_sequences", ROOT / "benchmarks" / "rnn_sequences.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("task", "dataset"), [("splice", "splice"), ("ecg5000", "ecg5000_train")])
def test_benchmark_smoke_writes_a_json_report(task, dataset, tmp_path):
    require(dataset)
    out = tmp_path / f"{task}.json"
    _benchmark_module().main(
        ["--task", task, "--profile", "smoke", "--seeds", "0", "--out", str(out)]
    )
    report = json.loads(out.read_text())
    assert report["benchmark"] == f"rnn_{task}" and report["profile"] == "smoke"
    assert report["seeds"] == [0] and report["per_seed"][0]["seed"] == 0
    for key in ("accuracy", "macro_f1", "seconds"):
        assert report["headline"][key] == report["per_seed"][0][key], key
    assert report["spread"]["accuracy"]["sd"] is None  # one seed
    assert report["settings"]["n_boot"] == 50  # smoke-sized bootstrap
    baseline = next(iter(report["baselines"].values()))
    if task == "splice":
        assert baseline["accuracy"] == report["per_seed"][0]["baseline_accuracy"]
    else:
        assert baseline["auc_normal_vs_abnormal"] == report["per_seed"][0]["autoencoder_auc"]
    assert report["provenance"]["peak_memory_mb"]["host_rss_mb"] > 0
    assert report["provenance"]["versions"]["tensorflow"]
    assert report["model_card"]["not_for"]


# --------------------------------------------------------------------------- splice pipeline
def test_splice_split_keeps_identical_windows_together_and_subsets_training():
    require("splice")
    frame = data.load_uci_sequences("splice")
    y = frame["label"].map({c: i for i, c in enumerate(sq.SPLICE_CLASSES)}).to_numpy()
    split = sq.splice_split(frame["sequence"], y, seed=0)
    seen = {name: set(frame["sequence"].to_numpy()[idx]) for name, idx in split.items()}
    assert not (seen["train"] & seen["test"]) and not (seen["train"] & seen["val"])
    assert sum(len(idx) for idx in split.values()) == len(frame)
    small = sq.splice_split(frame["sequence"], y, n_train=150, seed=0)
    assert len(small["train"]) == 150 and set(small["train"]) <= set(split["train"])
    assert np.array_equal(small["test"], split["test"])  # the subset never touches test


def test_kmer_grid_search_chooses_the_best_validation_cell():
    rng = np.random.default_rng(0)
    bases = np.array(list("ACGT"))
    seqs = ["".join(rng.choice(bases, 12)) for _ in range(90)]
    y = np.array([int(s[5] == "G") for s in seqs])  # the class is one base at one position
    x = sq.one_hot_dna(seqs)
    train, val = np.arange(60), np.arange(60, 90)
    grid, fitted, (k, c) = sq.kmer_grid_search(x, y, train, val, (1, 2), (0.01, 10.0))
    assert len(grid) == 4 and set(fitted) == {(1, 0.01), (1, 10.0), (2, 0.01), (2, 10.0)}
    best = grid.loc[grid["validation accuracy"].idxmax()]
    assert (k, c) == (int(best["k"]), float(best["C"]))
    assert grid["validation accuracy"].max() >= 0.9  # a positional 1-mer sees position 6
