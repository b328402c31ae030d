# Fletcher: the two commands of the README, and a few more for development.
.PHONY: run test build release clean

## Run Fletcher on the embedded SQLite default (installs what is missing, builds in release mode).
run:
	scripts/run.sh

## Run the whole test suite (SQLite and a throwaway PostgreSQL; installs what is missing).
test:
	scripts/test.sh

build:
	swift build

release:
	swift build -c release --product fletcher

clean:
	rm -rf .build
