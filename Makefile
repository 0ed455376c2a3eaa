# The README's two commands:
#   make all    set up, execute every notebook in the `cpu` profile, build the book
#   make test   set up, run the whole test suite (this is what .ci/run calls)
# Other targets: setup, course, book, student, bench, bench-check, compat, lint, system-deps, clean.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PROFILE ?= cpu
# `--system-site-packages` reuses an image's own TensorFlow (the weekly Colab-image run)
VENV_FLAGS ?=
# Each notebook in `cpu` takes minutes; a cell is stopped after this many seconds.
NB_TIMEOUT ?= 1800
# Notebooks executed at a time by `make course` (each in its own kernel; same numbers as one
# at a time, since the chapters are independent and seed themselves).
JOBS ?= 2

# Executed copies of the notebooks live where the book expects them (git-ignored).
BOOK_NOTEBOOKS := book/notebooks
TEST_BOOK      := build/test-book
# the smoke run's claims ledger (helpers.claims), shown on the test book's report page
TEST_CLAIMS    := $(CURDIR)/build/test-claims

.PHONY: all setup course book student bench bench-check compat test lint system-deps clean

all: course book

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

# Execute every notebook in $(PROFILE) with real data from the data root (papermill, $(JOBS) at a
# time, a progress bar per notebook; after a failure none starts, and the traceback is printed).
# Timings and peak memory per notebook: build/course-timings.json (helpers.course).
# Each chapter writes the lessons it checked to build/claims/$(PROFILE)/ (helpers.claims).
course: setup
	rm -rf $(BOOK_NOTEBOOKS) build/claims/$(PROFILE) && mkdir -p $(BOOK_NOTEBOOKS)
	$(BIN)/python -m helpers.course --out $(BOOK_NOTEBOOKS) --profile $(PROFILE) \
	    --timeout $(NB_TIMEOUT) --jobs $(JOBS) --timings build/course-timings.json

# The student edition: solutions and model answers removed, checks kept (helpers.exercises);
# the book offers the zip for download.
STUDENT := build/student
student: setup
	$(BIN)/python -m helpers.exercises student $(STUDENT) --zip book/_generated/dl4h-student-edition.zip

book: setup student
	@test -d $(BOOK_NOTEBOOKS) || { echo "no executed notebooks in $(BOOK_NOTEBOOKS): run 'make course' first"; exit 1; }
	$(BIN)/jupyter-book build book --warningiserror --keep-going
	@echo "The book is in book/_build/html/index.html"

# Unit tests, the notebooks in `smoke` (nbmake, on copies that keep their outputs) and the
# gpu path, $(TEST_JOBS) at a time (pytest-xdist); then the book built from those executed
# copies and opened in Chromium.
TEST_JOBS ?= auto
test: setup
	rm -rf $(TEST_BOOK) && mkdir -p build
	cp -r book $(TEST_BOOK) && rm -rf $(TEST_BOOK)/_build $(TEST_BOOK)/notebooks
	mkdir -p $(TEST_BOOK)/notebooks && cp notebooks/*.ipynb $(TEST_BOOK)/notebooks/
	$(BIN)/python -m helpers.exercises student build/test-student \
	    --zip $(TEST_BOOK)/_generated/dl4h-student-edition.zip
	rm -rf $(TEST_CLAIMS)
	DL4H_PROFILE=smoke DL4H_TEST_BOOK=$(TEST_BOOK) DL4H_CLAIMS=$(TEST_CLAIMS) DL4H_EXERCISES=strict \
	    $(BIN)/python -m pytest -m "not book" -n $(TEST_JOBS) --maxprocesses 4 --dist worksteal \
	    --durations=25 --nbmake --overwrite --nbmake-timeout=900 tests $(TEST_BOOK)/notebooks
	DL4H_PROFILE=smoke DL4H_TEST_BOOK=$(TEST_BOOK) DL4H_CLAIMS=$(TEST_CLAIMS) \
	    $(BIN)/python -m pytest -m book --durations=5 tests

# The benchmarks (fixed seeds, JSON reports read by the book's results page). In `cpu` they
# take several hours on 2 cores (measured per report in its provenance); `gpu` uses 224-pixel
# films and an ImageNet backbone for the CNN, 64-voxel volumes and a 3D U-Net.
REPORTS    := benchmarks/reports
BENCH_SIZE ?= $(if $(filter gpu,$(PROFILE)),224,28)
VOLUME_SIZE ?= $(if $(filter gpu,$(PROFILE)),64,28)
bench: setup
	$(BIN)/python benchmarks/cnn_medmnist.py --dataset pneumoniamnist --size $(BENCH_SIZE) \
	    --profile $(PROFILE) --seeds 0 1 2 --out $(REPORTS)/cnn_pneumoniamnist_$(BENCH_SIZE)_$(PROFILE).json
	$(BIN)/python benchmarks/cnn_medmnist.py --dataset retinamnist --size 28 \
	    --profile $(PROFILE) --seeds 0 1 2 --out $(REPORTS)/cnn_retinamnist_28_$(PROFILE).json
	$(BIN)/python benchmarks/pneumonia_leakage.py --profile $(PROFILE) --seeds 0 1 2 \
	    --out $(REPORTS)/pneumonia_leakage_$(PROFILE).json
	$(BIN)/python benchmarks/rnn_sequences.py --task splice --profile $(PROFILE) --seeds 0 1 2 \
	    --out $(REPORTS)/rnn_splice_$(PROFILE).json
	$(BIN)/python benchmarks/rnn_sequences.py --task ecg5000 --profile $(PROFILE) --seeds 0 1 2 \
	    --out $(REPORTS)/rnn_ecg5000_$(PROFILE).json
	$(BIN)/python benchmarks/gan_medmnist.py --dataset pneumoniamnist --profile $(PROFILE) --seeds 0 1 2 \
	    --out $(REPORTS)/gan_pneumoniamnist_$(PROFILE).json
	$(BIN)/python benchmarks/volumes.py --task adrenal --size $(VOLUME_SIZE) --profile $(PROFILE) \
	    --seeds 0 1 2 --out $(REPORTS)/volumes_adrenal_$(VOLUME_SIZE)_$(PROFILE).json
	$(BIN)/python benchmarks/volumes.py --task hippocampus --profile $(PROFILE) --seeds 0 1 2 \
	    --out $(REPORTS)/volumes_hippocampus_$(PROFILE).json
	$(BIN)/python benchmarks/ehr_mortality.py --profile $(PROFILE) --splits 1 2 3 4 5 \
	    --out $(REPORTS)/ehr_mortality_$(PROFILE).json
	for cohort in support gbsg whas; do $(BIN)/python benchmarks/survival.py --dataset $$cohort \
	    --profile $(PROFILE) --seeds 0 1 2 --out $(REPORTS)/survival_$${cohort}_$(PROFILE).json || exit 1; done

# Re-run committed reports with the command in their provenance (into build/bench-check/, the
# committed report is not overwritten) and compare each headline mean with the committed mean
# ± 2 sd (at least 0.01): benchmarks/check.py. CHECK= names reports (default: all of them, hours
# on 2 cores); RECORD=1 writes the outcome into each report's provenance.reproduced.
CHECK ?=
bench-check: setup
	$(BIN)/python benchmarks/check.py $(CHECK) $(if $(RECORD),--record)

# The versions we claim are the versions we test: the unit tests and the smoke notebooks in
# one environment at the lower bounds of pyproject.toml and one at the newest releases, under
# build/compat/; report in build/compat/report.{json,md}. Slow (TensorFlow twice, about 40 min
# on 2 cores), so not part of `make test` or CI. COMPAT_ENVS=lower runs one environment.
COMPAT_ENVS ?= lower newest
compat:
	nice -n 19 $(PYTHON) tests/compat/run_compat.py --python $(PYTHON) --envs $(COMPAT_ENVS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check helpers benchmarks tests book/_ext

# Debian packages the browser test needs (run once, as root or with sudo): the browser,
# and fonts for the book's Latin and Chinese text (the glossary is bilingual).
SYSTEM_PACKAGES := chromium fonts-dejavu-core fonts-wqy-zenhei
system-deps:
	@if dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then echo "$(SYSTEM_PACKAGES): installed"; else \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(SYSTEM_PACKAGES); fi

clean:
	rm -rf book/_build $(BOOK_NOTEBOOKS) build .pytest_cache
