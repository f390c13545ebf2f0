# Coffer — the two commands: `make run` and `make test`.
GO ?= go
# The PostgreSQL tests create and drop their own databases here (trust auth
# on these machines); override it in the environment.
COFFER_TEST_PG_DSN ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export COFFER_TEST_PG_DSN

.PHONY: run build test test-short test-backends fuzz bench vet

run: ## start Coffer with no configuration (SQLite + files in ./coffer-data, 127.0.0.1:8080)
	$(GO) run ./cmd/coffer serve

build:
	CGO_ENABLED=0 $(GO) build -o bin/coffer ./cmd/coffer

test: ## every test: unit, integration, end-to-end with real clients
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...

# The app-level suites (every test built on internal/app/apptest) again on
# the other back-end combinations; sqlite+fs is `make test`. Needs
# COFFER_TEST_PG_DSN and versitygw (scripts/install-backend-tools.sh).
BACKEND_PKGS = ./internal/auth ./internal/format/... ./internal/gc ./internal/lifecycle ./internal/repo ./internal/server
test-backends:
	COFFER_TEST_BACKENDS=pg+fs $(GO) test -count=1 -timeout 10m $(BACKEND_PKGS)
	COFFER_TEST_BACKENDS=sqlite+s3 $(GO) test -count=1 -timeout 10m $(BACKEND_PKGS)
	COFFER_TEST_BACKENDS=pg+s3 $(GO) test -count=1 -timeout 10m $(BACKEND_PKGS)

test-short:
	$(GO) test -short -count=1 ./...

fuzz: ## run each fuzz target briefly
	./scripts/fuzz.sh 30s

bench:
	./bench/run.sh
