# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
VENV ?= .venv
PYBIN := $(VENV)/bin
OUT ?= out

.PHONY: env demo test lint bench-index clean

env:
	@bash scripts/setup_env.sh

demo: env
	$(PYBIN)/graphwalk index --dataset mnist1d --clusters 40 --graph er --graph knn-clusters --graph knn --k 10 --groups labels --out $(OUT)/mnist1d.gw --overwrite
	$(PYBIN)/graphwalk inspect $(OUT)/mnist1d.gw --plot $(OUT)/mnist1d.png --batch-size 64
	$(PYBIN)/graphwalk bench $(OUT)/mnist1d.gw --batch-size 64 --no-compile
	$(PYBIN)/graphwalk train --dataset mnist1d --index $(OUT)/mnist1d.gw --compare random,er,knn:mix=0.5,knn --seeds 0,1,2 --epochs 20 --out $(OUT)/compare --overwrite

lint: env
	$(PYBIN)/ruff check graphwalk tests bench examples
	$(PYBIN)/ruff format --check graphwalk tests bench examples
	$(PYBIN)/mypy

test: lint
	$(PYBIN)/python -m pytest -q

bench-index: env
	$(PYBIN)/python bench/index.py

clean:
	rm -rf $(OUT) .pytest_cache .mypy_cache .ruff_cache
