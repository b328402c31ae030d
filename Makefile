# Fletcher: the two commands of the README, and a few more for development.
.PHONY: run test test-ha build release clean

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

build:
	swift build

release:
	swift build -c release --product fletcher

clean:
	rm -rf .build
