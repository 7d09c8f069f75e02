# compound — developer and CI entry points.  `make help` lists the targets.
#
# Every target is idempotent and nearly free when there is nothing to do:
#   deps    one dpkg-query; apt-get runs only for missing packages
#   venv    pip runs only when pyproject.toml is newer than .venv/.installed
#   engine  one `docker version`
#   images  one `docker image inspect` per image (recipe label cache)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

# Debian 12 packages compound, its tests, images and benchmarks need.
#   docker.io iptables apparmor  Docker Engine (20.10) and what it needs at run time
#   busybox-static               local/busybox image, VM initramfs
#   mmdebstrap gpg mount         local/python image (Debian rootfs without a registry)
#   e2fsprogs cpio xz-utils zstd VM disk images (mkfs.ext4 -d) and initramfs
#   qemu-system-x86 qemu-utils   VM runtime, qemu-img
#   docker-compose wrk           benchmark peer (1.29) and HTTP load generator
#   python3 python3-venv         .venv (ensurepip) on a stock Debian python
#   ca-certificates procps make  https to PyPI, pgrep, make itself
#   curl                         the demo talks HTTP to the example
#   openssh-client               `compound host`: ssh, ssh-keygen (hosts are reached over SSH)
#   iproute2                     `host create --driver qemu`: the hosts' bridge and taps
#                                (mmdebstrap, e2fsprogs, qemu-utils build their disk; gcc
#                                and libc6-dev the static KVM probe, hosts/kvm-probe.c)
#   gcc bc flex bison libelf-dev compound's guest kernel (Debian's linux-source-6.1,
#                                built once per config): bc for the timer constants,
#                                flex/bison for Kconfig, libelf for objtool (no module
#                                signing or trusted keys, so no libssl-dev)
#   libc6-dev                    the guest's compound-enter (a static C helper that
#                                starts service processes with their capabilities)
#   chromium                     the dashboard's browser tests (Playwright drives
#                                Debian's build through executable_path; no
#                                `playwright install` download)
APT_PACKAGES := \
	docker.io iptables apparmor \
	busybox-static \
	mmdebstrap gpg mount \
	e2fsprogs cpio xz-utils zstd \
	qemu-system-x86 qemu-utils \
	docker-compose wrk \
	python3 python3-venv \
	ca-certificates procps make curl \
	openssh-client iproute2 \
	gcc bc flex bison libelf-dev libc6-dev \
	chromium \
	extlinux syslinux-common fdisk ntfs-3g dosfstools mtools
# extlinux, syslinux-common (mbr.bin), fdisk (sfdisk): the legacy test disk
# (images/legacy-disk.sh) and `compound export`; sfdisk also reads partition
# tables for `compound lift`; ntfs-3g (mkntfs): the Windows-disk lift test;
# dosfstools (mkfs.vfat), mtools (mcopy): the EFI system partition of the
# UEFI disk the legacy test boots through OVMF.

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH_ARGS ?=

export DEBIAN_FRONTEND := noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help deps venv engine images guest-kernel test demo bench lint clean

help:
	@echo "make deps     install missing Debian packages ($(words $(APT_PACKAGES)) listed in APT_PACKAGES)"
	@echo "make venv     create $(VENV) and pip install -e '.[dev,bench]' (again only when pyproject.toml changes)"
	@echo "make engine   start the Docker Engine unless it answers (scripts/ensure-engine.sh)"
	@echo "make images   build local/busybox:latest, local/python:3 and local/postgres:15 (images/build.sh all; cached)"
	@echo "make guest-kernel  build compound's guest kernel into the cache (minutes, once per config)"
	@echo "make test     deps venv engine images guest-kernel, then $(VENV)/bin/pytest \$$PYTEST_ARGS"
	@echo "make demo     deps venv engine images guest-kernel, then bash examples/demo.sh"
	@echo "make bench    deps venv engine images guest-kernel, then every benchmark (compose up/down, VM boot, placement, volume backup, rolling update, VM data plane, loader fuzzing)"
	@echo "make lint     ruff check, ruff format --check, mypy, lint-imports (the layer contract)"
	@echo "make clean    remove $(VENV) (images and caches stay)"

deps:
	@bash scripts/install-deps.sh $(APT_PACKAGES)

venv: $(VENV_STAMP)
	@:

# Order-only on deps: deps must have run (python3-venv), but is no reason to reinstall.
$(VENV_STAMP): pyproject.toml | deps
	@if ! $(VENV)/bin/python -c '' >/dev/null 2>&1; then \
	  $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "compound needs Python >= 3.11, $(PYTHON) is " + sys.version.split()[0])'; \
	  echo "[venv] creating $(VENV) with $$($(PYTHON) -c 'import sys; print(sys.executable, sys.version.split()[0])')"; \
	  rm -rf $(VENV); \
	  $(PYTHON) -m venv $(VENV); \
	  $(VENV)/bin/python -m pip install -q --upgrade pip; \
	fi
	@echo "[venv] pip install -e '.[dev,bench]' (bench: matplotlib, the plots of `compound bench`)"
	@$(VENV)/bin/python -m pip install -q -e '.[dev,bench]'
	@touch $@

engine: | deps
	@bash scripts/ensure-engine.sh

images: | engine
	@bash images/build.sh all

# The same code path as a VM's first `up` (progress on the terminal, a build
# log, resumable); built here so no test or demo step waits minutes for it.
# Cached: a second run costs well under a second.
guest-kernel: | deps venv
	@$(VENV)/bin/python -m compound.runtimes.vm.guestkernel

test: deps venv engine images guest-kernel
	$(VENV)/bin/pytest $(PYTEST_ARGS)

demo: deps venv engine images guest-kernel
	@if [[ ! -f examples/demo.sh ]]; then echo "examples/demo.sh does not exist yet" >&2; exit 1; fi
	bash examples/demo.sh

# Every benchmark, each against a peer measured in the same run; results in bench/results/.
bench: deps venv engine images guest-kernel
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)
	$(VENV)/bin/python bench/vm_boot.py
	$(VENV)/bin/python bench/placement.py
	$(VENV)/bin/python bench/fuzz_spec.py
	$(VENV)/bin/python bench/volume_backup.py
	$(VENV)/bin/python bench/rolling_update.py
	$(VENV)/bin/python bench/vm_dataplane.py

lint: venv
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV)
