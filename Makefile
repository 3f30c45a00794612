# The README's two commands, spelled out.
PY ?= python3

.PHONY: setup demo test
setup:
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e .[test]

demo: setup
	immersions demo

test: setup
	$(PY) -m pytest -q tests
