# One-command set-up: every target that needs the environment builds it first (scripts/install_env.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
PROMPT ?= a person walks forward, then waves with the right hand
OUT ?= out/demo
STAMP := $(VENV)/.installed

.PHONY: env test test-fast lint demo bench clean

$(STAMP): pyproject.toml scripts/install_env.sh
	bash scripts/install_env.sh $(VENV)
	touch $(STAMP)

env: $(STAMP)

# The whole suite on two pytest-xdist workers (one test file per worker): 11 min on the 2-core machine, 16 min in one
# process (most of the slow tests wait on Blender or Ray subprocesses, so two workers overlap them).
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

# The developer loop: everything but the tests marked slow (starter-model quality, renders, real-Blender
# end-to-end runs), on two workers (pytest-xdist; one test file per worker): under 90 s on the 2-core machine
# (55 s; 84-99 s in one process on the AMD EPYC VM).
test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow" -n 2 --dist loadfile

# pyflakes-level checks (unused and undefined names, syntax errors); CI runs it before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

demo: $(STAMP)
	$(VENV)/bin/remomask demo "$(PROMPT)" --out $(OUT)

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) out build dist

# The installable Blender extension zip (dist/remomask-<version>.zip), built and validated with Blender's own CLI.
.PHONY: extension
extension: $(STAMP)
	$(PY) scripts/build_extension.py --out dist

# The add-on's Blender tests (-m "blender and not slow") under bpy 4.2 LTS and 5.0 (4.5 LTS is the main run), each in
# its own venv (.venv-bpy-<version>, made once). CI runs it after `make test`.
.PHONY: test-blender-versions
test-blender-versions:
	bash scripts/test_blender_versions.sh
