"""deploy/systemd/fletcher.service: systemd-analyze's verification and exposure score; the release
binary run as the unit runs it — its environment, state directory, umask, an unprivileged uid with
no capabilities —; and the unit itself run by systemd, booted in a podman container (these machines
have no systemd of their own running)."""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import (PODMAN, RELEASE_BIN, ROOT, RUN_LIMITS, Client, credentials_env, free_port, podman, send,
                      wait_healthy)

UNIT = os.path.join(ROOT, "deploy", "systemd", "fletcher.service")
EXAMPLE_ENV = os.path.join(ROOT, "deploy", "systemd", "fletcher.env")
# The exposure score the unit must stay at or under ("OK" in systemd-analyze's words is below 5).
MAX_EXPOSURE = 2.0
# A uid of DynamicUser's range (61184–65519).
DYNAMIC_UID = 61184


def service_settings():
    """The [Service] section's settings: name → list of values, in order."""
    settings, section = {}, None
    with open(UNIT) as unit:
        for line in unit:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
            elif section == "[Service]":
                key, _, value = line.partition("=")
                settings.setdefault(key, []).append(value)
    return settings


def environment_file(path):
    """The variables of an EnvironmentFile= as systemd reads one: VARIABLE=value lines, comments,
    quotes keeping a value whole."""
    variables = {}
    with open(path) as lines:
        for line in lines:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            key, _, value = line.partition("=")
            variables[key.strip()] = " ".join(shlex.split(value))
    return variables


def write_environment_file(path, release_binary, port):
    """The unit's settings file as an operator makes it: the example (deploy/systemd/fletcher.env,
    every line a comment), then the test's service and secret, and BASE_URL on `port`."""
    with open(EXAMPLE_ENV) as example, open(path, "w") as written:
        written.write(example.read())
        settings = credentials_env([release_binary, "hash-key", "--cost", "4"])
        settings["BASE_URL"] = f"127.0.0.1:{port}"
        for key, value in settings.items():
            written.write(f"{key}='{value}'\n")


@pytest.fixture(scope="module")
def release_binary():
    if not os.access(RELEASE_BIN, os.X_OK):
        pytest.fail(f"no release binary at {RELEASE_BIN} (scripts/test-deploy.sh builds it)")
    return RELEASE_BIN


@pytest.fixture
def unit_root(release_binary):
    """A root for systemd-analyze: systemd's own units, this unit, and the binary where it runs it."""
    root = tempfile.mkdtemp(prefix="fletcher-unit-")
    system_units = next(d for d in ("/usr/lib/systemd/system", "/lib/systemd/system") if os.path.isdir(d))
    shutil.copytree(system_units, os.path.join(root, "usr/lib/systemd/system"), symlinks=True)
    os.makedirs(os.path.join(root, "etc/systemd/system"))
    shutil.copy(UNIT, os.path.join(root, "etc/systemd/system/fletcher.service"))
    os.makedirs(os.path.join(root, "usr/local/bin"))
    try:
        os.link(release_binary, os.path.join(root, "usr/local/bin/fletcher"))
    except OSError:
        shutil.copy(release_binary, os.path.join(root, "usr/local/bin/fletcher"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_systemd_analyze_verifies_the_unit(unit_root):
    # When systemd verifies the unit, with the binary installed where the unit runs it
    result = subprocess.run(["systemd-analyze", "verify", f"--root={unit_root}",
                             "/etc/systemd/system/fletcher.service"], capture_output=True, text=True, timeout=120)

    # Then it finds nothing to say: no unknown key, no bad value, no missing command
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_the_unit_exposes_little(unit_root):
    # When systemd-analyze scores the unit's hardening
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--root={unit_root}",
                             "--no-pager", "/etc/systemd/system/fletcher.service"],
                            capture_output=True, text=True, timeout=120)
    score = re.search(r"Overall exposure level for fletcher\.service: ([0-9.]+) (\w+)", result.stdout)
    assert score, result.stdout + result.stderr

    # Then its exposure is low: what is left open is the network, which a server needs
    print(f"\nsystemd-analyze security: exposure {score.group(1)} {score.group(2)}")
    assert float(score.group(1)) <= MAX_EXPOSURE
    open_settings = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("✗")]
    print("still open: " + ", ".join(open_settings))


def test_the_binary_serves_with_the_units_environment_as_an_unprivileged_user(release_binary):
    # Given the unit's settings: Environment= with %S the state directories' root, the example
    # EnvironmentFile with this test's secret, services and port added, the state directory
    # (mode StateDirectoryMode, owned by the dynamic user) as the working directory, UMask=
    settings = service_settings()
    assert settings["DynamicUser"] == ["yes"] and settings["StateDirectory"] == ["fletcher"]
    assert settings["ExecStart"] == ["/usr/local/bin/fletcher serve"]
    base = tempfile.mkdtemp(prefix="fletcher-unit-run-")
    os.chmod(base, 0o755)
    state_root = os.path.join(base, "var", "lib")
    state = os.path.join(state_root, "fletcher")
    os.makedirs(state)
    os.chmod(os.path.join(base, "var"), 0o755)
    os.chmod(state_root, 0o755)
    os.chmod(state, int(settings["StateDirectoryMode"][0], 8))
    os.chown(state, DYNAMIC_UID, DYNAMIC_UID)

    port = free_port()
    env_file = os.path.join(base, "fletcher.env")
    write_environment_file(env_file, release_binary, port)

    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "STATE_DIRECTORY": state, "HOME": state, "USER": "fletcher", "LOGNAME": "fletcher"}
    for assignment in settings["Environment"]:
        key, _, value = assignment.partition("=")
        env[key] = value.replace("%S", state_root)
    assert env["DATABASE_URL"] == f"sqlite:{state}/fletcher.sqlite"
    env.update(environment_file(env_file))
    umask = int(settings["UMask"][0], 8)
    working_directory = settings["WorkingDirectory"][0].replace("%S", state_root)
    stop_timeout = int(settings["TimeoutStopSec"][0].rstrip("s"))

    # When the binary runs as the dynamic user would: another uid, no capabilities, no new privileges
    log_path = os.path.join(base, "server.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            ["setpriv", f"--reuid={DYNAMIC_UID}", f"--regid={DYNAMIC_UID}", "--clear-groups", "--no-new-privs",
             "--inh-caps=-all", "--bounding-set=-all", "--", release_binary, "serve"],
            env=env, cwd=working_directory, stdout=log, stderr=subprocess.STDOUT, preexec_fn=lambda: os.umask(umask))
    try:
        seconds = wait_healthy(port, lambda: process.poll() is None)
        print(f"\nstart-up with the unit's environment (exec → /health 200): {seconds:.2f} s")

        # Then it serves plans from SQLite in the state directory, its files private to it
        api = Client(port)
        dataset, ids = api.submit_plan()
        assert sorted(p["id"] for p in api.call("GET", f"/api/plan/{dataset}")["data_products"]) == sorted(ids)
        assert json.loads(send(port, "GET", "/health")[1])["database"] == "up"
        database = os.stat(os.path.join(state, "fletcher.sqlite"))
        assert database.st_uid == DYNAMIC_UID and database.st_mode & 0o077 == 0

        # And SIGTERM (KillSignal=) stops it with exit 0 within TimeoutStopSec=
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=stop_timeout) == 0, open(log_path).read()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(base, ignore_errors=True)


def packages_owning_libraries(binary):
    """The Debian packages owning the libraries `binary` loads (on this Debian host)."""
    listing = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = set(re.findall(r"=> (/\S+)", listing)) | set(re.findall(r"^\s*(/\S+)", listing, re.M))
    packages = set()
    for path in paths:
        owner = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True)
        if owner.returncode != 0:
            owner = subprocess.run(["dpkg-query", "-S", os.path.realpath(path)], capture_output=True, text=True)
        assert owner.returncode == 0, f"{path} is not from a Debian package"
        packages.add(owner.stdout.split(":")[0])
    return sorted(packages)


@pytest.fixture(scope="module")
def systemd_machine(release_binary):
    """A container booting systemd (podman --systemd=always) from a minimal Debian that mmdebstrap
    makes with systemd and the binary's libraries, with the binary, the unit (enabled) and an
    EnvironmentFile: the example plus this test's secret, services and port. Yields (podman's
    container name, the root folder, the port)."""
    suite = subprocess.run(["bash", "-c", ". /etc/os-release && echo $VERSION_CODENAME"], capture_output=True,
                           text=True, check=True).stdout.strip()
    mirror = os.environ.get("FLETCHER_IMAGE_MIRROR", "http://deb.debian.org/debian")
    security = mirror.rsplit("/debian", 1)[0] + "/debian-security"
    packages = ["systemd", "systemd-sysv"] + packages_owning_libraries(release_binary)
    base = tempfile.mkdtemp(prefix="fletcher-systemd-", dir="/var/tmp")
    root = os.path.join(base, "root")
    name = f"fletcher-systemd-{os.path.basename(base)[-6:].lower()}"
    try:
        subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", "--include=" + ",".join(packages),
                        "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
                        "--dpkgopt=path-exclude=/usr/share/locale/*", suite, root,
                        f"deb {mirror} {suite} main", f"deb {mirror} {suite}-updates main",
                        f"deb {security} {suite}-security main"], check=True, timeout=900)

        shutil.copy(release_binary, os.path.join(root, "usr/local/bin/fletcher"))
        for bundle in os.listdir(os.path.dirname(release_binary)):
            if bundle.endswith(".resources"):
                shutil.copytree(os.path.join(os.path.dirname(release_binary), bundle),
                                os.path.join(root, "usr/local/bin", bundle))
        shutil.copy(UNIT, os.path.join(root, "etc/systemd/system/fletcher.service"))
        os.symlink("/etc/systemd/system/fletcher.service",
                   os.path.join(root, "etc/systemd/system/multi-user.target.wants/fletcher.service"))
        port = free_port()
        os.makedirs(os.path.join(root, "etc/fletcher"))
        env_file = os.path.join(root, "etc/fletcher/fletcher.env")
        write_environment_file(env_file, release_binary, port)
        os.chmod(env_file, 0o600)

        podman("run", "-d", "--name", name, "--network=host", *RUN_LIMITS, "--systemd=always", "--rootfs", root,
               "/sbin/init")
        yield name, root, port
    finally:
        subprocess.run(PODMAN + ["rm", "-f", "-t", "10", name], capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def test_systemd_runs_the_unit_hardened_restarts_it_after_a_crash_and_stops_it_cleanly(systemd_machine):
    name, root, port = systemd_machine

    def systemctl(*arguments):
        return podman("exec", name, "systemctl", *arguments, check=False).stdout.strip()

    def show(prop):
        return systemctl("show", "--value", "-p", prop, "fletcher")

    def journal():
        return podman("exec", name, "journalctl", "--no-pager", "-n", "60", check=False).stdout

    # Given systemd booted with the unit enabled
    try:
        seconds = wait_healthy(port, lambda: show("ActiveState") != "failed", timeout=120)
    except AssertionError:
        raise AssertionError(f"fletcher.service did not come up: {show('ActiveState')}\n{journal()}")
    print(f"\nsystemd: boot to /health 200 in {seconds:.2f} s")
    assert show("ActiveState") == "active"

    # Then the server runs as a dynamic user, with no capability, no new privileges, a seccomp filter
    pid = show("MainPID")
    status = dict(line.split(":\t", 1) for line in
                  podman("exec", name, "cat", f"/proc/{pid}/status").stdout.splitlines() if ":\t" in line)
    uid = int(status["Uid"].split()[0])
    assert 61184 <= uid <= 65519
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"

    # And it serves plans, kept in SQLite in its state directory, readable by it alone
    api = Client(port)
    dataset, ids = api.submit_plan()
    assert sorted(p["id"] for p in api.call("GET", f"/api/plan/{dataset}")["data_products"]) == sorted(ids)
    status_code, page = send(port, "GET", f"/plan/{dataset}")
    assert status_code == 200 and page.count(b'class="edge"') == 2
    database = os.stat(os.path.join(root, "var/lib/private/fletcher/fletcher.sqlite"))
    assert database.st_uid == uid and database.st_mode & 0o077 == 0

    # When the process dies of a crash, systemd starts it again (Restart=on-failure)
    systemctl("kill", "--signal=SIGKILL", "fletcher")
    deadline = time.monotonic() + 60
    while show("MainPID") in (pid, "0") and time.monotonic() < deadline:
        time.sleep(0.2)
    wait_healthy(port, lambda: True, timeout=60)
    assert show("NRestarts") == "1" and show("MainPID") != pid
    assert api.call("GET", f"/api/plan/{dataset}")["dataset"]["id"] == dataset

    # And `systemctl stop` stops it gracefully: SIGTERM, exit 0
    started = time.monotonic()
    systemctl("stop", "fletcher")
    seconds = time.monotonic() - started
    print(f"systemd: stop took {seconds:.2f} s")
    assert show("Result") == "success" and show("ExecMainStatus") == "0", journal()
    assert seconds < 30
