# Everything runs from the project-local virtual environment in .venv, made on demand.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_SRC := $(wildcard protos/modelregistry/v1/*.proto)
PROTO_OUT := src/modelregistry/v1
PROTO_STAMP := $(PROTO_OUT)/.generated
THIRD_PARTY := third_party

.PHONY: run test lint proto bench clean install baseline fmt system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	touch $@

install: $(STAMP)

# googleapis-common-protos ships the google/api and google/rpc sources; buf and protoc
# read them from an ignored third_party/ tree so nothing external is fetched.
$(THIRD_PARTY)/.copied: $(STAMP)
	rm -rf $(THIRD_PARTY) && mkdir -p $(THIRD_PARTY)/google
	cp -r $$($(BIN)/python -c 'import google.api, os; print(os.path.dirname(google.api.__path__[0]))')/api $(THIRD_PARTY)/google/
	cp -r $$($(BIN)/python -c 'import google.rpc, os; print(os.path.dirname(google.rpc.__path__[0]))')/rpc $(THIRD_PARTY)/google/
	find $(THIRD_PARTY) -type f ! -name '*.proto' -delete
	touch $@

$(PROTO_STAMP): $(PROTO_SRC) $(STAMP) $(THIRD_PARTY)/.copied
	rm -f $(PROTO_OUT)/*_pb2*.py $(PROTO_OUT)/*_pb2*.pyi
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m grpc_tools.protoc -Iprotos -I$(THIRD_PARTY) \
		--python_out=src --mypy_out=src \
		--grpc_python_out=src --mypy_grpc_out=src \
		$(PROTO_SRC)
	touch $@

proto: $(PROTO_STAMP)

lint: proto
	$(BIN)/ruff check src tests bench deploy
	$(BIN)/ruff format --check src tests bench deploy
	$(BIN)/mypy
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code protos
	$(BIN)/buf breaking protos --against protos/baseline.binpb
	$(BIN)/python deploy/check.py

fmt: proto
	$(BIN)/ruff check --fix src tests bench deploy
	$(BIN)/ruff format src tests bench deploy
	$(BIN)/buf format -w protos

# Refresh the breaking-change baseline: only on purpose, when a break is intended.
baseline: $(THIRD_PARTY)/.copied
	$(BIN)/buf build protos -o protos/baseline.binpb

# Debian's chromium and skopeo for the browser and OCI tests: installed when missing (as root
# on Debian, as CI runs), otherwise the tests that need them are skipped and say why.
system-deps:
	@sh tests/system-deps.sh

test: lint system-deps
	$(BIN)/pytest

run: proto
	$(BIN)/modelreg dev

bench: proto
	@$(BIN)/python -m bench.registry_bench

clean:
	rm -rf $(VENV) $(THIRD_PARTY) .modelreg .pytest_cache .mypy_cache .ruff_cache
	rm -f $(PROTO_OUT)/*_pb2*.py $(PROTO_OUT)/*_pb2*.pyi $(PROTO_STAMP)
