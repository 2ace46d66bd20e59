PY ?= .venv/bin/python
VENV ?= .venv

.PHONY: install test test-aiven lint typecheck contracts unit integration demo bench bench-scale clean sbom dry-build lock lock-check image image-smoke image-check image-reproducible

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements-dev.lock
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $@

lint: install
	$(VENV)/bin/ruff check src tests hack benchmarks

# mypy cannot follow setuptools' package-dir mapping (aivenator -> src), so it reads the package
# through a link made here.
typecheck: install
	mkdir -p .typecheck && ln -sfn ../src .typecheck/aivenator
	$(VENV)/bin/mypy

contracts: install
	$(VENV)/bin/lint-imports

unit: install
	$(VENV)/bin/pytest tests/unit -q

integration: install
	$(VENV)/bin/pytest tests/integration -q

# The README's test command: static checks, import contracts, then every test tier
# (unit, fully faked integration, and the real kube-apiserver tier).
test: lint typecheck contracts
	$(VENV)/bin/pytest -q

# The Aiven adapter's contract suite against a real Aiven project (README: Real-Aiven conformance
# tier). Needs AIVEN_TOKEN, AIVEN_TEST_PROJECT, AIVEN_TEST_KAFKA, AIVEN_TEST_OPENSEARCH and
# AIVEN_TEST_VALKEY; exits 2 naming whichever is missing.
test-aiven: install
	$(PY) -m tests.integration.aiven_target

demo: install
	$(VENV)/bin/aivenator demo

bench: install
	$(VENV)/bin/python -m benchmarks.bench

# The 10k-application scale run (operator in its own process against the real kube-apiserver + etcd).
# The operator runs from the install the image makes (dry-build: wheel + requirements.lock into a
# fresh venv), so its memory is the shipped one's: the dev venv also holds import-linter's click
# and rich, which httpx then imports for its CLI (about 12 MiB more).
bench-scale: install
	chmod -R u+w out/runtime 2>/dev/null; rm -rf out/runtime
	AIVENATOR_DRY_BUILD_DIR=$(CURDIR)/out/runtime bash hack/dry-build.sh
	$(VENV)/bin/python -m benchmarks.scale --operator $(CURDIR)/out/runtime/venv/bin/aivenator

# CycloneDX SBOM of the locked runtime dependency set (out/sbom.cdx.json), validated.
sbom: install
	bash hack/sbom.sh

# The image's install steps without a container engine: wheel into a fresh venv from requirements.lock.
dry-build: install
	bash hack/dry-build.sh

# The container image without a daemon (root; Debian's mmdebstrap + umoci + skopeo, installed by
# hack/image/deps.sh): out/image/oci (OCI layout), out/image/aivenator-<version>.docker.tar
# (`docker load`), out/image/sbom.cdx.json (CycloneDX of the image, validated); prints the digest.
image: install
	bash hack/image/deps.sh
	bash hack/image/build.sh

# Runs the built image with runc: --help, user/read-only root, the demo, and `aivenator run`
# converging an app on a real kube-apiserver with the simulator from the image.
image-smoke: install
	bash hack/image/deps.sh
	$(VENV)/bin/python hack/image/smoke.py

# Both, as CI runs them.
image-check: image image-smoke

# Builds the image twice and compares the digests (lists differing files if they differ).
image-reproducible: install
	bash hack/image/deps.sh
	bash hack/image/reproducible.sh

lock: install
	$(VENV)/bin/python hack/runtime-lock.py

lock-check: install
	$(VENV)/bin/python hack/runtime-lock.py --check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
