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
# The test bed finds kube-apiserver, etcd, kubectl and helm here.
export CONNECTORS_TEST_BINS := $(CURDIR)/bin/k8s/$(KUBE_VERSION)

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/connectors.
	go build -ldflags "-X github.com/connectors-io/connectors/internal/version.version=$(VERSION)" \
		-o bin/connectors ./cmd/connectors

$(CONTROLLER_GEN): hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && go build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(GOLANGCI_LINT): hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && go build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy code and the CRDs in chart/crds.
	CONTROLLER_GEN=$(CONTROLLER_GEN) hack/generate.sh .

.PHONY: verify
verify: $(CONTROLLER_GEN) $(GOLANGCI_LINT) ## Fail on stale generated code, gofmt, go vet, lint or untidy modules.
	CONTROLLER_GEN=$(CONTROLLER_GEN) hack/verify-generated.sh
	@out="$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go'))"; \
		if [[ -n "$$out" ]]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	go mod tidy -diff
	go vet ./...
	$(GOLANGCI_LINT) run ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: demo
demo: build ## Walk the quick start on a local control plane (connectors dev + kubectl).
	hack/demo.sh

.PHONY: test-bins
test-bins: ## Build (once, cached outside the tree) etcd, kube-apiserver, kubectl and helm.
	hack/test-bins.sh >/dev/null

.PHONY: test
test: test-bins build ## Run unit, integration and e2e tests against a real apiserver and redis-server.
	CONNECTORS_BIN=$(CURDIR)/bin/connectors go test $(GO_TEST_FLAGS) -count=1 ./...

.PHONY: clean
clean: ## Remove bin/ (the cached test-bed binaries outside the tree stay).
	rm -rf bin
