# llm-from-scratch: the two commands of the README, and their parts.
#
#   make lab    set up (once), then JupyterLab on notebooks/ with the project's Rust kernel
#   make test   set up (once), then cargo test, the Python-side tests, and every notebook headless
#
# Set-up installs into ~/.cache/llm-from-scratch (override with LLM_FS_HOME); see README.md.

SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c

# Tests and CI read the book's data files from a local folder instead of downloading them:
# ../shared/data when it exists, unless LLM_DATA_DIR is set already.
LLM_DATA_DIR ?= $(if $(wildcard ../shared/data/the-verdict.txt),$(abspath ../shared/data),)
export LLM_DATA_DIR

# Lab options: HEADLESS=1 (no browser; print the URL), LAB_PORT, LAB_ARGS (passed to jupyter lab),
# LAB_LANG=zh_CN (the lab in Chinese; unset: the system locale's language if Chinese, else English).
HEADLESS ?=
LAB_LANG ?=
LAB_PORT ?= 8888
LAB_ARGS ?=

.PHONY: setup lab test test-rust test-python notebooks update-notebooks build

setup:
	scripts/setup.sh all

build: setup
	source scripts/env.sh
	cargo build --release --bin llm

lab: setup
	HEADLESS="$(HEADLESS)" LAB_PORT="$(LAB_PORT)" LAB_LANG="$(LAB_LANG)" scripts/lab.sh $(LAB_ARGS)

test: setup
	scripts/test.sh

test-rust:
	source scripts/env.sh
	cargo test

test-python:
	source scripts/env.sh
	python -m pytest -q tests/python

notebooks:
	source scripts/env.sh
	LLM_QUICK=$${LLM_QUICK:-1} python scripts/run_notebooks.py

# Re-execute every notebook (learner's setup unless LLM_QUICK=1) and save the outputs into the
# committed notebooks.
update-notebooks:
	source scripts/env.sh
	python scripts/run_notebooks.py --update
