# fieldkit — the README's two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR ?= fieldkit-demo
PYTEST_ARGS ?=

.PHONY: demo test test-fast venv schemas lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# torch first, as the machine provides it (2.13.0, CPU): the test extra pins it, and a bare
	@# requirement would pull a multi-GB CUDA build on a fresh machine
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# byte code for the package, as a non-editable install has: under PYTHONDONTWRITEBYTECODE=1
	@# every command would otherwise compile the modules it imports (~0.1 s of each start).
	$(BIN)/python -m compileall -q fieldkit >/dev/null
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/fieldkit demo $(DEMO_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

schemas: $(STAMP)
	$(BIN)/fieldkit schema export --out schemas

lint: $(STAMP)
	$(BIN)/ruff check fieldkit tests

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache build *.egg-info
