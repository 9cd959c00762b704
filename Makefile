# hqnn-desktop: make run | make test | make install | make bench | make screenshots
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint bench screenshots

install: $(STAMP)

# (Re)creates the virtual environment and installs the project with its test extra.
# torch==2.14.1 / torchvision==0.29.1 are pinned (pip takes them from this machine's disk).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/hqnn-desktop

test: install
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

# Speed and memory figures of README (needs the PBC validation images: BENCH_DATA=DIR to point elsewhere);
# ARGS passes options, e.g. make bench ARGS="--only gui"
bench: install
	$(BIN)/python scripts/bench.py $(ARGS)

lint: install
	$(BIN)/ruff check hqnn_desktop tests training scripts

# README screenshots from the real app (needs Debian's xvfb and the XCB libraries the README's quick start names)
screenshots: install
	xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python scripts/screenshots.py $(ARGS)
