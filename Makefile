# The README's two commands, spelled out. Run inside a virtual environment.
PY ?= python3
# The CPU build of torch first: a plain "torch" requirement would pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: install install-test demo test check-demo check-test
install:
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e .

install-test:
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e .[test]

# Which system packages are missing (Debian/Ubuntu names): the demo stops without them, tests skip.
check-demo check-test:
	@python3 .ci/check_system $(@:check-%=%)

demo: check-demo install
	immersions demo

test: check-test install-test
	$(PY) -m pytest -q tests
