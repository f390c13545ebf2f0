# Coffer — the two commands: `make run` and `make test`.
GO ?= go

.PHONY: run build test test-short fuzz bench vet

run: ## start Coffer with no configuration (SQLite + files in ./coffer-data, 127.0.0.1:8080)
	$(GO) run ./cmd/coffer serve

build:
	CGO_ENABLED=0 $(GO) build -o bin/coffer ./cmd/coffer

test: ## every test: unit, integration, end-to-end with real clients
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...

test-short:
	$(GO) test -short -count=1 ./...

fuzz: ## run each fuzz target briefly
	./scripts/fuzz.sh 30s

bench:
	./bench/run.sh
