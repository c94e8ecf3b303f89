# The two commands of the README: `make run` and `make test`.
# Both install missing Debian packages (scripts/install-deps), configure and build.

MAKEFLAGS += --no-print-directory

.PHONY: all build run test fuzz bench clean

all: build

build:
	@scripts/install-deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j2

run: build
	@scripts/demo

test:
	@scripts/install-deps
	@scripts/run-tests

bench: build
	@scripts/install-deps --bench
	@bench/lookup/run
	@bench/proxy/run
	@bench/tls/run
	@bench/scan/run
	@bench/dns/run

clean:
	rm -rf build
