# Two commands on a fresh machine: `make demo` (train -> convert -> evaluate -> infer on the
# embedded synthetic dataset) and `make test` (both test environments). Each builds what it needs.
PYTHON ?= python3
VENV ?= .venv
EDGE_VENV ?= .venv-edge
SHARED ?= ../shared
DEMO ?= demo
PIP_FLAGS ?= -q --disable-pip-version-check

.PHONY: demo test test-edge test-full weights clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[train,edge,dev]"
	touch $@

# The TensorFlow-free environment a device gets: only the edge extra (+ test tools).
$(EDGE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(EDGE_VENV)/bin/pip install $(PIP_FLAGS) -e ".[edge,dev]"
	touch $@

# ImageNet MobileNetV2 weights where Keras looks (offline); without ../shared, random init is used.
weights:
	@if [ -f $(SHARED)/tools/provision-weights.sh ]; then bash $(SHARED)/tools/provision-weights.sh; \
	else echo "$(SHARED) not found: ImageNet weights not provisioned (tests fall back to random init)"; fi

test: test-edge test-full

test-edge: $(EDGE_VENV)/.installed
	@$(EDGE_VENV)/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is not None)" \
		|| { echo "TensorFlow is importable in $(EDGE_VENV): the edge environment is not TensorFlow-free"; exit 1; }
	@echo "== edge environment (no TensorFlow) =="
	$(EDGE_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_imaging.py tests/test_edge_classifier.py tests/test_edge_cli.py tests/test_data.py tests/test_config.py tests/test_metrics.py tests/test_synthetic.py

test-full: $(VENV)/.installed weights
	@echo "== full environment (train + edge) =="
	$(VENV)/bin/python -m pytest -q

demo: $(VENV)/.installed weights
	@[ -d $(DEMO)/data ] || $(VENV)/bin/artery-edge synth --out $(DEMO)/data --count 300 --size 64
	$(VENV)/bin/artery-edge train $(DEMO)/data --output-dir $(DEMO)/models --log-dir $(DEMO)/tensorboard \
		--image-size 64 --alpha 0.35 --weights $$( [ -f $(SHARED)/weights/mobilenet_v2_0.35_224_no_top.h5 ] && echo imagenet || echo none ) \
		--learning-rate 3e-3 --epochs 8 --fine-tune-epochs 2 --fine-tune-learning-rate 1e-4 --batch-size 32
	@run=$$(ls -td $(DEMO)/models/*/ | head -1); \
	$(VENV)/bin/artery-edge convert $$run --quantize all --force && \
	$(VENV)/bin/artery-edge evaluate --run $$run && \
	$(VENV)/bin/artery-edge infer --model $$run/model_int8.tflite --image $(DEMO)/data/Unhealthy/synth-00000.png --image $(DEMO)/data/Healthy/synth-00000.png && \
	$(VENV)/bin/artery-edge benchmark --model $$run/model_float32.tflite --model $$run/model_float16.tflite --model $$run/model_int8.tflite && \
	echo "demo run: $$run (plots: history.png, samples*.png, evaluation/)"

clean:
	rm -rf $(VENV) $(EDGE_VENV) $(DEMO) .pytest_cache
