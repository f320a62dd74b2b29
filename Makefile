# The README's two commands. Both build the virtual environment from pyproject.toml first.
VENV := .venv
BIN := $(VENV)/bin
# pip installs without compiling every module it writes (a minute of the set-up, most of it for
# modules nothing imports); Python writes a module's bytecode when a process first imports it,
# which a shell's PYTHONDONTWRITEBYTECODE would forbid, making every process compile again. The
# set-up imports what the suite's workers and the workflow's jobs import once, so that they do
# not all compile it at the same time.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test lint

run: $(VENV)/.installed
	$(BIN)/snakemake --cores all

test: lint
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check workflow
	$(BIN)/snakemake --lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e '.[dev]'
	$(BIN)/python -m imprint.method.precompile  # numba's kernels, compiled once
	$(BIN)/python -c "import lightning, matplotlib.pyplot, pandas, scipy.stats, seaborn, \
	  sklearn.linear_model, snakemake.api, torchvision, scikit_posthocs, pytest, xdist"  # bytecode
	touch $@
