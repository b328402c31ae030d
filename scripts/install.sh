#!/usr/bin/env bash
# `make install PREFIX=…`: installs the release executable (scripts/release.sh) as PREFIX/bin/fletcher,
# its manual page, generated from its argument parser (swift-argument-parser's generate-manual), as
# PREFIX/share/man/man1/fletcher.1, and its bash, zsh and fish completions under PREFIX/share.
# DESTDIR is put in front of every path, for packaging.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=${1:-/usr/local}
root=${DESTDIR:-}$prefix
binary=${FLETCHER_RELEASE_BIN:-}
[[ -n $binary ]] || binary=$(scripts/release.sh)

# generate-manual runs the executable with --experimental-dump-help and writes mdoc. It is built
# from the argument parser's own checkout (the version this package resolved), apart from Fletcher.
swift package --scratch-path .build-release resolve >&2
parser=.build-release/checkouts/swift-argument-parser
swift build -c release --package-path "$parser" --scratch-path .build-release/tools --product generate-manual >&2
pages=$(mktemp -d)
trap 'rm -rf "$pages"' EXIT
.build-release/tools/release/generate-manual "$binary" --output-directory "$pages" --section 1 \
  --authors "the Fletcher developers" >&2

install -d "$root/bin" "$root/share/man/man1" "$root/share/bash-completion/completions" \
  "$root/share/zsh/site-functions" "$root/share/fish/vendor_completions.d"
# Stripped of its debugging information (less than half the size; backtraces then show addresses).
install -m 755 -s "$binary" "$root/bin/fletcher"
install -m 644 "$pages"/fletcher.1 "$root/share/man/man1/fletcher.1"
"$binary" --generate-completion-script bash >"$root/share/bash-completion/completions/fletcher"
"$binary" --generate-completion-script zsh >"$root/share/zsh/site-functions/_fletcher"
"$binary" --generate-completion-script fish >"$root/share/fish/vendor_completions.d/fletcher.fish"
echo "installed $root/bin/fletcher ($("$root/bin/fletcher" --version)) with its manual page and completions"
