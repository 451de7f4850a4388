# navarch: `make up` brings a local control plane up; `make test` runs every test.
.DEFAULT_GOAL := help
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help up down status e2e node-stop node-start node-cut node-restore kill deps build release test unit lint fmt bench-api bench-scheduler bench-pod-startup bench-proxy bench-streams bench-rbac bench-job bench-hpa bench-quota fuzz logs images vagrant-lint vagrant-box vagrant-up vagrant-provision vagrant-smoke vagrant-down role-test

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

test: ## unit + integration tests (real etcd, real api-server), clippy and fmt, then vagrant-lint
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check
	$(MAKE) vagrant-lint

lint: ## clippy -D warnings and rustfmt --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

fmt: ## format the code
	$(CARGO) fmt --all

bench-api: ## api-server creates/s and p50/p99 secured (TLS, cert authn, RBAC, audit) beside minimal security and raw etcd puts, RSS, watch fan-out (release)
	$(CARGO) build --release -p api-server --bin api-server
	$(CARGO) run --release -p navarch-tests --bin bench-api -- $(ARGS)

bench-scheduler: ## scheduler_perf's five shapes at 5,000 fake nodes: pods/s, create-to-bound p50/p99, beside the create ceiling (release)
	$(CARGO) build --release -p api-server --bin api-server -p scheduler --bin scheduler
	$(CARGO) run --release -p navarch-tests --bin bench-scheduler -- $(ARGS)

bench-pod-startup: ## pod start-up latency on one real node (100 pods at 5/s, then at once) beside bare ctr run (release, root)
	$(CARGO) build --release --workspace --bins
	$(CARGO) run --release -p navarch-tests --bin bench-pod-startup -- $(ARGS)

bench-streams: ## kubectl exec latency beside ctr task exec, port-forward throughput beside the pod IP (release, root)
	$(CARGO) build --release --workspace --bins
	$(CARGO) run --release -p navarch-tests --bin bench-streams -- $(ARGS)

bench-proxy: ## kube-proxy: full sync of 10,000 Services x 5 endpoints, change-to-live p50/p99, rules touched (release, root)
	$(CARGO) build --release --workspace --bins
	$(CARGO) run --release -p navarch-tests --bin bench-proxy -- $(ARGS)

bench-job: ## a 200-completion Job (parallelism 20) on the running make up cluster beside the same pods created directly (release)
	$(CARGO) build --release -p navarch-tests --bin bench-job
	target/release/bench-job $(ARGS)

fuzz: ## mutation fuzzing of bearer-token and client-certificate parsing, SECONDS=600 per target (release; 30 min by default)
	$(CARGO) run --release -p api-server --bin fuzz -- --seconds $(or $(SECONDS),600) $(ARGS)

bench-hpa: ## the HorizontalPodAutoscaler's reaction (load start to new replica Ready) on the running make up cluster beside the metrics period and the pod start time (release)
	$(CARGO) build --release -p navarch-tests --bin bench-hpa
	target/release/bench-hpa $(ARGS)

bench-quota: ## api-server create p50/p99 with 10 ResourceQuotas in the namespace beside none (release)
	$(CARGO) run --release -p navarch-tests --bin bench-api -- --quota-only 5000 $(ARGS)

bench-rbac: ## RBAC decision p50/p99 (allowed, denied, under binding churn) with 10,000 RoleBindings beside 10 (release)
	$(CARGO) run --release -p api-server --bin bench-rbac -- $(ARGS)

images: ## offline test images (busybox, serve-hostname) as OCI layouts in .navarch/images
	@scripts/images.sh build .navarch/images

logs: ## follow the component logs of `make up`
	@tail -n 20 -F .navarch/logs/*.log

# --- the multi-VM cluster (issue 8): vagrant/Vagrantfile + ansible/ -----------------------------------
ANSIBLE_ENV := ANSIBLE_CONFIG=$(CURDIR)/ansible/ansible.cfg
VAGRANT_INVENTORY := ansible/inventory/vagrant.ini
VAGRANT_MASTER := 192.168.56.11
# The admin's kubeconfig (TLS, client certificate), copied here from the master by the play.
VAGRANT_KUBECONFIG := $(CURDIR)/.navarch/vagrant/admin.kubeconfig
VAGRANT_PLAY = $(ANSIBLE_ENV) ansible-playbook -i $(VAGRANT_INVENTORY) ansible/site.yml -e navarch_local_kubeconfig=$(VAGRANT_KUBECONFIG)
# The box: navarch/bookworm64 when `make vagrant-box` has built it, else the public debian/bookworm64.
NAVARCH_BOX ?= $(shell vagrant box list 2>/dev/null | awk '$$1 == "navarch/bookworm64" {print $$1; exit}' | grep . || echo debian/bookworm64)
# Plain QEMU emulation unless the kernel offers real KVM (kvm_intel or kvm_amd; kvm-pvm does not count).
NAVARCH_QEMU_TCG ?= $(if $(wildcard /sys/module/kvm_intel /sys/module/kvm_amd),0,1)
VAGRANT_ENV = NAVARCH_BOX=$(NAVARCH_BOX) NAVARCH_QEMU_TCG=$(NAVARCH_QEMU_TCG)

vagrant-lint: ## syntax check + config check of ansible/ against both inventories, ansible-lint, vagrant validate
	@for t in ansible-playbook ansible-lint vagrant; do command -v $$t >/dev/null || \
	  { echo "vagrant-lint: $$t not found (make deps, or apt-get install ansible ansible-lint vagrant)" >&2; exit 1; }; done
	@set -eo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for inv in ansible/inventory/vagrant.ini ansible/inventory/example-bare-metal.ini; do \
	  echo "== $$inv: syntax check"; \
	  $(ANSIBLE_ENV) ansible-playbook --syntax-check -i $$inv ansible/site.yml ansible/check-config.yml; \
	  echo "== $$inv: rendering and checking deploy/config for every host"; \
	  $(ANSIBLE_ENV) ansible-playbook -i $$inv ansible/check-config.yml -e check_config_dir=$$tmp/$$(basename $$inv .ini) | tail -n +2 | grep -E 'PLAY RECAP|ok=|failed|FAILED|ERROR' ; \
	done
	@set -e; for d in ansible/tests/*/; do echo "== $$d: syntax check"; \
	  $(ANSIBLE_ENV) ansible-playbook --syntax-check -i $$d/hosts.ini $$d/converge.yml $$d/verify.yml >/dev/null; done
	@echo "== ansible-lint"; cd ansible && $(ANSIBLE_ENV) ansible-lint site.yml check-config.yml tests/*/converge.yml tests/*/verify.yml
	@echo "== vagrant validate"; cd vagrant && $(VAGRANT_ENV) vagrant validate

vagrant-box: ## build the Debian 12 box navarch/bookworm64 from Debian's mirror (mmdebstrap; no box catalogue needed)
	scripts/vagrant-box.sh .navarch/box

vagrant-up: release ## VMs (vagrant up) + provisioning (ansible-playbook site.yml) + test images into the master's registry
	@echo "vagrant-up: box $(NAVARCH_BOX), QEMU emulation (no KVM): $(NAVARCH_QEMU_TCG)"
	@if command -v libvirtd >/dev/null && ! virsh -c qemu:///system version >/dev/null 2>&1; then \
	  if [ -d /run/systemd/system ]; then echo "vagrant-up: libvirtd is not running: systemctl start libvirtd" >&2; exit 1; fi; \
	  echo "vagrant-up: starting virtlogd and libvirtd (no systemd on this machine)"; \
	  pgrep -x virtlogd >/dev/null || virtlogd -d; libvirtd -d; sleep 2; fi
	cd vagrant && $(VAGRANT_ENV) vagrant up
	$(VAGRANT_PLAY)
	scripts/images.sh build .navarch/images
	scripts/images.sh push .navarch/images $(VAGRANT_MASTER):5000
	@echo "navctl on this host: navctl --kubeconfig $(VAGRANT_KUBECONFIG) get nodes (or export NAVCTL_KUBECONFIG=$(VAGRANT_KUBECONFIG))"

vagrant-provision: ## run ansible/site.yml against the running VMs again (a second run reports changed=0)
	$(VAGRANT_PLAY)

vagrant-smoke: release ## the smoke test from this host against the VM cluster (e2e --vagrant: nodes, Deployment, Service, DNS, NodePort, logs, exec, VM failover)
	$(VAGRANT_ENV) NAVCTL_KUBECONFIG=$(VAGRANT_KUBECONFIG) NAVCTL_SERVER=$(VAGRANT_MASTER):6443 target/release/e2e --vagrant

role-test: release ## per-role tests of ansible/ in systemd-nspawn containers (molecule-style: converge, idempotence, verify); needs make vagrant-box's rootfs.tar
	ansible/tests/roles.sh $(ARGS)

vagrant-down: ## destroy the VMs (disks and libvirt networks go with them) and the box's copy in libvirt's pool (KEEP_BOX_VOLUME=1 keeps it)
	cd vagrant && $(VAGRANT_ENV) vagrant destroy -f
	rm -f $(VAGRANT_KUBECONFIG)
	@if [ "$(KEEP_BOX_VOLUME)" != 1 ] && command -v virsh >/dev/null && virsh -c qemu:///system pool-info default >/dev/null 2>&1; then \
	  for v in $$(virsh -c qemu:///system vol-list default | awk '$$1 ~ /^$(subst /,-VAGRANTSLASH-,$(NAVARCH_BOX))_vagrant_box_image_/ {print $$1}'); do \
	    virsh -c qemu:///system vol-delete --pool default $$v >/dev/null && echo "vagrant-down: removed the box volume $$v"; done; fi
