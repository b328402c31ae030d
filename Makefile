# Fletcher: the two commands of the README, and a few more for development.
.PHONY: run test test-ha test-deploy build release install clean

PREFIX ?= /usr/local

## Run Fletcher on the embedded SQLite default (installs what is missing, builds in release mode).
run:
	scripts/run.sh

## Run the whole test suite (SQLite and a throwaway PostgreSQL; installs what is missing).
test:
	scripts/test.sh

## The production-PostgreSQL tests: Patroni failover, PgBouncer, a slow, full or vanishing database
## (installs Debian's patroni, etcd-server, haproxy and pgbouncer when missing; about 15 minutes).
test-ha:
	scripts/test-ha.sh

## The shipping forms: the self-contained binary, `make install`, the container image and the systemd
## unit (builds the release executable and the image; about 30 minutes from scratch).
test-deploy:
	scripts/test-deploy.sh

build:
	swift build

## The release executable as it ships: Swift runtime linked in, resources embedded (.build-release/release/fletcher).
release:
	scripts/release.sh

## Installs the release executable, its manual page and shell completions under PREFIX (default /usr/local).
install:
	scripts/install.sh "$(PREFIX)"

clean:
	rm -rf .build .build-release
