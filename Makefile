# usvflow: the two set-up commands of the README.
#   make demo   simulate a cohort, run the whole workflow on it, show where the results are, build the report
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
	rm -rf $(DEMO)
	$(BIN)/usvflow simulate $(DEMO) --sessions 1 --seconds 4 --seed 0
	$(BIN)/usvflow export-spectrograms --simulate 120 --seed 1 --dataset-dir $(DEMO)/calltype_training
	$(BIN)/snakemake --cores $(CORES) --configfile $(DEMO)/config.yaml config/demo.yaml
	@echo
	@echo "Demo products (inside each session folder, at the documented paths):"
	@find $(DEMO)/Data -path '*/video/*' \( -name '*.json' -o -name '*-[0-9]*.mp4' \) | sort
	@find $(DEMO)/Data \( -name 'audio_triggerbox_sync_info.json' -o -name '*_video_frames_in_audio_samples.txt' \
		-o -name '*_concatenated_audio_*_int16.*' \) | sort
	@echo "24 channels each in: audio/original, audio/cropped_to_video, audio/hpss, audio/hpss_filtered"
	@for f in $(DEMO)/Data/*/audio/das_annotations; do \
		echo "$$f: $$(ls $$f | wc -l) per-channel USV detection CSVs, $$(cat $$f/*.csv | grep -c USV) detections"; done
	@for f in $(DEMO)/Data/*/audio/*_usv_summary.csv; do \
		echo "$$f: $$(($$(wc -l < $$f) - 1)) USVs (merged across channels, noise rejected)"; done
	@find $(DEMO)/Data -name '*_usv_signal_correlation_histogram.svg' | sort
	@find $(DEMO)/Data \( -name '*_usv_summary_assigned.csv' -o -name '*_source_estimates.csv' -o -name '*_sound_sources.svg' \
		-o -name '*_usv_summary_call_types.csv' \) | sort
	@find $(DEMO)/Data/*/sync \( -name '*_av_sync.json' -o -name '*_summary.svg' \) | sort
	@find $(DEMO)/Data \( -name '*_ev_sync.json' -o -name '*_points3d_translated_rotated_metric.h5' -o -name '*_calibration.toml' \
		-o -name '*_cluster_data_manifest.json' \) | sort
	@find $(DEMO)/EPHYS -maxdepth 2 \( -name 'changepoints_info_*.json' -o -name 'concatenated_*' \) | sort
	@find $(DEMO)/Data \( -name '*_quality_metrics.csv' -o -name '*.nwb' \) | sort
	@echo "Call-type model (trained by the workflow on another simulated cohort): $(DEMO)/calltype_model/"
	@echo "Ground truth of the simulation: $(DEMO)/truth/"
	@find $(DEMO)/Data -path '*/report/*' | sort
	$(BIN)/snakemake --cores 1 --configfile $(DEMO)/config.yaml config/demo.yaml --report $(DEMO)/report.html
	@echo "Cohort overview (one row per session): report/cohort_overview.csv"
	@echo "Report (open in a browser): $(abspath $(DEMO))/report.html"

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
