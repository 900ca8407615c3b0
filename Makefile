# Two entry points (see README): `make app` and `make test`.
# Both create/reuse .venv and install with pip, taking the local CPU build of torch.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml setup.py scripts/install.sh | sha1sum | cut -c1-12)
PORT ?= 8501

.PHONY: app test lint install sysdeps

install: $(STAMP)

$(STAMP): pyproject.toml setup.py scripts/install.sh
	@VENV=$(VENV) sh scripts/install.sh
	@touch $@

sysdeps:
	@sh scripts/system-deps.sh

app: $(STAMP)
	$(VENV)/bin/streamlit run app/main.py --server.port $(PORT) --server.headless true

test: $(STAMP) sysdeps
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(PY) -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .
