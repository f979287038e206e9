"""USV call types: a compact CNN on fixed-length spectrograms.

Data layout (the source document's Keras ``flow_from_directory`` layout, with arrays instead of plot
images)::

    DATA_DIR/dataset.json          spectrogram parameters (SpecParams) the arrays were made with
    DATA_DIR/<class>/<name>.npy    one (n_freq, n_time) float32 spectrogram per call

A class folder named ``none`` (:data:`NO_TYPE`) holds windows without a call (noise, equipment tones,
clicks: :func:`background_spectrograms` draws them from a session's stretches between USVs); a
model trained with it types what it takes for such a window ``none`` instead of forcing a call type.

Training (:func:`train`) splits every class into train / validation / test parts (stratified, seeded),
trains :class:`CallTypeCNN` on the train part with augmentation (time and frequency shifts, contrast,
additive noise) and class-weighted cross-entropy, stops early on the validation loss (the best epoch's
weights are kept), and reports on the test part, which training never saw: accuracy over the whole
split, per-class precision/recall/F1, the confusion matrix (report.json, confusion_matrix.svg).

A model folder holds ``model.pt`` (state dict), ``model.json`` (classes in output order, spectrogram
parameters, architecture, seed, torch version), ``report.json``, ``history.csv`` and
``confusion_matrix.svg``. Models load on CPU whatever device trained them.

Determinism: given the seed and the number of CPU threads, training and classification give the same
weights and probabilities bit for bit (``torch.manual_seed``, deterministic algorithms, seeded
splits, shuffling and augmentation).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from usvflow.io.atomic import (
    InputError,
    atomic_open,
    atomic_path,
    read_json,
    save_figure,
    write_json,
)
from usvflow.io.config import defaults_from_schema, setting_default

from .spectrogram import SpecParams, load_spectrograms

log = logging.getLogger(__name__)

MODEL_FORMAT = 1
DATASET_JSON = "dataset.json"
# call_type of a USV that none of the trained types explains, and the class of no-call windows
NO_TYPE = "none"


# ---------------------------------------------------------------- dataset folders
def write_dataset(data_dir: str | os.PathLike, specs: np.ndarray, labels, names=None,
                  params: SpecParams | None = None) -> Path:  # fmt: skip
    """Write spectrograms into ``data_dir/<label>/<name>.npy`` and ``data_dir/dataset.json``.

    ``names`` default to a running index; existing files of the same name are replaced.
    """
    data_dir = Path(data_dir)
    specs = np.asarray(specs, np.float32)
    labels = [str(x) for x in labels]
    if specs.ndim != 3 or specs.shape[0] != len(labels):
        raise ValueError(f"{specs.shape} spectrograms for {len(labels)} labels")
    names = [f"{i:06d}" for i in range(len(labels))] if names is None else [str(n) for n in names]
    for lab in sorted(set(labels)):
        if not lab or lab in (".", "..") or "/" in lab or os.sep in lab:
            raise ValueError(f"label {lab!r} cannot be a folder name")
    p = params or SpecParams(n_freq=specs.shape[1], n_time=specs.shape[2])
    if (p.n_freq, p.n_time) != specs.shape[1:]:
        raise ValueError(
            f"spectrograms {specs.shape[1:]} do not match params ({p.n_freq}, {p.n_time})"
        )
    for spec, lab, name in zip(specs, labels, names):
        with atomic_path(data_dir / lab / f"{name}.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, spec)
    write_json(data_dir / DATASET_JSON, {"params": p.to_dict(), "format": MODEL_FORMAT})
    return data_dir


def read_dataset(
    data_dir: str | os.PathLike,
) -> tuple[np.ndarray, np.ndarray, list[str], SpecParams]:
    """``(X (n, n_freq, n_time) float32, y (n,) int, classes (sorted), params)`` of a class-folder set.

    Errors (InputError naming the folder/file): not a folder, fewer than two classes, a class folder
    without spectrograms, arrays of different shapes or not 2-D, values that are not finite.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(
            data_dir, "training data folder not found (expected one sub-folder per class)"
        )
    class_dirs = sorted(d for d in data_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise InputError(data_dir, "no class sub-folders (expected DATA_DIR/<class>/*.npy)")
    empty = [d.name for d in class_dirs if not any(d.glob("*.npy"))]
    if empty:
        raise InputError(data_dir / empty[0], f"class folder(s) {empty} hold no .npy spectrograms")
    if len(class_dirs) < 2:
        raise InputError(
            data_dir, f"only one class ({class_dirs[0].name}); a classifier needs at least two"
        )
    params = None
    meta = data_dir / DATASET_JSON
    if meta.exists():
        try:
            params = SpecParams.from_dict(read_json(meta).get("params"))
        except (ValueError, TypeError, AttributeError) as exc:
            raise InputError(meta, f"bad spectrogram parameters ({exc})") from None
    xs, ys = [], []
    shape = None
    for k, d in enumerate(class_dirs):
        for f in sorted(d.glob("*.npy")):
            try:
                a = np.load(f, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise InputError(f, f"not a .npy array ({exc})") from None
            if a.ndim != 2:
                raise InputError(f, f"expected a 2-D spectrogram, got shape {a.shape}")
            if shape is None:
                shape = a.shape
            elif a.shape != shape:
                raise InputError(
                    f, f"shape {a.shape} differs from {shape} of the other spectrograms"
                )
            if not np.all(np.isfinite(a)):
                raise InputError(f, "holds NaN or infinite values")
            xs.append(a.astype(np.float32))
            ys.append(k)
    if params is None:
        params = SpecParams(n_freq=shape[0], n_time=shape[1])
        log.warning("%s: no %s; assuming default spectrogram parameters", data_dir, DATASET_JSON)
    elif (params.n_freq, params.n_time) != shape:
        raise InputError(
            meta, f"parameters say {(params.n_freq, params.n_time)}, arrays are {shape}"
        )
    return np.stack(xs), np.asarray(ys, np.int64), [d.name for d in class_dirs], params


def stratified_split(y: np.ndarray, val_fraction: float, test_fraction: float, seed: int,
                     source=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Indices of the train / validation / test parts, each class split in the same proportions
    (at least one call of each class in every part)."""
    rng = np.random.default_rng([seed, 1])
    parts = ([], [], [])
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        if idx.size < 3:
            raise InputError(source, f"class #{k} has {idx.size} example(s); at least 3 are needed "
                                     "(train, validation and test parts)")  # fmt: skip
        idx = rng.permutation(idx)
        n_test = max(1, int(round(test_fraction * idx.size)))
        n_val = max(1, int(round(val_fraction * idx.size)))
        n_test = min(n_test, idx.size - 2)
        n_val = min(n_val, idx.size - n_test - 1)
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    return tuple(np.sort(np.concatenate(p)) for p in parts)


# ---------------------------------------------------------------- model
@dataclass
@defaults_from_schema("call_types.train")
class TrainParams:
    seed: int
    val_fraction: float
    test_fraction: float
    max_epochs: int
    patience: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 1e-4
    channels: tuple = (16, 32, 64, 64)
    dropout: float = 0.3
    augment: bool = True
    max_time_shift: int = 3
    max_freq_shift: int = 3
    noise_sd: float = 0.0
    threads: int = 1
    device: str


def _torch():
    import torch

    return torch


def build_model(n_classes: int, channels=(16, 32, 64, 64), dropout: float = 0.3, in_shape=(64, 64)):
    """Conv(3x3)-GroupNorm-ReLU-MaxPool(2) blocks (default 4: a receptive field of about the 64 x 64
    image, so that a step's two segments and a harmonic stack are told apart), then dropout and a linear
    layer on the flattened ``(channels[-1], n_freq / 16, n_time / 16)`` map (where a frequency sits
    matters little, but the layout of the contour does). GroupNorm, not BatchNorm: no running
    statistics, so a model behaves the same in training and evaluation even after the few steps of a
    small training set. Every layer has a deterministic CPU and CUDA implementation."""
    torch = _torch()
    nn = torch.nn
    h, w = int(in_shape[0]), int(in_shape[1])
    layers, c_in = [], 1
    for c in channels:
        layers += [nn.Conv2d(c_in, int(c), 3, padding=1, bias=False), nn.GroupNorm(max(1, int(c) // 8), int(c)),
                   nn.ReLU(), nn.MaxPool2d(2)]  # fmt: skip
        c_in = int(c)
        h, w = h // 2, w // 2
    if h < 1 or w < 1:
        raise ValueError(
            f"spectrograms of {tuple(in_shape)} are too small for {len(channels)} pooling blocks"
        )
    return nn.Sequential(
        *layers, nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * h * w, n_classes)
    )


def resolve_device(device: str | None = None) -> str:
    """``auto`` (None: the config's ``call_types.device``) -> ``cuda`` if there is a GPU, else ``cpu``."""
    device = setting_default("call_types.device", device)
    torch = _torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(None, f"device {device!r} requested but no CUDA GPU is available")
    return device


@contextlib.contextmanager
def deterministic(seed: int, threads: int, warn_only: bool = False):
    """Seed torch, force deterministic algorithms and a fixed CPU thread count (restored on exit).

    ``warn_only`` (used on CUDA): a kernel without a deterministic implementation warns instead of
    failing; the CPU path is strict (and tested bit for bit)."""
    torch = _torch()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    prev = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads(),
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)  # fmt: skip
    torch.use_deterministic_algorithms(True, warn_only=warn_only)
    torch.set_num_threads(max(1, int(threads)))
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0])
        torch.set_num_threads(prev[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = prev[2], prev[3]


def _shift(x, shifts, dim):
    """Shift each sample of ``x`` (B, 1, F, T) by ``shifts[b]`` along ``dim``, filling with 0."""
    torch = _torch()
    n = x.shape[dim]
    ar = torch.arange(n, device=x.device)
    src = ar[None, :] - shifts[:, None]  # (B, n)
    valid = (src >= 0) & (src < n)
    src = src.clamp(0, n - 1)
    if dim == 3:
        idx = src[:, None, None, :].expand(x.shape)
        out = torch.gather(x, 3, idx)
        return out * valid[:, None, None, :]
    idx = src[:, None, :, None].expand(x.shape)
    out = torch.gather(x, 2, idx)
    return out * valid[:, None, :, None]


def augment(x, gen, tp: TrainParams):
    """Random time/frequency shifts (zero fill), contrast in [0.8, 1.2], additive |noise|, clip to [0, 1]."""
    torch = _torch()
    b = x.shape[0]
    dev = x.device
    if tp.max_time_shift:
        ts = torch.randint(-tp.max_time_shift, tp.max_time_shift + 1, (b,), generator=gen).to(dev)
        x = _shift(x, ts, 3)
    if tp.max_freq_shift:
        fs = torch.randint(-tp.max_freq_shift, tp.max_freq_shift + 1, (b,), generator=gen).to(dev)
        x = _shift(x, fs, 2)
    gain = (0.8 + 0.4 * torch.rand((b, 1, 1, 1), generator=gen)).to(dev)
    noise = (tp.noise_sd * torch.randn(x.shape, generator=gen)).abs().to(dev)
    return (x * gain + noise).clamp(0.0, 1.0)


def _predict_logits(model, x: np.ndarray, device: str, batch_size: int = 512) -> np.ndarray:
    torch = _torch()
    model.eval()
    out = []
    with torch.no_grad():
        for a in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[a : a + batch_size], np.float32))[
                :, None
            ].to(device)
            out.append(model(xb).float().cpu().numpy())
    if not out:
        return np.zeros((0, model[-1].out_features), np.float32)
    return np.concatenate(out)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- metrics and report
def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = calls of true class i predicted as j."""
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def metrics(cm: np.ndarray, classes: list[str]) -> dict:
    """Accuracy over all calls and per-class precision / recall / F1 / support from a confusion matrix."""
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    per = {}
    for i, c in enumerate(classes):
        prec = tp[i] / predicted[i] if predicted[i] else float("nan")
        rec = tp[i] / support[i] if support[i] else float("nan")
        f1 = (
            2 * prec * rec / (prec + rec)
            if predicted[i] and support[i] and (prec + rec) > 0
            else float("nan")
        )
        per[c] = {"precision": prec, "recall": rec, "f1": f1, "support": int(support[i])}
    n = int(cm.sum())
    return {"accuracy": float(tp.sum() / n) if n else float("nan"), "n": n, "per_class": per,
            "confusion_matrix": cm.tolist(), "classes": list(classes)}  # fmt: skip


def plot_confusion(
    cm: np.ndarray, classes: list[str], path: str | os.PathLike, title: str = ""
) -> Path:
    """Confusion matrix (rows: true, columns: predicted; counts and row fractions) as SVG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.1 * n + 2.5, 1.0 * n + 2))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{cm[i, j]}\n{frac[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if frac[i, j] > 0.6 else "black")  # fmt: skip
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path, "svg")
    plt.close(fig)
    return path


# ---------------------------------------------------------------- training
def train_arrays(x: np.ndarray, y: np.ndarray, classes: list[str], params: SpecParams, out_dir,
                 tp: TrainParams | None = None, source=None) -> dict:  # fmt: skip
    """Train on arrays (see :func:`train`); writes the model folder and returns the report."""
    torch = _torch()
    tp = tp or TrainParams()
    out_dir = Path(out_dir)
    if len(classes) < 2:
        raise InputError(source, "a classifier needs at least two classes")
    counts = np.bincount(y, minlength=len(classes))
    if np.any(counts == 0):
        raise InputError(
            source, f"class(es) {[c for c, k in zip(classes, counts) if k == 0]} have no examples"
        )
    tr, va, te = stratified_split(y, tp.val_fraction, tp.test_fraction, tp.seed, source)
    device = resolve_device(tp.device)
    try:
        build_model(len(classes), tp.channels, tp.dropout, x.shape[1:])
    except ValueError as exc:
        raise InputError(source, str(exc)) from None
    with deterministic(tp.seed, tp.threads, warn_only=device != "cpu"):
        model = build_model(len(classes), tp.channels, tp.dropout, x.shape[1:]).to(device)
        n_tr = np.bincount(y[tr], minlength=len(classes)).astype(float)
        weights = torch.tensor(
            n_tr.sum() / (len(classes) * n_tr), dtype=torch.float32, device=device
        )
        loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
        opt = torch.optim.Adam(
            model.parameters(), lr=tp.learning_rate, weight_decay=tp.weight_decay
        )
        gen = torch.Generator().manual_seed(tp.seed)
        xt = torch.from_numpy(x[tr])[:, None]
        yt = torch.from_numpy(y[tr])
        xv = x[va]
        yv_t = torch.from_numpy(y[va]).to(device)
        best = (np.inf, -1, None)
        history = []
        for epoch in range(tp.max_epochs):
            model.train()
            order = torch.randperm(len(tr), generator=gen)
            total = 0.0
            for a in range(0, len(tr), tp.batch_size):
                bi = order[a : a + tp.batch_size]
                xb = xt[bi]
                if tp.augment:
                    xb = augment(xb, gen, tp)
                xb, yb = xb.to(device), yt[bi].to(device)
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(bi)
            logits = _predict_logits(model, xv, device)
            with torch.no_grad():
                vloss = float(loss_fn(torch.from_numpy(logits).to(device), yv_t))
            vacc = float(np.mean(logits.argmax(1) == y[va]))
            history.append(
                {
                    "epoch": epoch + 1,
                    "train_loss": total / len(tr),
                    "val_loss": vloss,
                    "val_accuracy": vacc,
                }
            )
            log.info(
                "epoch %d: train loss %.4f, val loss %.4f, val acc %.4f",
                epoch + 1,
                total / len(tr),
                vloss,
                vacc,
            )
            if vloss < best[0] - 1e-6:
                best = (
                    vloss,
                    epoch + 1,
                    {k: v.detach().clone() for k, v in model.state_dict().items()},
                )
            elif epoch + 1 - best[1] >= tp.patience:
                break
        model.load_state_dict(best[2])
        test_logits = _predict_logits(model, x[te], device)
    cm = confusion(y[te], test_logits.argmax(1), len(classes))
    rep = metrics(cm, classes)
    rep.update({
        "split": "test (held out: used neither for training nor for early stopping)",
        "n_train": int(len(tr)), "n_validation": int(len(va)), "n_test": int(len(te)),
        "best_epoch": int(best[1]), "epochs_run": len(history), "best_val_loss": float(best[0]),
        "device": device, "train_params": _jsonable(asdict(tp)),
    })  # fmt: skip
    save_model(out_dir, {k: v.cpu() for k, v in model.state_dict().items()}, classes, params, tp)
    write_json(out_dir / "report.json", rep)
    with atomic_open(out_dir / "history.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["epoch", "train_loss", "val_loss", "val_accuracy"])
        w.writeheader()
        w.writerows(history)
    plot_confusion(cm, classes, out_dir / "confusion_matrix.svg",
                   title=f"held-out test split: accuracy {rep['accuracy']:.3f} (n={rep['n']})")  # fmt: skip
    return rep


def train(data_dir, out_dir, tp: TrainParams | None = None) -> dict:
    """Train a classifier on a one-folder-per-class spectrogram set; writes ``out_dir`` (see module)."""
    x, y, classes, params = read_dataset(data_dir)
    return train_arrays(x, y, classes, params, out_dir, tp, source=data_dir)


def _jsonable(d):
    return json.loads(json.dumps(d, default=list))


# ---------------------------------------------------------------- model files
def save_model(out_dir, state_dict, classes, params: SpecParams, tp: TrainParams) -> None:
    torch = _torch()
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "model.pt") as tmp, open(tmp, "wb") as fh:
        # to a file object: given a path, torch names the archive's records after the file's stem,
        # which holds the temporary's PID, and the bytes would differ on every run
        torch.save(state_dict, fh)
    write_json(out_dir / "model.json", {
        "format": MODEL_FORMAT, "classes": list(classes), "spectrogram": params.to_dict(),
        "architecture": {"channels": list(tp.channels), "dropout": tp.dropout}, "seed": tp.seed,
        "torch_version": torch.__version__,
    })  # fmt: skip


@dataclass
class CallTypeModel:
    model: object
    classes: list
    params: SpecParams
    device: str
    folder: Path


def load_model(model_dir, device: str = "cpu", expected_classes=None) -> CallTypeModel:
    """Load a model folder for inference (weights mapped to CPU first, then moved to ``device``).

    InputError when files are missing, the classes do not match the weights, or ``expected_classes``
    (if given, non-empty) differ from the model's.
    """
    torch = _torch()
    model_dir = Path(model_dir)
    meta_path, pt = model_dir / "model.json", model_dir / "model.pt"
    meta = read_json(meta_path)
    try:
        classes = [str(c) for c in meta["classes"]]
        params = SpecParams.from_dict(meta["spectrogram"])
        arch = meta["architecture"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(meta_path, f"not a call-type model description ({exc})") from None
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise InputError(meta_path, f"classes {classes}: need >= 2 distinct classes")
    if expected_classes:
        if list(expected_classes) != classes:
            raise InputError(meta_path, f"model classes {classes} do not match the expected classes "
                                        f"{list(expected_classes)}")  # fmt: skip
    if not pt.exists():
        raise InputError(pt, "file not found")
    try:
        state = torch.load(pt, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        raise InputError(pt, f"cannot load the weights ({type(exc).__name__}: {exc})") from None
    try:
        model = build_model(len(classes), arch.get("channels", (16, 32, 64, 64)), arch.get("dropout", 0.3),
                            (params.n_freq, params.n_time))  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise InputError(meta_path, f"bad architecture ({exc})") from None
    head = state.get(f"{len(model) - 1}.weight") if isinstance(state, dict) else None
    if head is not None and head.shape[0] != len(classes):
        raise InputError(pt, f"weights have {head.shape[0]} outputs but model.json lists {len(classes)} "
                             f"classes {classes}")  # fmt: skip
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(
            pt, f"weights do not match the architecture in model.json ({exc})"
        ) from None
    device = resolve_device(device)
    model.to(device).eval()
    return CallTypeModel(model, classes, params, device, model_dir)


def predict_proba(m: CallTypeModel, specs: np.ndarray, seed: int = 0, threads: int = 1, batch_size: int = 64,
                  source=None) -> np.ndarray:  # fmt: skip
    """Class probabilities ``(n, n_classes)`` (columns in ``m.classes`` order), computed
    ``batch_size`` spectrograms at a time (the network's activations of a batch bound the memory)."""
    specs = np.asarray(specs, np.float32)
    if specs.ndim != 3 or specs.shape[1:] != (m.params.n_freq, m.params.n_time):
        raise InputError(source, f"spectrograms of shape {specs.shape[1:]} but the model takes "
                                 f"({m.params.n_freq}, {m.params.n_time})")  # fmt: skip
    with deterministic(seed, threads, warn_only=m.device != "cpu"):
        return _softmax(_predict_logits(m.model, specs, m.device, batch_size).astype(np.float64))


def evaluate_dataset(m: CallTypeModel, data_dir) -> dict:
    """Metrics of a model on a labelled class-folder set; its classes must be among the model's."""
    x, y, classes, params = read_dataset(data_dir)
    missing = [c for c in classes if c not in m.classes]
    if missing:
        raise InputError(data_dir, f"class(es) {missing} are not classes of the model {m.classes}")
    check_params(m, params, data_dir)
    idx = np.asarray([m.classes.index(c) for c in classes])
    pred = predict_proba(m, x, source=data_dir).argmax(1)
    return metrics(confusion(idx[y], pred, len(m.classes)), m.classes)


def check_params(m: CallTypeModel, params: SpecParams, source) -> None:
    if params != m.params:
        diff = {
            k: (v, getattr(m.params, k))
            for k, v in params.to_dict().items()
            if getattr(m.params, k) != v
        }
        raise InputError(source, "spectrogram parameters differ from the model's (this file, model): "
                                 f"{diff}; recompute them with the model's parameters")  # fmt: skip


# ---------------------------------------------------------------- session tables
def read_summary_text(path) -> pd.DataFrame:  # noqa: F821
    """A session USV summary as text columns (written back unchanged), checked for the columns used."""
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except pd.errors.EmptyDataError:
        raise InputError(path, "empty file (expected a CSV header)") from None
    need = ["usv_id", "start", "stop", "mean_amp_ch"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(path, f"missing column(s) {missing}")
    for c in ("start", "stop", "mean_amp_ch"):
        v = pd.to_numeric(df[c], errors="coerce")
        if v.isna().any():
            raise InputError(path, f"column {c!r}: non-numeric value {df[c][v.isna()].iloc[0]!r} "
                                   f"(usv_id {df['usv_id'][v.isna()].iloc[0]})")  # fmt: skip
    if (pd.to_numeric(df["stop"]) < pd.to_numeric(df["start"])).any():
        bad = df["usv_id"][pd.to_numeric(df["stop"]) < pd.to_numeric(df["start"])].iloc[0]
        raise InputError(path, f"usv_id {bad}: stop before start")
    return df


def export_session_spectrograms(summary_csv, memmap, out_npz, params: SpecParams | None = None,
                                png_dir=None) -> int:  # fmt: skip
    """Spectrograms of every USV of a summary from the session memmap (best channel = ``mean_amp_ch``)."""
    import pandas as pd

    from usvflow.audio.memmap import open_memmap_reader, parse_memmap_name

    from .spectrogram import iter_spectrograms_from_memmap, save_png, save_spectrograms

    p = params or SpecParams()
    df = read_summary_text(summary_csv)
    mm = open_memmap_reader(memmap)
    sr = parse_memmap_name(memmap)["sample_rate"]
    ch = pd.to_numeric(df["mean_amp_ch"]).to_numpy()
    if np.any(ch != np.round(ch)):
        raise InputError(summary_csv, "column 'mean_amp_ch' must hold integer channel indices")
    try:
        specs = iter_spectrograms_from_memmap(mm, sr, pd.to_numeric(df["start"]).to_numpy(),
                                              pd.to_numeric(df["stop"]).to_numpy(), ch.astype(np.int64),
                                              p, source=summary_csv)  # fmt: skip
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(memmap, str(exc)) from None

    def with_pngs():  # each spectrogram's PNG written as it passes (none kept in memory)
        for uid, s in zip(df["usv_id"], specs):
            save_png(s, Path(png_dir) / f"{uid}.png")
            yield s

    out = specs if png_dir is None else with_pngs()
    save_spectrograms(out_npz, out, df["usv_id"], p, sr, ch.astype(np.int64))
    return len(df)


def background_spectrograms(summary_csv, memmap, n: int, params: SpecParams | None = None, seed: int = 0,
                            margin_s: float = 0.05) -> tuple[np.ndarray, list[str]]:  # fmt: skip
    """``n`` spectrograms of windows with no USV near them, for the ``none`` class of a training set.

    A window starts at a random time (seeded) on a random channel of the session memmap and lasts as
    long as a random USV of the summary (4–40 ms, log-uniform, if it lists none). It and its whole
    spectrogram window lie at least ``margin_s`` from every USV of the summary on any channel;
    windows of constant (dead or masked) audio are skipped. What a session's background holds
    between calls (its noise, equipment tones, clicks, cage sounds) is what a model with a ``none``
    class learns to tell from calls. A call the summary lacks (too faint for the detector) can fall
    in a window: use a session whose table is complete, or look at the windows first.

    Returns ``(spectrograms (n, n_freq, n_time) float32, names)``, names
    ``bg<seed>_<index>_t<onset>ms_ch<channel>``. InputError when the session has too little room
    between its USVs.
    """
    import pandas as pd

    from usvflow.audio.memmap import open_memmap_reader, parse_memmap_name

    from .spectrogram import spectrograms_from_memmap

    p = params or SpecParams()
    if n < 1:
        raise InputError(None, f"background: n = {n}, need at least 1")
    df = read_summary_text(summary_csv)
    mm = open_memmap_reader(memmap)
    sr = parse_memmap_name(memmap)["sample_rate"]
    n_samples, n_ch = mm.shape
    starts = pd.to_numeric(df["start"]).to_numpy()
    stops = pd.to_numeric(df["stop"]).to_numpy()
    durations = np.clip(stops - starts, 0.002, p.duration_s) if len(starts) else None
    order = np.argsort(starts)  # sorted by start, each stop the latest of the USVs so far
    starts, stops = starts[order], np.maximum.accumulate(stops[order])
    window_s = p.duration_s + p.n_fft / sr
    span = n_samples / sr - window_s
    rng = np.random.default_rng(seed)
    on, off, ch = [], [], []
    tries = 0
    while len(on) < n and tries < 100 * n and span > 0:
        tries += 1
        t0 = float(rng.uniform(0.0, span))
        dur = float(rng.choice(durations)) if durations is not None else float(
            np.exp(rng.uniform(np.log(0.004), np.log(0.04))))  # fmt: skip
        k = int(rng.integers(n_ch))
        # USVs starting before the window's end (its whole spectrogram, also what the mask hides)
        i = np.searchsorted(starts, t0 + window_s + margin_s)
        if i > 0 and stops[i - 1] > t0 - margin_s:  # the latest-ending of them ends after its start
            continue
        a = int(t0 * sr)
        seg = np.asarray(mm[a : a + int(window_s * sr), k])
        if seg.size == 0 or np.all(seg == seg[0]):
            continue
        on.append(t0)
        off.append(t0 + dur)
        ch.append(k)
    if len(on) < n:
        raise InputError(summary_csv, f"found room for {len(on)} of {n} background windows of "
                                      f"{p.duration_s:g} s at >= {margin_s:g} s from every USV in "
                                      f"{memmap} (too short, too dense or silent); ask for fewer")  # fmt: skip
    specs = spectrograms_from_memmap(
        mm, sr, np.asarray(on), np.asarray(off), np.asarray(ch), p, memmap
    )
    names = [
        f"bg{seed}_{i:06d}_t{round(t * 1000)}ms_ch{k:02d}" for i, (t, k) in enumerate(zip(on, ch))
    ]
    return specs, names


def classify_summary(summary_csv, spectrograms_npz, model_dir, out_csv, device: str = "cpu",
                     expected_classes=None, seed: int = 0, threads: int = 1,
                     min_probability: float | None = None) -> pd.DataFrame:  # noqa: F821  # fmt: skip
    """The summary with ``call_type`` and ``call_type_prob`` appended, written atomically to ``out_csv``.

    The spectrogram file must list the summary's USVs in the same order and have the model's
    parameters; the summary's own columns are copied unchanged. A USV whose most probable type has
    a probability below ``min_probability`` (None: no threshold) gets ``call_type = "none"`` (none of the trained types;
    ``call_type_prob`` still holds that highest probability). A model with a class named "none"
    cannot be used with a rejection threshold (the two would be confused).
    """
    df = read_summary_text(summary_csv)
    sp = load_spectrograms(spectrograms_npz)
    if list(sp["usv_id"]) != list(df["usv_id"]):
        raise InputError(spectrograms_npz, f"usv_id list ({len(sp['usv_id'])} calls) differs from the summary "
                                           f"{summary_csv} ({len(df)} calls)")  # fmt: skip
    m = load_model(model_dir, device, expected_classes)
    check_params(m, sp["params"], spectrograms_npz)
    proba = predict_proba(
        m, sp["spectrograms"], seed=seed, threads=threads, source=spectrograms_npz
    )
    out = df.copy()
    k = proba.argmax(1) if len(proba) else np.zeros(0, np.int64)
    min_probability = min_probability or 0.0
    if min_probability > 0 and NO_TYPE in m.classes:
        raise InputError(model_dir, f"the model has a class named {NO_TYPE!r}: the rejection threshold "
                                    "min_probability would be ambiguous; set it to 0")  # fmt: skip
    top = proba[np.arange(len(k)), k] if len(proba) else np.zeros(0)
    out["call_type"] = [m.classes[i] if q >= min_probability else NO_TYPE for i, q in zip(k, top)]
    out["call_type_prob"] = [f"{proba[i, j]:.6f}" for i, j in enumerate(k)]
    with atomic_open(out_csv, "w", newline="") as fh:
        out.to_csv(fh, index=False)
    return out
