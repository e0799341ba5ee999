# Thin wrapper over CMake/CTest. `make demo` and `make test` work on a fresh Debian 12
# machine: both install what they need first (apt-get, npm).
BUILD      ?= build
BUILD_REL  ?= build-release
JOBS       ?= $(shell nproc)
CMAKE_OPTS ?=

DEB_PKGS = build-essential cmake pkg-config git \
	libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotobuf-dev libsqlite3-dev \
	libcurl4-openssl-dev libzstd-dev libconfig-dev libnghttp2-dev libevent-dev libssl-dev \
	uuid-dev libcmocka-dev libmosquitto-dev mosquitto mosquitto-clients socat \
	python3 python3-grpcio python3-protobuf python3-paho-mqtt python3-serial nodejs npm procps zstd curl bc openssl faketime \
	clang clang-format debootstrap \
	debhelper devscripts lintian rpm rpmlint elfutils scdoc systemd

# Only tests need these: the s3 tests (ctest label s3: a throw-away Ceph RGW by
# tests/s3/rgw.sh, HAProxy, boto3; tests/README.md "S3 and load balancer tests"), the web
# console's test in headless Chromium (e2e_console) and promtool from prometheus, which
# checks packaging/monitoring/ (tests/monitoring/check.sh); `make test` installs them
# (deps-s3), `make build` and `make demo` do not. The s3 part is ~85 MB to download, ~400 MB
# installed; chromium and prometheus come on top.
DEB_PKGS_S3 = radosgw ceph-mon ceph-osd haproxy python3-boto3 iproute2 shellcheck \
	chromium fonts-dejavu-core prometheus

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps deps-apt deps-npm deps-s3 build build-release check-build test unit demo bench fuzz \
	package cross format check-format clean

all: build

deps: deps-apt deps-npm

# Installs only what is missing, so a prepared machine pays nothing.
deps-apt:
	@missing=$$(for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || \
		{ [ $$p = npm ] && command -v npm >/dev/null; } || \
		{ [ $$p = nodejs ] && command -v node >/dev/null; } || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

deps-s3:
	$(MAKE) deps-apt DEB_PKGS="$(DEB_PKGS_S3)"

deps-npm:
	@cd tests/integration && { [ -d node_modules/@duckdb/node-api ] && [ -d node_modules/parquet-wasm ] && \
		[ -d node_modules/puppeteer-core ] && \
		{ [ "$$(uname -m)" != x86_64 ] || [ -d node_modules/@databricks/zerobus-ingest-sdk-linux-x64-gnu ]; } || \
		npm install --no-audit --no-fund --loglevel=error; }

build: deps-apt
	cmake -S . -B $(BUILD) -DRN_WERROR=ON -DRN_SANITIZE=ON $(CMAKE_OPTS)
	cmake --build $(BUILD) -j$(JOBS)

build-release: deps-apt
	cmake -S . -B $(BUILD_REL) -DCMAKE_BUILD_TYPE=Release -DRN_TESTS=OFF $(CMAKE_OPTS)
	cmake --build $(BUILD_REL) -j$(JOBS)

# Release builds (optimised: gcc's -O2 flow analysis warns where -O0 does not) with -Werror,
# with gcc and with clang; compile only, the tests run in the sanitizer build.
check-build: deps-apt
	CC=gcc cmake -S . -B build-check-gcc -DCMAKE_BUILD_TYPE=Release -DRN_WERROR=ON $(CMAKE_OPTS)
	cmake --build build-check-gcc -j$(JOBS)
	CC=clang cmake -S . -B build-check-clang -DCMAKE_BUILD_TYPE=Release -DRN_WERROR=ON $(CMAKE_OPTS)
	cmake --build build-check-clang -j$(JOBS)

# The whole suite: format, Release -Werror builds with gcc and clang, then unit (cmocka,
# ASan/UBSan), fuzz corpus replays and end to end (node:test).
# Tests labelled "slow" (packaging and cross-builds in debootstrap chroots) run after the
# rest, one at a time: they are long and use both cores themselves.
test: deps deps-s3 check-format check-build build
	cd $(BUILD) && ctest --output-on-failure -j2 --timeout 1200 -LE slow
	cd $(BUILD) && ctest --output-on-failure --timeout 2400 -L slow

unit: build
	cd $(BUILD) && ctest --output-on-failure -L 'unit|fuzz'

demo: deps build-release
	RN_BIN=$(BUILD_REL) ./scripts/demo.sh

bench: deps-apt build-release
	RN_BIN=$(BUILD_REL) ./bench/file_to_server.sh

# libFuzzer targets (clang), then each run for FUZZ_SECONDS from its seed corpus.
FUZZ_SECONDS ?= 30
fuzz: deps-apt
	$(MAKE) deps-apt DEB_PKGS="clang libclang-rt-14-dev"
	CC=clang cmake -S . -B build-fuzz -DRN_FUZZ=ON -DRN_SANITIZE=ON
	cmake --build build-fuzz -j$(JOBS)
	tests/fuzz/run.sh $(FUZZ_SECONDS)

# Cross-builds in a Debian 12 chroot kept in $(BUILD)-cross (scripts/cross.sh; root): arm64
# builds the agent and the server and runs the unit tests under qemu-user, armhf the agent only.
ARCH ?= arm64
cross:
	$(MAKE) deps-apt DEB_PKGS="debootstrap"
	$(SUDO) scripts/cross.sh $(ARCH) $(BUILD)-cross

# runnel-agent, runnel-server, runnel-agent-dev as .deb (debian/) and .rpm
# (packaging/rpm/runnel.spec) into dist/. Build dependencies as given: `make deps` installs
# them (DEB_PKGS); nothing else runs (the packaging test is tests/packaging/run.sh).
package:
	packaging/build.sh dist

format:
	find . -path ./build\* -prune -o -path '*/node_modules' -prune -o \
		-name '*.[ch]' -print | xargs clang-format -i

check-format: deps-apt
	find . -path ./build\* -prune -o -path '*/node_modules' -prune -o \
		-name '*.[ch]' -print | xargs clang-format --dry-run --Werror

clean:
	@# chroots first: chroot.sh unmounts what a killed run left mounted (/dev, /proc) before
	@# deleting, where rm -rf would go through the mounts
	for c in $(BUILD)/cross/chroot $(BUILD)-cross/chroot; do \
		[ ! -d $$c ] || $(SUDO) scripts/chroot.sh remove $$c || exit 1; done
	rm -rf $(BUILD) $(BUILD_REL) build-fuzz build-check-gcc build-check-clang $(BUILD)-cross dist
