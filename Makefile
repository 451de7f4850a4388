# navarch: `make up` brings a local control plane up; `make test` runs every test.
.DEFAULT_GOAL := help
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help up down status e2e node-stop node-start node-cut node-restore kill deps build release test unit lint fmt bench-api bench-scheduler bench-pod-startup bench-proxy logs images

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

up: ## a local cluster: control plane + NODES=2 worker nodes (network namespaces), navctl configured
	@scripts/cluster.sh up

down: ## stop everything `make up` started (PURGE=1 also removes state)
	@scripts/cluster.sh down

status: ## show what runs and how healthy it is
	@scripts/cluster.sh status

e2e: ## the end-to-end suite against the running `make up` cluster (ARGS="--only 3,5" for some scenarios)
	$(CARGO) build --release -p navarch-tests --bin e2e
	target/release/e2e $(ARGS)

node-stop: ## stop node NODE's kubelet (its containers keep running)
	@scripts/cluster.sh node-stop

node-start: ## start node NODE's kubelet again
	@scripts/cluster.sh node-start

node-cut: ## cut node NODE's network link (from the control plane and the other nodes)
	@scripts/cluster.sh node-cut

node-restore: ## restore node NODE's link
	@scripts/cluster.sh node-restore

kill: ## SIGKILL component C (etcd, api-server, scheduler, controller-manager, kubelet-node-1, ...)
	@scripts/cluster.sh kill

deps: ## install the apt packages (only missing ones)
	@scripts/deps.sh

build: ## debug build of every crate and binary
	$(CARGO) build --workspace --bins

release: ## release binaries in target/release
	$(CARGO) build --release --workspace --bins

test: ## unit + integration tests (real etcd, real api-server), then clippy and fmt
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

lint: ## clippy -D warnings and rustfmt --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

fmt: ## format the code
	$(CARGO) fmt --all

bench-api: ## api-server create rate/latency beside raw etcd puts, RSS, watch fan-out (release)
	$(CARGO) build --release -p api-server --bin api-server
	$(CARGO) run --release -p navarch-tests --bin bench-api -- $(ARGS)

bench-scheduler: ## scheduler throughput and create-to-bound latency at 500 and 5,000 fake nodes (release)
	$(CARGO) build --release -p api-server --bin api-server -p scheduler --bin scheduler
	$(CARGO) run --release -p navarch-tests --bin bench-scheduler -- $(ARGS)

bench-pod-startup: ## pod start-up latency on one real node (100 pods at 5/s, then at once) beside bare ctr run (release, root)
	$(CARGO) build --release --workspace --bins
	$(CARGO) run --release -p navarch-tests --bin bench-pod-startup -- $(ARGS)

bench-proxy: ## kube-proxy: full sync of 10,000 Services x 5 endpoints, change-to-live p50/p99, rules touched (release, root)
	$(CARGO) build --release --workspace --bins
	$(CARGO) run --release -p navarch-tests --bin bench-proxy -- $(ARGS)

images: ## offline test images (busybox, serve-hostname) as OCI layouts in .navarch/images
	@scripts/images.sh build .navarch/images

logs: ## follow the component logs of `make up`
	@tail -n 20 -F .navarch/logs/*.log
