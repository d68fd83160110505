# Connectors — see README.md. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build
export GOTOOLCHAIN := local

KUBE_VERSION   := v1.37.2
TOOLS_DIR      := $(CURDIR)/bin/tools
CONTROLLER_GEN := $(TOOLS_DIR)/controller-gen
GOLANGCI_LINT  := $(TOOLS_DIR)/golangci-lint
VERSION        ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
GO_TEST_FLAGS  ?= -race
# The test bed finds kube-apiserver, etcd, kubectl and helm here, and the
# real node's binaries there.
export CONNECTORS_TEST_BINS := $(CURDIR)/bin/k8s/$(KUBE_VERSION)
export CONNECTORS_NODE_BINS := $(CURDIR)/bin/node/$(KUBE_VERSION)

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/connectors (static: the image has no C library).
	CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/connectors-io/connectors/internal/version.version=$(VERSION)" \
		-o bin/connectors ./cmd/connectors

$(CONTROLLER_GEN): hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && go build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(GOLANGCI_LINT): hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && go build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy code and the CRDs in chart/crds.
	CONTROLLER_GEN=$(CONTROLLER_GEN) hack/generate.sh .

# govulncheck (pinned in hack/tools/vulncheck) reads a vulnerability database
# built offline from the golang.org/x/vulndb module at VULNDB_VERSION (the Go
# module proxy serves it; vuln.go.dev is not needed) by hack/tools/vulncheck/vulndb,
# once, into a cache outside the tree keyed by that version and the
# generator's source. Bump VULNDB_VERSION to a newer pseudo-version of
# golang.org/x/vulndb for newer entries. Building one removes the others built
# more than 14 days ago.
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB_CACHE   ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/connectors
VULNDB_DIR     := $(VULNDB_CACHE)/vulndb-$(VULNDB_VERSION)-$(shell sha256sum hack/tools/vulncheck/vulndb/main.go | cut -c1-8)
GOVULNCHECK    := $(TOOLS_DIR)/govulncheck
VULNCHECK_GATE := $(TOOLS_DIR)/vulncheck-gate
# Source mode (call graph) over the packages that ship: not tests, no tags.
# The gate fails on every vulnerability the code calls but those listed,
# with a reason, in hack/tools/vulncheck/accepted.txt (docs/security.md).
VULNCHECK      := $(GOVULNCHECK) -db file://$(VULNDB_DIR) -format json ./... | $(VULNCHECK_GATE) -accepted hack/tools/vulncheck/accepted.txt

$(GOVULNCHECK): hack/tools/vulncheck/go.mod hack/tools/vulncheck/go.sum
	cd hack/tools/vulncheck && go build -o $@ golang.org/x/vuln/cmd/govulncheck

$(VULNCHECK_GATE): hack/tools/vulncheck/go.mod $(wildcard hack/tools/vulncheck/gate/*.go)
	cd hack/tools/vulncheck && go build -o $@ ./gate

$(VULNDB_DIR)/index/db.json:
	cd hack/tools/vulncheck && go run ./vulndb -version $(VULNDB_VERSION) -o $(VULNDB_DIR)
	find $(VULNDB_CACHE) -mindepth 1 -maxdepth 1 \( -name 'vulndb-*' -o -name '.vulndb-*' \) ! -path $(VULNDB_DIR) -mtime +14 -exec rm -rf {} +

.PHONY: vulncheck
vulncheck: $(GOVULNCHECK) $(VULNCHECK_GATE) $(VULNDB_DIR)/index/db.json ## Fail on known vulnerabilities our code reaches and does not accept (govulncheck, offline database; also in verify).
	$(VULNCHECK)

.PHONY: verify
verify: $(CONTROLLER_GEN) $(GOLANGCI_LINT) $(GOVULNCHECK) $(VULNCHECK_GATE) $(VULNDB_DIR)/index/db.json ## Fail on stale generated code, gofmt, go vet, lint, untidy modules or known vulnerabilities our code reaches.
	CONTROLLER_GEN=$(CONTROLLER_GEN) hack/verify-generated.sh
	@out="$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go'))"; \
		if [[ -n "$$out" ]]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	go mod tidy -diff
	go -C hack/tools/vulncheck mod tidy -diff
	go vet -tags integration,e2e ./...
	go -C hack/tools/vulncheck vet ./...
	go -C hack/tools/vulncheck test ./...
	$(GOLANGCI_LINT) run ./...
	$(VULNCHECK)

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

IMAGE     ?= ghcr.io/connectors-io/connectors
IMAGE_TAG ?= $(VERSION)

.PHONY: image
image: build ## Build the image (no Docker daemon) into bin/connectors-image.tar; load it into the real node when it is up.
	go run ./hack/image -binary bin/connectors -ref $(IMAGE):$(IMAGE_TAG) -version $(VERSION) \
		-revision $$(git rev-parse HEAD 2>/dev/null || true) -o bin/connectors-image.tar
	@if [[ $$(id -u) == 0 ]] && hack/realnode.sh status 2>/dev/null | grep -q '^containerd .*running'; then \
		hack/realnode.sh import bin/connectors-image.tar && echo "loaded into the real node"; fi

.PHONY: demo demo-dev
demo: test-bins node-bins image ## Walk the quick start on a real node installed with helm, then tear it down (root).
	IMAGE=$(IMAGE) IMAGE_TAG=$(IMAGE_TAG) hack/demo.sh
demo-dev: build ## Walk the quick start on a local control plane (connectors dev + kubectl; no root).
	hack/demo-dev.sh

.PHONY: bench bench-quick
bench: test-bins build ## Measure every loadtest scenario against direct, gateway, nginx and squid; rewrite docs/benchmarks.md's generated part.
	BENCH_DOC=$(CURDIR)/docs/benchmarks.md hack/bench.sh
bench-quick: test-bins build ## The same in under a minute (warm and connect); the last line has the warm ratios.
	QUICK=1 hack/bench.sh

.PHONY: test-bins
test-bins: ## Build (once, cached outside the tree) etcd, kube-apiserver, kubectl and helm.
	hack/test-bins.sh >/dev/null

.PHONY: tool-bins
tool-bins: ## Install (once, cached outside the tree) the class tests' servers and clients that Debian lacks (verdaccio, distribution registry, crane).
	hack/tool-bins.sh >/dev/null

.PHONY: node-bins
node-bins: ## Build (once, cached outside the tree) the real node's kubelet & co., crictl, CoreDNS, pause.
	hack/node-bins.sh >/dev/null

.PHONY: realnode-up realnode-down
realnode-up: test-bins node-bins ## Start the real single-node cluster (root; hack/realnode.sh).
	hack/realnode.sh up
realnode-down: ## Stop the real node and clean the host.
	hack/realnode.sh down

# Build tags of the test tiers: unit tests have none and need nothing
# external; integration tests need the test bed (kube-apiserver + etcd,
# redis-server, kubectl, helm); e2e tests run the built binary.
TEST_ENV := CONNECTORS_BIN=$(CURDIR)/bin/connectors CONNECTORS_IMAGE=$(CURDIR)/bin/connectors-image.tar

.PHONY: test-unit
test-unit: ## Run the unit tests (no test bed, no binary).
	go test $(GO_TEST_FLAGS) -count=1 ./...

.PHONY: test-integration
test-integration: test-bins tool-bins ## Run the unit and integration tests against a real apiserver and redis-server.
	go test $(GO_TEST_FLAGS) -count=1 -tags integration $$(go list ./... | grep -v /test/e2e)

.PHONY: test-e2e
test-e2e: test-bins node-bins build image ## Run the end-to-end tests: the binary as a user runs it, on a real node (root).
	$(TEST_ENV) go test $(GO_TEST_FLAGS) -count=1 -timeout 40m -tags e2e ./test/e2e/...

.PHONY: test
test: test-bins node-bins tool-bins build image ## Run every test: unit, integration and e2e (one go test run; root for the real node).
	$(TEST_ENV) go test $(GO_TEST_FLAGS) -count=1 -timeout 40m -tags integration,e2e ./...

# The fuzz targets (go test -fuzz; seed corpora in testdata/fuzz, replayed
# by every go test run).
FUZZ_TARGETS := ./gateway:FuzzProxyAuthorization ./gateway:FuzzConnectTarget ./csi:FuzzVolumeAttributes ./render/sandbox:FuzzHostileTemplate
FUZZ_TIME    ?= 10m

.PHONY: test-long
test-long: ## Fuzz every target for FUZZ_TIME (10m) each; new failing inputs land in the package's testdata/fuzz.
	for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZ_TIME))"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZ_TIME) $$pkg || exit 1; \
	done

.PHONY: clean
clean: ## Remove bin/ (the cached test-bed binaries outside the tree stay).
	rm -rf bin
