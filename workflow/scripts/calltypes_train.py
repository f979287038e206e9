"""Adapter: class-folder training set -> call-type model folder (model.pt, model.json, report, SVG)."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.usv.calltypes import TrainParams, train  # noqa: E402

t = snakemake.params.train
tp = TrainParams(seed=t["seed"], val_fraction=t["val_fraction"], test_fraction=t["test_fraction"],
                 max_epochs=t["max_epochs"], patience=t["patience"], batch_size=t["batch_size"],
                 learning_rate=t["learning_rate"], device=t["device"], threads=snakemake.threads)  # fmt: skip
rep = train(snakemake.input.data, snakemake.params.out_dir, tp)
log.info("held-out test accuracy %.4f on %d calls (best epoch %d, %s)", rep["accuracy"], rep["n"],
         rep["best_epoch"], rep["device"])  # fmt: skip
