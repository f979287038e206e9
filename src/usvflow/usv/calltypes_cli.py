"""Command-line front ends of the call-type steps (``usvflow export-spectrograms | train-calltypes |
classify-calltypes``)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from usvflow.io.atomic import InputError

from .spectrogram import SpecParams


def _add_spec_arguments(s) -> None:
    d = SpecParams()
    g = s.add_argument_group("spectrogram")
    g.add_argument(
        "--duration",
        type=float,
        default=d.duration_s,
        help=f"window from onset, s (default {d.duration_s})",
    )
    g.add_argument(
        "--f-lo", type=float, default=d.f_lo_hz, help=f"lower band edge, Hz (default {d.f_lo_hz:g})"
    )
    g.add_argument(
        "--f-hi", type=float, default=d.f_hi_hz, help=f"upper band edge, Hz (default {d.f_hi_hz:g})"
    )
    g.add_argument(
        "--n-fft", type=int, default=d.n_fft, help=f"FFT frame, samples (default {d.n_fft})"
    )
    g.add_argument(
        "--n-freq", type=int, default=d.n_freq, help=f"frequency bands (default {d.n_freq})"
    )
    g.add_argument("--n-time", type=int, default=d.n_time, help=f"time frames (default {d.n_time})")
    g.add_argument(
        "--no-mask-after-stop", action="store_true", help="keep what follows the call's stop"
    )


def _spec_params(a) -> SpecParams:
    return SpecParams(duration_s=a.duration, f_lo_hz=a.f_lo, f_hi_hz=a.f_hi, n_fft=a.n_fft, n_freq=a.n_freq,
                      n_time=a.n_time, mask_after_stop=not a.no_mask_after_stop)  # fmt: skip


def add_export_arguments(s) -> None:
    s.add_argument(
        "summary", nargs="?", help="session USV summary CSV (usv_id, start, stop, mean_amp_ch, ...)"
    )
    s.add_argument(
        "--memmap", help="the session's concatenated int16 memmap (best channel = mean_amp_ch)"
    )
    s.add_argument("-o", "--output", help="spectrogram array file (.npz) of the summary's USVs")
    s.add_argument("--png-dir", help="also write one PNG per USV here")
    s.add_argument(
        "--label-column", help="column of the summary holding class labels: write a training set"
    )
    s.add_argument("--dataset-dir", help="training set folder (one sub-folder per class)")
    s.add_argument(
        "--name-prefix", default="", help="prefix of the training-set file names (e.g. session id)"
    )
    s.add_argument(
        "--background",
        type=int,
        metavar="N",
        help="also write N spectrograms of the session's stretches between USVs to DATASET_DIR/none "
        "(the no-call class: a model trained with it types noise, tones and clicks 'none')",
    )
    s.add_argument(
        "--simulate",
        type=int,
        metavar="N_PER_CLASS",
        help="write a training set of simulated calls (N per class) instead of reading a summary",
    )
    s.add_argument(
        "--classes", nargs="+", help="simulated call types (default: all the simulator's)"
    )
    s.add_argument(
        "--seed", type=int, default=0, help="seed of --simulate and --background (default 0)"
    )
    _add_spec_arguments(s)


def run_export(a) -> None:
    import numpy as np

    from .calltypes import (
        NO_TYPE,
        background_spectrograms,
        export_session_spectrograms,
        read_summary_text,
        write_dataset,
    )
    from .spectrogram import load_spectrograms

    p = _spec_params(a)
    if a.simulate is not None:
        from usvflow.simulate.calls import CALL_TYPES

        from ..simulate.calltypes import simulate_labelled_spectrograms

        if not a.dataset_dir:
            raise InputError(None, "--simulate needs --dataset-dir")
        if a.simulate < 3:
            raise InputError(None, "--simulate needs at least 3 calls per class")
        try:
            specs, labels = simulate_labelled_spectrograms(
                a.simulate, a.classes or CALL_TYPES, a.seed, p
            )
        except ValueError as exc:
            raise InputError(None, str(exc)) from None
        names = [f"{a.name_prefix}sim{a.seed}_{i:06d}" for i in range(len(labels))]
        write_dataset(a.dataset_dir, specs, labels, names, p)
        print(
            f"wrote {len(labels)} simulated spectrograms of {len(set(labels))} classes to {a.dataset_dir}"
        )
        return
    if not (a.summary and a.memmap and (a.output or a.background is not None)):
        raise InputError(None, "give SUMMARY, --memmap and -o and/or --background N "
                               "(or --simulate N --dataset-dir DIR)")  # fmt: skip
    if a.background is not None:
        if not a.dataset_dir:
            raise InputError(None, "--background needs --dataset-dir")
        specs, names = background_spectrograms(a.summary, a.memmap, a.background, p, a.seed)
        names = [f"{a.name_prefix}{x}" for x in names]
        write_dataset(a.dataset_dir, specs, [NO_TYPE] * len(names), names, p)
        print(f"wrote {len(names)} background spectrograms to {Path(a.dataset_dir) / NO_TYPE}")
    if not a.output:
        return
    n = export_session_spectrograms(a.summary, a.memmap, a.output, p, a.png_dir)
    print(f"wrote {n} spectrograms to {a.output}")
    if a.label_column or (a.dataset_dir and a.background is None):
        if not (a.label_column and a.dataset_dir):
            raise InputError(None, "a training set needs both --label-column and --dataset-dir")
        df = read_summary_text(a.summary)
        if a.label_column not in df.columns:
            raise InputError(a.summary, f"no column {a.label_column!r}")
        lab = df[a.label_column].astype(str).str.strip()
        keep = (lab != "").to_numpy()
        sp = load_spectrograms(a.output)
        names = [f"{a.name_prefix}{u}" for u in np.asarray(sp["usv_id"])[keep]]
        write_dataset(a.dataset_dir, sp["spectrograms"][keep], lab[keep].tolist(), names, p)
        print(f"wrote {int(keep.sum())} labelled spectrograms ({int((~keep).sum())} unlabelled skipped) "
              f"to {a.dataset_dir}")  # fmt: skip


def schema_train_defaults():
    """TrainParams with the defaults of the config schema's call_types.train (their one source)."""
    from ..io.config import load_schema
    from .calltypes import TrainParams

    schema = load_schema(
        Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"
    )
    props = schema["properties"]["call_types"]["properties"]["train"]["properties"]
    fields = TrainParams.__dataclass_fields__
    return TrainParams(
        **{k: v["default"] for k, v in props.items() if k in fields and "default" in v}
    )


def add_train_arguments(s) -> None:
    d = schema_train_defaults()
    s.add_argument("data_dir", help="training set: DATA_DIR/<class>/*.npy (+ dataset.json)")
    s.add_argument(
        "-o",
        "--output",
        required=True,
        help="model folder (model.pt, model.json, report.json, ...)",
    )
    s.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help=f"seed of splits, initialisation, shuffling (default {d.seed})",
    )
    s.add_argument(
        "--epochs", type=int, default=d.max_epochs, help=f"most epochs (default {d.max_epochs})"
    )
    s.add_argument("--patience", type=int, default=d.patience, help="early stopping: epochs without a better "
                   f"validation loss (default {d.patience})")  # fmt: skip
    s.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help=f"mini-batch size (default {d.batch_size})",
    )
    s.add_argument(
        "--learning-rate",
        type=float,
        default=d.learning_rate,
        help=f"Adam learning rate (default {d.learning_rate})",
    )
    s.add_argument(
        "--val-fraction",
        type=float,
        default=d.val_fraction,
        help=f"share of each class for early stopping (default {d.val_fraction})",
    )
    s.add_argument(
        "--test-fraction",
        type=float,
        default=d.test_fraction,
        help=f"share of each class held out for the report (default {d.test_fraction})",
    )
    s.add_argument("--no-augment", action="store_true", help="train without time/frequency shifts")
    s.add_argument(
        "--threads", type=int, default=d.threads, help=f"CPU threads (default {d.threads})"
    )
    s.add_argument("--device", default=d.device,
                   help=f"auto (GPU if there is one), cpu, cuda, cuda:N (default {d.device})")  # fmt: skip


def train_params_from_args(a):
    from .calltypes import TrainParams

    return TrainParams(seed=a.seed, max_epochs=a.epochs, patience=a.patience, batch_size=a.batch_size,
                       learning_rate=a.learning_rate, val_fraction=a.val_fraction, test_fraction=a.test_fraction,
                       augment=not a.no_augment, threads=a.threads, device=a.device)  # fmt: skip


def run_train(a) -> None:
    from .calltypes import train

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
    rep = train(a.data_dir, a.output, train_params_from_args(a))
    print(f"held-out test accuracy {rep['accuracy']:.4f} on {rep['n']} calls (best epoch {rep['best_epoch']}, "
          f"{rep['device']}); report in {Path(a.output) / 'report.json'}")  # fmt: skip
    for c, m in rep["per_class"].items():
        print(
            f"  {c:>12s}: precision {m['precision']:.3f} recall {m['recall']:.3f} (n={m['support']})"
        )


def add_classify_arguments(s) -> None:
    s.add_argument("summary", nargs="?", help="session USV summary CSV")
    s.add_argument("--model", required=True, help="model folder of train-calltypes")
    s.add_argument("--spectrograms", help="the summary's spectrogram file (export-spectrograms -o)")
    s.add_argument(
        "--memmap", help="or: compute the spectrograms from this memmap with the model's parameters"
    )
    s.add_argument("-o", "--output", help="summary with call_type and call_type_prob columns")
    s.add_argument(
        "--evaluate", metavar="DATA_DIR", help="instead: metrics of the model on a labelled set"
    )
    s.add_argument(
        "--expect-classes", nargs="+", help="fail unless the model has exactly these classes"
    )
    s.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    s.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    s.add_argument(
        "--min-probability",
        type=float,
        help='below this probability of its most probable type a USV is typed "none" (default: off)',
    )


def run_classify(a) -> None:
    import tempfile

    from .calltypes import (
        classify_summary,
        evaluate_dataset,
        export_session_spectrograms,
        load_model,
    )

    if a.evaluate:
        rep = evaluate_dataset(load_model(a.model, a.device, a.expect_classes), a.evaluate)
        print(json.dumps({k: rep[k] for k in ("accuracy", "n", "classes", "confusion_matrix")}))
        return
    if not (a.summary and a.output and (a.spectrograms or a.memmap)):
        raise InputError(
            None, "give SUMMARY, -o and --spectrograms (or --memmap), or --evaluate DATA_DIR"
        )
    with tempfile.TemporaryDirectory() as tmp:
        spec = a.spectrograms
        if spec is None:
            m = load_model(a.model, "cpu", a.expect_classes)
            spec = Path(tmp) / "spectrograms.npz"
            export_session_spectrograms(a.summary, a.memmap, spec, m.params)
        out = classify_summary(a.summary, spec, a.model, a.output, a.device, a.expect_classes, threads=a.threads,
                               min_probability=a.min_probability)  # fmt: skip
    print(
        f"classified {len(out)} USV(s): {out['call_type'].value_counts().to_dict()} -> {a.output}"
    )
