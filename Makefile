# The two commands of the README. Both set everything up first, so they work on a fresh machine.
.PHONY: demo test test-fast lint setup setup-dev

demo: setup
	HF_HUB_OFFLINE=1 .venv/bin/textshift demo

test: setup-dev
	HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q --timeout=900

# Lint with the rules in pyproject.toml ([tool.ruff.lint]); CI runs it before the tests.
lint: setup-dev
	.venv/bin/ruff check src tests bench

# Everything but the real-backbone integration tests (for quick local runs).
test-fast: setup-dev
	HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q -m "not slow"

setup:
	bash scripts/setup.sh

setup-dev:
	bash scripts/setup.sh --dev
