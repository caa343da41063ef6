# Two commands on a fresh machine: `make demo` (train -> convert -> evaluate -> infer on the
# embedded synthetic dataset) and `make test` (both test environments). Each builds what it needs.
PYTHON ?= python3
VENV ?= .venv
EDGE_VENV ?= .venv-edge
SHARED ?= ../shared
DEMO ?= demo
# synthetic images per class in the demo's dataset
DEMO_COUNT ?= 1500
# e.g. 0.8: the demo fails when less of the Grad-CAM heat sits on the narrowings
GRADCAM_MIN ?=
PIP_FLAGS ?= -q --disable-pip-version-check

.PHONY: demo test test-edge test-full test-install weights clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[train,edge,quantize,serve,dicom,dev]"
	touch $@

# The TensorFlow-free environment a device gets: the edge, serve and dicom extras (+ test tools).
$(EDGE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(EDGE_VENV)/bin/pip install $(PIP_FLAGS) -e ".[edge,serve,dicom,dev]"
	touch $@

# ImageNet MobileNetV2 weights where Keras looks first (offline copies from ../shared when it exists);
# elsewhere Keras downloads them on first use.
weights:
	@if [ -f $(SHARED)/tools/provision-weights.sh ]; then bash $(SHARED)/tools/provision-weights.sh; \
	else echo "$(SHARED) not found: ImageNet weights come from Keras' cache or its download"; fi

test: test-edge test-install test-full

# The TensorFlow-free tests: all but those marked `tf` (tests/conftest.py marks every test module
# that skips without the train extra).
test-edge: $(EDGE_VENV)/.installed
	@$(EDGE_VENV)/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is not None)" \
		|| { echo "TensorFlow is importable in $(EDGE_VENV): the edge environment is not TensorFlow-free"; exit 1; }
	@echo "== edge environment (no TensorFlow) =="
	$(EDGE_VENV)/bin/python -m pytest -q -p no:cacheprovider -m "not tf" --durations=10

# What a device gets from `pip install "artery-edge[edge]"`: a real (not editable) install in a
# fresh venv, run from another folder, classifies an image with the packaged reference model and
# scans it with the packaged whole-frame model.
INSTALL_VENV ?= .venv-install
test-install:
	rm -rf $(INSTALL_VENV)
	$(PYTHON) -m venv $(INSTALL_VENV)
	$(INSTALL_VENV)/bin/pip install $(PIP_FLAGS) ".[edge]"
	@cd /tmp && $(CURDIR)/$(INSTALL_VENV)/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is not None)" \
		|| { echo "TensorFlow came with the edge extra"; exit 1; }
	@cd /tmp && $(CURDIR)/$(INSTALL_VENV)/bin/python -c "import numpy as np; from PIL import Image; Image.fromarray(np.full((64, 64), 128, np.uint8)).save('/tmp/artery-edge-install-check.png')"
	@cd /tmp && $(CURDIR)/$(INSTALL_VENV)/bin/artery-edge infer --image /tmp/artery-edge-install-check.png --json > /tmp/artery-edge-install-check.json
	@$(CURDIR)/$(INSTALL_VENV)/bin/python -c "import json; r = json.load(open('/tmp/artery-edge-install-check.json')); \
		assert 'site-packages' in r['model'] and r['results'][0]['label'], r; print('fresh edge install classifies with', r['model'])"
	@cd /tmp && $(CURDIR)/$(INSTALL_VENV)/bin/artery-edge scan /tmp/artery-edge-install-check.png --json > /tmp/artery-edge-install-check.json
	@$(CURDIR)/$(INSTALL_VENV)/bin/python -c "import json; r = json.load(open('/tmp/artery-edge-install-check.json')); \
		assert 'site-packages' in r['model'] and r['results'][0]['lesions'] is not None, r; print('and scans whole frames with', r['model'])"
	rm -rf $(INSTALL_VENV)

# The tests that need TensorFlow; the others ran in test-edge already. They spend most of their
# time on one core (graph tracing, SavedModel export, conversion), so TEST_WORKERS processes
# (pytest-xdist, a whole test file per process: its module fixtures are built once) share the machine.
# The suite's tiny runs start from $(SHARED)/weights where it has them, else from scratch (a fresh
# clone; CI checks that setting with SHARED=/nonexistent): tests/conftest.py, ARTERY_EDGE_TEST_WEIGHTS.
TEST_WORKERS ?= 2
test-full: $(VENV)/.installed weights
	@echo "== full environment (train + edge): the tests marked tf, on $(TEST_WORKERS) processes =="
	ARTERY_EDGE_TEST_WEIGHTS=$(SHARED)/weights $(VENV)/bin/python -m pytest -q -m tf -n $(TEST_WORKERS) \
		--dist loadfile --durations=15

# ImageNet weights when they can be had (cache or download), else the from-scratch recipe
# (--weights none trains the whole network). One recipe serves both on the synthetic set.
demo: $(VENV)/.installed weights
	@[ -d $(DEMO)/data ] || $(VENV)/bin/artery-edge synth --out $(DEMO)/data --count $(DEMO_COUNT) --size 64
	@weights=$$($(VENV)/bin/python -c "from artery_edge.trainer.model import imagenet_weights_available as ok; print('imagenet' if ok(0.35, 64) else 'none')" 2>/dev/null | tail -n 1); \
	echo "demo: --weights $$weights"; \
	$(VENV)/bin/artery-edge train $(DEMO)/data --output-dir $(DEMO)/models --log-dir $(DEMO)/tensorboard \
		--image-size 64 --alpha 0.35 --weights $$weights --batch-size 32 --patience 10 \
		--learning-rate 3e-3 --epochs 12 --fine-tune-epochs 3 --fine-tune-learning-rate 1e-4
	@run=$$(ls -td $(DEMO)/models/*/ | head -1); run=$${run%/}; \
	held_out=$$(awk -F, '$$3 ~ /^test/ && NR % 40 == 0 {printf " --image $(DEMO)/data/%s", $$1}' $$run/split.csv); \
	$(VENV)/bin/artery-edge convert $$run --quantize all && \
	device=$$($(VENV)/bin/python -c "from artery_edge.edge.precisions import DEVICE_DEFAULT as d; print(d.file('$$run'))") && \
	models=$$($(VENV)/bin/python -c "from artery_edge.edge.precisions import model_files; print(' '.join('--model ' + str(f) for f in model_files('$$run')))") && \
	$(VENV)/bin/artery-edge evaluate --run $$run && \
	echo "== the device model, and where its quantization loses precision ==" && \
	$(VENV)/bin/artery-edge inspect $$device && \
	$(VENV)/bin/artery-edge inspect $$device --report && \
	echo "== held-out test images through the device model (its stored threshold) ==" && \
	$(VENV)/bin/artery-edge infer --model $$device $$held_out && \
	echo "== Grad-CAM: where the Keras model looks ==" && \
	$(VENV)/bin/artery-edge explain --run $$run $$held_out && \
	{ [ ! -f $(DEMO)/data/narrowings.csv ] || $(VENV)/bin/python studies/gradcam_localisation.py --run $$run --data $(DEMO)/data $(if $(GRADCAM_MIN),--min $(GRADCAM_MIN)); } && \
	$(VENV)/bin/artery-edge benchmark $$models && \
	echo "demo run: $$run (plots: history.png, samples*.png, evaluation/ with MODEL_CARD.md, explain/)"

clean:
	rm -rf $(VENV) $(EDGE_VENV) $(DEMO) .pytest_cache
