"""`make install PREFIX=…`: the release executable, its manual page generated from its argument parser,
and its shell completions, in the usual places under the prefix; the executable is the whole server
(Swift's runtime linked in, resources embedded) and says its version and commit."""
import os
import re
import shutil
import subprocess
import tempfile

from conftest import RELEASE_BIN, ROOT

# What the executable may load: the system's C and C++ runtime, SQLite, zlib, and Graphviz's
# libgvc with what it needs (README, "Install"). No Swift runtime, no Foundation.
SYSTEM_LIBRARIES = {"linux-vdso.so.1", "ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libstdc++.so.6",
                    "libgcc_s.so.1", "libsqlite3.so.0", "libz.so.1", "libgvc.so.6", "libcgraph.so.6", "libcdt.so.5",
                    "libpathplan.so.4", "libexpat.so.1", "libltdl.so.7"}


def test_the_release_executable_loads_only_system_libraries():
    listed = subprocess.run(["ldd", RELEASE_BIN], capture_output=True, text=True, check=True).stdout
    names = {os.path.basename(line.split()[0]) for line in listed.splitlines() if line.strip()}
    assert names <= SYSTEM_LIBRARIES, names - SYSTEM_LIBRARIES
    assert not any("swift" in name.lower() or "foundation" in name.lower() for name in names)


def test_make_install_puts_the_executable_its_manual_and_completions_under_the_prefix():
    prefix = tempfile.mkdtemp(prefix="fletcher-prefix-")
    try:
        subprocess.run(["make", "-C", ROOT, "install", f"PREFIX={prefix}"], check=True, capture_output=True,
                       text=True, env=dict(os.environ, FLETCHER_RELEASE_BIN=RELEASE_BIN), timeout=1800)
        installed = os.path.join(prefix, "bin", "fletcher")
        assert os.access(installed, os.X_OK)
        # Installed without its debugging information: less than half the size of the build's.
        assert os.path.getsize(installed) < os.path.getsize(RELEASE_BIN) / 2
        version = subprocess.run([installed, "--version"], capture_output=True, text=True, check=True).stdout
        assert re.fullmatch(r"\d+\.\d+\.\d+ \(commit [0-9a-f]{12}(-dirty)?\)\n", version), version

        manual = os.path.join(prefix, "share", "man", "man1", "fletcher.1")
        shown = subprocess.run(["man", "-l", "-P", "cat", manual], capture_output=True, text=True, check=True,
                               env=dict(os.environ, MANWIDTH="100")).stdout
        # Every subcommand of the argument parser, with its options.
        for subcommand in ["serve", "migrate", "hash-key", "simulate-compute", "stress", "plan", "products",
                           "update", "clear", "disable", "rerun", "events"]:
            assert re.search(rf"^\s+{subcommand}\b", shown, re.M), subcommand
        assert "--version" in shown and "DATABASE_URL" in shown

        bash = os.path.join(prefix, "share", "bash-completion", "completions", "fletcher")
        subprocess.run(["bash", "-n", bash], check=True)
        # The completion offers the subcommands.
        offered = subprocess.run(
            ["bash", "-c", f'source {bash}; COMP_WORDS=(fletcher mi); COMP_CWORD=1; _fletcher; printf "%s\\n" "${{COMPREPLY[@]}}"'],
            capture_output=True, text=True, check=True).stdout.split()
        assert "migrate" in offered, offered
        assert "_fletcher" in open(os.path.join(prefix, "share", "zsh", "site-functions", "_fletcher")).read()
        fish = open(os.path.join(prefix, "share", "fish", "vendor_completions.d", "fletcher.fish")).read()
        assert re.search(r"complete -c '?fletcher'?", fish)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
