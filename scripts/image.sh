#!/usr/bin/env bash
# Builds Fletcher's container image from Debian's packages alone, without any container registry:
#
#   1. mmdebstrap installs, into a scratch folder, a minimal Debian (variant minbase) of the host's
#      release with the packages that own the libraries the release binary loads (found with ldd and
#      dpkg -S on the host), Graphviz's libgvc6, bash (the health check's HTTP client: its
#      /dev/tcp), ca-certificates, tzdata and netbase. Their
#      maintainer scripts run there: the loader's cache, Graphviz's plugin list, the CA bundle.
#   2. The image keeps whole packages, no more: those owning a library that the binary, the two
#      Graphviz plugins it uses (core: SVG; dot_layout) or bash load, and libc6 (without its iconv
#      modules), base-files, netbase, tzdata and ca-certificates. No apt, dpkg or coreutils. Graphviz's
#      other plugins (cairo, pango, gd, X11, …) are left out with the libraries they pull in, and its
#      plugin list is written again without them.
#   3. podman builds ./Containerfile from that root filesystem (rootfs.tar) and the binary (bin/),
#      in the docker format, the one that keeps HEALTHCHECK.
#
#   scripts/image.sh [BINARY]
#
# BINARY defaults to $FLETCHER_RELEASE_BIN, else .build-release/release/fletcher: a release build
# with the Swift runtime linked statically (--static-swift-stdlib), so every library ldd lists comes
# from a Debian package. The image is tagged $FLETCHER_IMAGE (default localhost/fletcher:latest) and
# localhost/fletcher:VERSION. Its labels: org.opencontainers.image.version from `fletcher --version`,
# .revision from git, .source from $FLETCHER_IMAGE_SOURCE (default: the origin remote's URL),
# .licenses from $FLETCHER_IMAGE_LICENSES (default NOASSERTION: the repository names no licence).
# $FLETCHER_IMAGE_MIRROR is the Debian mirror (default http://deb.debian.org/debian).
# Installs mmdebstrap, podman, runc and binutils (strip) when missing (apt, starting no service).
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-${FLETCHER_RELEASE_BIN:-$PWD/.build-release/release/fletcher}}
tag=${FLETCHER_IMAGE:-localhost/fletcher:latest}
mirror=${FLETCHER_IMAGE_MIRROR:-http://deb.debian.org/debian}
[[ -x $binary ]] || { echo "image.sh: no Fletcher binary at $binary (build it: see scripts/test-deploy.sh)" >&2; exit 1; }
binary=$(realpath "$binary")

# The uid and gid the server runs as; /data, its volume, belongs to them.
uid=10001

# --- Tools -----------------------------------------------------------------------------------------
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for package in mmdebstrap podman runc; do
  have_pkg "$package" || missing+=("$package")
done
command -v strip >/dev/null || missing+=(binutils)
scripts/apt-install.sh "${missing[@]}"

# podman as this machine runs it: runc where it is installed (crun refuses hybrid cgroup
# hierarchies), cgroupfs when systemd is not the init system.
podman=(podman)
[[ -x /usr/sbin/runc ]] && podman+=(--runtime /usr/sbin/runc)
[[ -d /run/systemd/system ]] || podman+=(--cgroup-manager=cgroupfs)

# --- 1. A minimal Debian with the binary's libraries ------------------------------------------------
# Each library the binary loads, and the Debian package it comes from (on the host, the same release).
libraries=$(ldd "$binary")
if grep -q "not found" <<<"$libraries"; then
  echo "image.sh: $binary needs libraries that are not installed:" >&2
  grep "not found" <<<"$libraries" >&2
  exit 1
fi
owners() { # package names owning the files named on stdin (one path per line)
  local path
  while read -r path; do
    dpkg-query -S "$path" 2>/dev/null || dpkg-query -S "$(realpath "$path")" 2>/dev/null ||
      {
        echo "image.sh: $path is not from a Debian package (is the Swift runtime linked statically?)" >&2
        return 1
      }
  done | cut -d: -f1 | sort -u
}
library_paths() { awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'; }
packages=$(library_paths <<<"$libraries" | owners)
packages=$(printf '%s\n' $packages libgvc6 bash ca-certificates tzdata netbase | sort -u)

work=$(mktemp -d /var/tmp/fletcher-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
full=$work/full
slim=$work/slim
context=$work/context
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
echo "Installing $(wc -w <<<"$packages") packages of Debian $suite with mmdebstrap: $(echo $packages)"
started=$SECONDS
mmdebstrap --quiet --variant=minbase --include="$(echo $packages | tr ' ' ,)" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
  "$suite" "$full" \
  "deb $mirror $suite main" "deb $mirror $suite-updates main" \
  "deb ${mirror%/debian}/debian-security $suite-security main"
echo "mmdebstrap took $((SECONDS - started)) s"

# Graphviz: the SVG renderer and the dot layout, and the plugin list written again for them alone
# (libgvc reads it at start: a plugin listed but missing is a warning on every page).
graphviz=$full/usr/lib/x86_64-linux-gnu/graphviz
[[ -d $graphviz ]] || graphviz=$(dirname "$(find "$full/usr/lib" -name 'libgvplugin_core.so*' | head -1)")
keep_plugins=(core dot_layout)
for plugin in "$graphviz"/libgvplugin_*.so*; do
  name=$(basename "$plugin" | sed -E 's/^libgvplugin_(.*)\.so.*$/\1/')
  [[ " ${keep_plugins[*]} " == *" $name "* ]] || rm -f "$plugin"
done
rm -f "$graphviz/config6a"
chroot "$full" libgvc6-config-update -c

# The libraries loaded by what the image runs, resolved inside the new root.
install -m 755 "$binary" "$full/usr/local/bin/fletcher"
needed=$(
  for program in "$full/usr/local/bin/fletcher" "$full/usr/bin/bash" "$graphviz"/libgvplugin_*.so.?; do
    chroot "$full" ldd "${program#"$full"}"
  done
)
if grep -q "not found" <<<"$needed"; then
  echo "image.sh: libraries missing in the image:" >&2
  grep "not found" <<<"$needed" >&2
  exit 1
fi
rm "$full/usr/local/bin/fletcher"
kept=$(library_paths <<<"$needed" | sort -u | while read -r path; do
  chroot "$full" dpkg-query -S "$path" 2>/dev/null ||
    chroot "$full" dpkg-query -S "$(chroot "$full" realpath "$path")"
done | cut -d: -f1 | sort -u)
kept=$(printf '%s\n' $kept libc6 libgvc6 bash base-files netbase tzdata ca-certificates | sort -u)
echo "The image keeps $(wc -w <<<"$kept") packages: $(echo $kept)"

# --- 2. The image's root: those packages' files ----------------------------------------------------
mkdir -p "$slim"
# The merged /usr's links (bin -> usr/bin, …), as mmdebstrap made them; the files are copied by
# their names under /usr.
merged=()
for link in bin sbin lib lib32 lib64 libx32; do
  if [[ -L $full/$link ]]; then
    cp -P "$full/$link" "$slim/$link"
    merged+=("$link")
  fi
done
{
  for package in $kept; do
    chroot "$full" dpkg-query -L "$package"
  done
  # Made by maintainer scripts, owned by no package.
  echo /etc/ld.so.cache
  echo /etc/nsswitch.conf
  echo /etc/localtime
  echo /etc/timezone
  echo "${graphviz#"$full"}/config6a"
  find "$full/etc/ssl/certs" -mindepth 1 | sed "s|^$full||"
} | sort -u | while read -r path; do
  # Files and links only (tar makes their folders); what dpkg's path-exclude left out is not there;
  # libc6's iconv modules are not used (Swift converts UTF-8 itself).
  [[ -e $full$path || -L $full$path ]] || continue
  [[ -d $full$path && ! -L $full$path ]] && continue
  [[ $path == */gconv/* ]] && continue
  path=${path#/}
  top=${path%%/*}
  [[ " ${merged[*]} " == *" $top "* && $path == */* ]] && path=$(readlink "$full/$top")/${path#*/}
  echo "$path"
done | sort -u >"$work/files"
tar -C "$full" --no-recursion -cf - -T "$work/files" | tar -C "$slim" --keep-directory-symlink -xpf -

# The accounts: root, the server's (home /data) and nobody, with no login shell.
mkdir -p "$slim/etc" "$slim/data" "$slim/tmp" "$slim/usr/local/bin"
cat >"$slim/etc/passwd" <<EOF
root:x:0:0:root:/root:/usr/sbin/nologin
fletcher:x:$uid:$uid:Fletcher:/data:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$slim/etc/group" <<EOF
root:x:0:
fletcher:x:$uid:
nogroup:x:65534:
EOF
chmod 1777 "$slim/tmp"
chown "$uid:$uid" "$slim/data"
chmod 750 "$slim/data"

# --- 3. The image ----------------------------------------------------------------------------------
mkdir -p "$context/bin"
tar -C "$slim" --sort=name --numeric-owner -cf "$context/rootfs.tar" .
# Without its debug information and symbol table: 100 MB less (a crash's backtrace then shows
# addresses, which the unstripped binary of the same build turns into names).
strip --strip-all -o "$context/bin/fletcher" "$binary"
chmod 755 "$context/bin/fletcher"

# `fletcher --version` may say more after the version ("0.1.0 (commit …)"): the label is the version.
version=$("$binary" --version | awk '{print $1; exit}')
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
source=${FLETCHER_IMAGE_SOURCE:-$(git config --get remote.origin.url 2>/dev/null || true)}
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
previous=$("${podman[@]}" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
"${podman[@]}" build --quiet --format docker --layers=false --network none -f Containerfile \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg SOURCE="$source" \
  --build-arg LICENSES="${FLETCHER_IMAGE_LICENSES:-NOASSERTION}" --build-arg CREATED="$created" \
  -t "$tag" "$context" >/dev/null
# Also tagged with the version, when it can be a tag.
[[ $version =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] && "${podman[@]}" tag "$tag" "localhost/fletcher:$version"
# The image this one replaces, now without a name.
if [[ -n $previous && $previous != $("${podman[@]}" image inspect --format '{{.Id}}' "$tag") ]]; then
  "${podman[@]}" rmi "$previous" >/dev/null 2>&1 || true
fi
size=$("${podman[@]}" image inspect --format '{{.Size}}' "$tag")
echo "Built $tag (fletcher $version): $((size / 1000000)) MB;" \
  "root filesystem $(du -sm "$slim" | cut -f1) MiB, stripped binary $(du -m "$context/bin/fletcher" | cut -f1) MiB"
