"""Call-type CNN: training on simulated calls (accuracy vs the simulator's types), determinism, model
files, classification of a session summary, bad inputs."""

import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from usvflow.io.atomic import InputError
from usvflow.simulate.calltypes import (
    SIM_SUMMARY_COLUMNS,
    as_processed,
    render_background,
    render_clip,
    simulate_labelled_spectrograms,
)
from usvflow.usv import calltypes as ct
from usvflow.usv.spectrogram import SpecParams, call_spectrogram, save_spectrograms

FS = 250_000
P = SpecParams(n_fft=256, n_freq=32, n_time=32)  # small images: seconds of CPU training
CLASSES = ["flat", "trill", "up_ramp"]
TP = dict(
    max_epochs=30,
    patience=8,
    batch_size=16,
    learning_rate=0.003,
    channels=(8, 16, 32),
    threads=1,
    device="cpu",
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("calls")
    x, lab = simulate_labelled_spectrograms(80, CLASSES, seed=3, params=P)
    ct.write_dataset(d, x, lab, params=P)
    return d


@pytest.fixture(scope="module")
def model(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    rep = ct.train(data_dir, out, ct.TrainParams(seed=1, **TP))
    return out, rep


@pytest.fixture(scope="module")
def none_model(tmp_path_factory):
    """A model trained with the no-call class "none" beside the three call types."""
    d = tmp_path_factory.mktemp("calls_none")
    x, lab = simulate_labelled_spectrograms(80, [*CLASSES, ct.NO_TYPE], seed=3, params=P)
    ct.write_dataset(d, x, lab, params=P)
    out = tmp_path_factory.mktemp("model_none")
    return out, ct.train(d, out, ct.TrainParams(seed=1, **TP))


def test_dataset_layout_round_trip(data_dir):
    x, y, classes, params = ct.read_dataset(data_dir)
    assert classes == sorted(CLASSES) and params == P
    assert x.shape == (240, 32, 32) and np.bincount(y).tolist() == [80, 80, 80]
    assert len(list((data_dir / "trill").glob("*.npy"))) == 80


def test_training_learns_the_simulated_types(model):
    out, rep = model
    for f in ("model.pt", "model.json", "report.json", "history.csv", "confusion_matrix.svg"):
        assert (out / f).exists(), f
    assert (out / "confusion_matrix.svg").read_text().lstrip().startswith("<?xml")
    # the held-out test split is the whole split and disjoint from train/validation
    assert rep["n_test"] == rep["n"] == sum(sum(r) for r in rep["confusion_matrix"])
    assert rep["n_train"] + rep["n_validation"] + rep["n_test"] == 240
    assert rep["accuracy"] >= 0.8
    # independent simulated calls ("another cohort"), measured against the simulator's types
    m = ct.load_model(out)
    x, lab = simulate_labelled_spectrograms(40, CLASSES, seed=11, params=P)
    pred = np.asarray(m.classes)[ct.predict_proba(m, x).argmax(1)]
    assert np.mean(pred == lab) >= 0.8
    saved = json.loads((out / "report.json").read_text())
    assert saved["classes"] == sorted(CLASSES) and set(saved["per_class"]) == set(CLASSES)


def test_training_and_classification_are_deterministic(data_dir, model, tmp_path):
    import torch

    out, rep = model
    rep2 = ct.train(data_dir, tmp_path / "again", ct.TrainParams(seed=1, **TP))
    a = torch.load(out / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "again" / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # same bytes, also across processes: no record of the archive is named after the temporary file
    assert (out / "model.pt").read_bytes() == (tmp_path / "again" / "model.pt").read_bytes()
    assert {n.split("/")[0] for n in zipfile.ZipFile(out / "model.pt").namelist()} == {"archive"}
    assert rep2["confusion_matrix"] == rep["confusion_matrix"]
    assert (out / "history.csv").read_text() == (tmp_path / "again" / "history.csv").read_text()
    x, _ = simulate_labelled_spectrograms(5, CLASSES, seed=4, params=P)
    m = ct.load_model(out)
    assert np.array_equal(ct.predict_proba(m, x), ct.predict_proba(m, x))
    # classified in batches (memory bounded whatever the number of USVs): the same probabilities
    assert np.allclose(ct.predict_proba(m, x, batch_size=2), ct.predict_proba(m, x), atol=1e-6)
    ct.train(data_dir, tmp_path / "other", ct.TrainParams(seed=2, **{**TP, "max_epochs": 1}))
    c = torch.load(tmp_path / "other" / "model.pt", weights_only=True)
    assert not torch.equal(a["0.weight"], c["0.weight"])


def test_bad_training_data(tmp_path):
    with pytest.raises(InputError, match="not found"):
        ct.read_dataset(tmp_path / "nope")
    one = tmp_path / "one"
    x, lab = simulate_labelled_spectrograms(3, ["flat"], seed=0, params=P)
    ct.write_dataset(one, x, lab, params=P)
    with pytest.raises(InputError, match="only one class"):
        ct.read_dataset(one)
    (one / "trill").mkdir()
    with pytest.raises(InputError, match=r"trill.*hold no \.npy"):
        ct.read_dataset(one)
    np.save(one / "trill" / "a.npy", np.zeros((5, 5), np.float32))
    with pytest.raises(InputError, match=r"shape \(5, 5\) differs"):
        ct.read_dataset(one)
    np.save(one / "trill" / "a.npy", np.zeros((32, 32), np.float32))
    with pytest.raises(InputError, match="at least 3 are needed"):
        ct.train(one, tmp_path / "m", ct.TrainParams(**TP))
    tiny = tmp_path / "tiny"
    ct.write_dataset(tiny, np.zeros((6, 8, 8)), ["a", "b"] * 3)
    with pytest.raises(InputError, match=r"\(8, 8\) are too small for 4 pooling blocks"):
        ct.train(tiny, tmp_path / "m", ct.TrainParams())


def test_model_errors(model, tmp_path):
    import shutil

    out, _ = model
    with pytest.raises(InputError, match="do not match the expected classes"):
        ct.load_model(out, expected_classes=["flat", "trill", "complex"])
    assert ct.load_model(out, expected_classes=sorted(CLASSES)).classes == sorted(CLASSES)
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    meta = json.loads((bad / "model.json").read_text())
    meta["classes"] = ["a", "b"]
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="3 outputs but model.json lists 2"):
        ct.load_model(bad)
    (bad / "model.pt").unlink()
    with pytest.raises(InputError, match="model.pt: file not found"):
        ct.load_model(bad)
    with pytest.raises(InputError, match="model.json: file not found"):
        ct.load_model(tmp_path)
    # a labelled set with classes the model does not know
    d = tmp_path / "other"
    x, lab = simulate_labelled_spectrograms(3, ["flat", "complex"], seed=0, params=P)
    ct.write_dataset(d, x, lab, params=P)
    with pytest.raises(InputError, match=r"\['complex'\] are not classes of the model"):
        ct.evaluate_dataset(ct.load_model(out), d)


def test_none_class_types_no_call_windows_none(none_model, tmp_path):
    """Trained with windows without a call (simulated noise, tones, clicks), the model answers "none"
    for them on independent draws and still types the calls (measured against the simulator)."""
    out, rep = none_model
    m = ct.load_model(out)
    assert m.classes == sorted([*CLASSES, ct.NO_TYPE])
    x, lab = simulate_labelled_spectrograms(60, CLASSES, seed=11, params=P)
    pred = np.asarray(m.classes)[ct.predict_proba(m, x).argmax(1)]
    assert np.mean(pred == lab) >= 0.85 and np.mean(pred == ct.NO_TYPE) <= 0.05
    rng = np.random.default_rng(14)
    # (tone, click) -> the share typed "none" at least (measured 1.00, 0.95, 0.53): a tone filling the
    # window looks much like a flat call, and is what the detector's line rule is for
    for p_tone, p_click, need in [(0, 0, 0.95), (0, 1, 0.85), (1, 0, 0.4)]:
        specs = []
        for _ in range(60):
            y, on, off = render_background(rng, FS, P, p_tone=p_tone, p_click=p_click)
            specs.append(call_spectrogram(as_processed(y, rng, FS), FS, on, off, P))
        pred = np.asarray(m.classes)[ct.predict_proba(m, np.stack(specs)).argmax(1)]
        share = np.mean(pred == ct.NO_TYPE)
        assert share >= need, (p_tone, p_click, np.unique(pred, return_counts=True))
    # in a session's table: the rejection threshold would be ambiguous beside a "none" class
    summary, mmap, _ = _session(tmp_path, n_calls=3)
    npz = tmp_path / "s.npz"
    ct.export_session_spectrograms(summary, mmap, npz, P)
    with pytest.raises(InputError, match="class named 'none'"):
        ct.classify_summary(summary, npz, out, tmp_path / "x.csv", min_probability=0.5)


def test_background_windows_avoid_the_usvs(tmp_path):
    summary, mmap, _ = _session(tmp_path, n_calls=6, seed=5)
    df = pd.read_csv(summary)
    specs, names = ct.background_spectrograms(summary, mmap, 20, P, seed=3)
    assert specs.shape == (20, P.n_freq, P.n_time) and len(set(names)) == 20
    window = P.duration_s + P.n_fft / FS
    for name in names:
        t = int(name.split("_t")[1].split("ms")[0]) / 1000
        near = (df["start"] < t + window + 0.05 - 1e-3) & (df["stop"] > t - 0.05 + 1e-3)
        assert not near.any(), (name, df[near])
    again, names2 = ct.background_spectrograms(summary, mmap, 20, P, seed=3)
    assert names2 == names and np.array_equal(again, specs)
    assert ct.background_spectrograms(summary, mmap, 20, P, seed=4)[1] != names
    # each window is as long as a USV of the summary: what follows its stop is masked
    one = df.copy()
    one["stop"] = one["start"] + 0.01
    one.to_csv(tmp_path / "short.csv", index=False)
    short, _ = ct.background_spectrograms(tmp_path / "short.csv", mmap, 10, P, seed=3)
    after = P.times_s() > 0.01 + P.stop_margin_s
    assert after.any() and not short[:, :, after].any() and short[:, :, ~after].any()
    # a dead channel (constant samples) is never drawn
    mm = np.memmap(mmap, dtype="<i2", mode="r+", shape=(np.memmap(mmap, dtype="<i2").size // 4, 4))
    mm[:, 2] = 0
    mm.flush()
    _, names = ct.background_spectrograms(summary, mmap, 30, P, seed=3)
    assert not any(n.endswith("_ch02") for n in names)
    # no room between the USVs: a clear error naming the summary
    df["stop"] = df["start"] + 0.15
    df.to_csv(summary, index=False)
    with pytest.raises(InputError, match=r"found room for 0 of 5 background windows"):
        ct.background_spectrograms(summary, mmap, 5, P)


def test_cli_background_class(tmp_path, capsys):
    from usvflow.cli import main

    summary, mmap, _ = _session(tmp_path, n_calls=6, seed=5)
    small = ["--n-fft", "256", "--n-freq", "32", "--n-time", "32"]
    rc = main(["export-spectrograms", str(summary), "--memmap", str(mmap), "--background", "7",
               "--dataset-dir", str(tmp_path / "d"), "--name-prefix", "s1_", *small])  # fmt: skip
    assert rc == 0 and "wrote 7 background spectrograms" in capsys.readouterr().out
    assert len(list((tmp_path / "d" / "none").glob("s1_bg0_*.npy"))) == 7
    assert main(["export-spectrograms", "--simulate", "3", "--classes", "flat", "none", "--dataset-dir",
                 str(tmp_path / "d"), *small]) == 0  # fmt: skip
    x, y, classes, _ = ct.read_dataset(tmp_path / "d")
    assert classes == ["flat", "none"] and np.bincount(y).tolist() == [3, 10]
    assert (
        main(["export-spectrograms", str(summary), "--memmap", str(mmap), "--background", "3"]) == 2
    )
    assert "--background needs --dataset-dir" in capsys.readouterr().err


def _session(tmp_path, n_calls=9, seed=2):
    """A memmap with simulated calls on known channels and the summary listing them (truth types)."""
    rng = np.random.default_rng(seed)
    n, nch = int((0.15 * n_calls + 0.2) * FS), 4
    path = tmp_path / f"250430145017_concatenated_audio_hpss_filtered_{FS}_{n}_{nch}_int16.mmap"
    mm = np.memmap(path, dtype="<i2", mode="w+", shape=(n, nch))
    mm[:] = rng.normal(0, 20, size=(n, nch)).astype(np.int16)
    rows, truth = [], []
    for i in range(n_calls):
        typ = CLASSES[i % 3]
        x, on, off, _ = render_clip(
            rng, typ, FS, P, amp_to_noise=(5, 30), p_next_call=0, p_click=0, p_tone=0
        )
        a = int((0.1 + 0.15 * i) * FS)
        ch = int(rng.integers(nch))
        seg = mm[a : a + x.size, ch].astype(float) + 20 * x
        mm[a : a + x.size, ch] = np.clip(seg, -32768, 32767).astype(np.int16)
        rows.append({"usv_id": f"{i:04d}", "start": a / FS + on, "stop": a / FS + off, "duration": off - on,
                     "peak_amp_ch": ch, "mean_amp_ch": ch, "chs_count": 1, "chs_detected": f"[{ch}]", "emitter": "",
                     "peak_freq_hz": 6e4, "mean_freq_hz": 6e4, "min_freq_hz": 5e4, "max_freq_hz": 7e4,
                     "max_amplitude": 1000, "snr_db": 20.0})  # fmt: skip
        truth.append(typ)
    mm.flush()
    summary = tmp_path / "20250430_145017_usv_summary.csv"
    pd.DataFrame(rows, columns=SIM_SUMMARY_COLUMNS).to_csv(summary, index=False)
    return summary, path, truth


def test_classify_session_summary(model, tmp_path):
    out, _ = model
    summary, mmap, truth = _session(tmp_path)
    npz = tmp_path / "spectrograms" / "s.npz"
    assert ct.export_session_spectrograms(summary, mmap, npz, P) == len(truth)
    res = tmp_path / "20250430_145017_usv_summary_call_types.csv"
    df = ct.classify_summary(summary, npz, out, res)
    text_in = summary.read_text().splitlines()
    text_out = res.read_text().splitlines()
    assert text_out[0] == text_in[0] + ",call_type,call_type_prob"
    assert all(
        o.startswith(i + ",") for i, o in zip(text_in[1:], text_out[1:])
    )  # columns unchanged
    back = pd.read_csv(res, dtype={"usv_id": str})
    assert back["usv_id"].tolist() == [f"{i:04d}" for i in range(len(truth))]
    assert set(back["call_type"]) <= set(CLASSES)
    assert ((back["call_type_prob"] > 1 / 3) & (back["call_type_prob"] <= 1)).all()
    assert np.mean(back["call_type"].to_numpy() == np.asarray(truth)) >= 0.75
    assert df["call_type"].tolist() == back["call_type"].tolist()
    # rejection threshold: a USV whose best type is not probable enough is typed "none"
    pr = np.sort(back["call_type_prob"].to_numpy())
    thr = float(pr[len(pr) // 2] + pr[len(pr) // 2 - 1]) / 2  # between two written (rounded) values
    rej = ct.classify_summary(summary, npz, out, tmp_path / "rej.csv", min_probability=thr)
    low = back["call_type_prob"].to_numpy() < thr
    assert low.any() and (rej["call_type"].to_numpy()[low] == "none").all()
    assert (rej["call_type"].to_numpy()[~low] == back["call_type"].to_numpy()[~low]).all()
    # spectrograms made with other parameters, or for other USVs: clear errors
    other = tmp_path / "other.npz"
    ct.export_session_spectrograms(
        summary, mmap, other, SpecParams(n_fft=256, n_freq=32, n_time=32, duration_s=0.2)
    )
    with pytest.raises(InputError, match="spectrogram parameters differ.*duration_s"):
        ct.classify_summary(summary, other, out, tmp_path / "x.csv")
    save_spectrograms(other, np.zeros((1, 32, 32)), ["0000"], P, FS)
    with pytest.raises(InputError, match="usv_id list"):
        ct.classify_summary(summary, other, out, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_bad_summary(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("usv_id,start,stop\n0000,0.1,0.2\n")
    with pytest.raises(InputError, match=r"missing column\(s\) \['mean_amp_ch'\]"):
        ct.read_summary_text(p)
    p.write_text("usv_id,start,stop,mean_amp_ch\n0000,0.1,x,1\n")
    with pytest.raises(InputError, match="column 'stop': non-numeric value 'x'"):
        ct.read_summary_text(p)
    p.write_text("usv_id,start,stop,mean_amp_ch\n")
    assert len(ct.read_summary_text(p)) == 0


def test_empty_summary_classifies_to_header_only(model, tmp_path):
    out, _ = model
    summary, mmap, _ = _session(tmp_path, n_calls=1)
    summary.write_text(summary.read_text().splitlines()[0] + "\n")
    npz = tmp_path / "e.npz"
    assert ct.export_session_spectrograms(summary, mmap, npz, P) == 0
    ct.classify_summary(summary, npz, out, tmp_path / "o.csv")
    assert (tmp_path / "o.csv").read_text().strip().endswith("snr_db,call_type,call_type_prob")


def test_cli_simulate_train_evaluate(tmp_path, capsys):
    from usvflow.cli import main

    small = ["--n-fft", "256", "--n-freq", "32", "--n-time", "32"]
    assert main(["export-spectrograms", "--simulate", "12", "--classes", "flat", "up_ramp", "--dataset-dir",
                 str(tmp_path / "d"), *small]) == 0  # fmt: skip
    assert len(list((tmp_path / "d" / "up_ramp").glob("*.npy"))) == 12
    assert main(["train-calltypes", str(tmp_path / "d"), "-o", str(tmp_path / "m"), "--epochs", "2",
                 "--device", "cpu"]) == 0  # fmt: skip
    assert "held-out test accuracy" in capsys.readouterr().out
    assert (
        main(
            [
                "classify-calltypes",
                "--model",
                str(tmp_path / "m"),
                "--evaluate",
                str(tmp_path / "d"),
            ]
        )
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    assert rep["classes"] == ["flat", "up_ramp"] and rep["n"] == 24
    (tmp_path / "d" / "flat").mkdir(exist_ok=True)
    for f in (tmp_path / "d" / "flat").glob("*.npy"):
        f.unlink()
    assert main(["train-calltypes", str(tmp_path / "d"), "-o", str(tmp_path / "m2")]) == 2
    assert "hold no .npy spectrograms" in capsys.readouterr().err


def test_cli_labelled_summary_to_class_folders(tmp_path, capsys):
    from usvflow.cli import main

    summary, mmap, truth = _session(tmp_path, n_calls=6)
    df = pd.read_csv(summary, dtype=str, keep_default_na=False)
    df["label"] = truth[:5] + [""]  # the last call is unlabelled
    df.to_csv(summary, index=False)
    small = ["--n-fft", "256", "--n-freq", "32", "--n-time", "32"]
    rc = main(["export-spectrograms", str(summary), "--memmap", str(mmap), "-o", str(tmp_path / "s.npz"),
               "--png-dir", str(tmp_path / "png"), "--label-column", "label", "--dataset-dir", str(tmp_path / "d"),
               "--name-prefix", "sess1_", *small])  # fmt: skip
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "png").glob("*.png")) == [
        f"{i:04d}.png" for i in range(6)
    ]
    x, y, classes, params = ct.read_dataset(tmp_path / "d")
    assert classes == sorted(set(truth[:5])) and len(y) == 5 and params == P
    assert (tmp_path / "d" / truth[0] / "sess1_0000.npy").exists()
    assert "1 unlabelled skipped" in capsys.readouterr().out
    assert main(["export-spectrograms", str(summary), "--memmap", str(mmap), "-o", str(tmp_path / "t.npz"),
                 "--label-column", "nope", "--dataset-dir", str(tmp_path / "e")]) == 2  # fmt: skip
    assert "no column 'nope'" in capsys.readouterr().err


def test_cli_classify_from_memmap(model, tmp_path, capsys):
    from usvflow.cli import main

    out, _ = model
    summary, mmap, truth = _session(tmp_path, n_calls=6, seed=8)
    res = tmp_path / "res.csv"
    assert (
        main(
            [
                "classify-calltypes",
                str(summary),
                "--model",
                str(out),
                "--memmap",
                str(mmap),
                "-o",
                str(res),
            ]
        )
        == 0
    )
    assert "classified 6 USV(s)" in capsys.readouterr().out
    back = pd.read_csv(res, dtype={"usv_id": str})
    assert np.mean(back["call_type"].to_numpy() == np.asarray(truth)) >= 0.66
    assert main(["classify-calltypes", str(summary), "--model", str(out), "--memmap", str(mmap), "-o", str(res),
                 "--expect-classes", "flat", "step"]) == 2  # fmt: skip
    assert "do not match the expected classes ['flat', 'step']" in capsys.readouterr().err
