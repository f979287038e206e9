# usvflow: the two set-up commands of the README.
#   make demo   simulate a cohort, run the whole workflow on it, build the report, compare with the truth
#   make test   install what the tests need, check formatting/lint, run the test suite
#               (USVFLOW_REQUIRE_SLURM=1 make test also installs SLURM and munge with apt - root -
#               and runs the tests on a real single-node SLURM cluster; CI does this)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO ?= demo
CORES ?= 2

.PHONY: demo test test-tools lint install bench bench-session rulegraph clean-demo

$(BIN)/usvflow: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[workflow,dev,nwb]'
	touch $@

install: $(BIN)/usvflow

demo: install
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	@echo "[1/4] simulating a 4 s session with calibration in $(DEMO)/ (ground truth in $(DEMO)/truth/)"
	@$(BIN)/usvflow simulate $(DEMO) --sessions 1 --seconds 4 --seed 0 --no-progress > $(DEMO)/simulate.log
	@echo "[2/4] simulating labelled calls (and no-call windows: class none) to train the call-type classifier on"
	@$(BIN)/usvflow export-spectrograms --simulate 120 --seed 1 --dataset-dir $(DEMO)/calltype_training \
		--classes flat up_ramp down_ramp step trill complex none \
		> $(DEMO)/calltype_training.log
	@echo "[3/4] running every stage (Snakemake's output: $(DEMO)/snakemake.log; each step's: <session>/logs/)"
	@$(BIN)/snakemake --cores $(CORES) --configfile $(DEMO)/config.yaml config/demo.yaml > $(DEMO)/snakemake.log 2>&1 \
		|| { tail -n 40 $(DEMO)/snakemake.log; echo "make demo: the workflow failed (above: the end of $(DEMO)/snakemake.log)"; exit 1; }
	@grep -E '^[0-9]+ of [0-9]+ steps' $(DEMO)/snakemake.log | tail -n 1
	@echo "[4/4] building the report"
	@$(BIN)/snakemake --cores 1 --configfile $(DEMO)/config.yaml config/demo.yaml --report $(DEMO)/report.html \
		> $(DEMO)/report.log 2>&1 || { tail -n 40 $(DEMO)/report.log; exit 1; }
	@echo "Products: $(DEMO)/Data/<session>/ (documented paths); cohort table: report/cohort_overview.csv"
	@echo "Report (open in a browser): $(abspath $(DEMO))/report.html"
	@echo
	@$(BIN)/usvflow compare-truth $(DEMO)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/
	$(BIN)/snakemake --lint --cores 1

test: install lint
	@if [ "$$USVFLOW_REQUIRE_SLURM" = 1 ]; then bash .ci/install-slurm.sh; fi
	$(BIN)/pytest -q

# The tools tier (tests/tools/): the workflow's GPU rules with the real tools, each in a venv built from
# the pip part of workflow/envs/<tool>.yaml (cached in ~/.cache/usvflow/tool-venvs by the file's hash).
#   make test-tools                      every tool, on the CPU
#   make test-tools TOOLS=kilosort       a pytest -k selection
#   make test-tools TOOLS_DEVICE=cuda    on the GPU
TOOLS ?=
TOOLS_DEVICE ?= cpu
test-tools: install
	USVFLOW_TOOLS=1 USVFLOW_TOOLS_DEVICE=$(TOOLS_DEVICE) $(BIN)/pytest -q -s tests/tools $(if $(TOOLS),-k "$(TOOLS)")

bench: install
	$(BIN)/python bench/run.py

# Whole simulated sessions of 1, 2 and 5 minutes (real-size streams, every stage) through the
# workflow; per-stage time, memory and disk, projected to 20 minutes (needs ~40 GB of disk at 5 min).
BENCH_OUT ?= bench-session
MINUTES ?= 1 2 5
bench-session: install
	$(BIN)/python bench/session.py run $(BENCH_OUT) --minutes $(MINUTES) --cores $(CORES)

rulegraph: demo
	# after the demo run (the graph is the same before it: every job is known at planning time)
	$(BIN)/snakemake --workflow-profile none --configfile $(DEMO)/config.yaml config/demo.yaml --rulegraph --cores 1 \
		| dot -Tsvg > docs/rulegraph.svg

clean-demo:
	rm -rf $(DEMO)
