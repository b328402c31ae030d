#!/usr/bin/env python3
"""A throwaway highly available PostgreSQL on loopback, for the failover tests (Tests/ha) and for
trying Fletcher against by hand: one etcd, two PostgreSQL nodes run by Patroni (streaming
replication, synchronous by default), and HAProxy in front, which sends connections to whichever
node Patroni says is the primary. Everything comes from Debian's packages (patroni, etcd-server,
haproxy, postgresql), listens on free loopback ports and lives in one folder; nothing is installed
or left running.

PostgreSQL refuses to run as root, so when started by root, etcd, Patroni and PostgreSQL run as
the `postgres` system user (created if missing), as scripts/with-postgres.sh does.

Settings, chosen for a fast and durable failover:

- Patroni: `ttl` 10 s, `loop_wait` 2 s, `retry_timeout` 4 s (ttl ≥ loop_wait + 2 × retry_timeout,
  Patroni's rule); `primary_start_timeout` 0, so a primary whose PostgreSQL crashed fails over at
  once rather than restarting in place; `use_pg_rewind`, so the old primary rejoins as a replica
  (re-created from a base backup when rewinding fails).
- `synchronous_mode` (on by default): a commit is acknowledged once the standby has it, so an
  acknowledged write survives the loss of the primary; `synchronous_commit = on`, `fsync` on.
  Without a standby Patroni drops the synchronous requirement (not `synchronous_mode_strict`),
  so a lone primary keeps accepting writes.
- HAProxy checks each node's Patroni REST API (`GET /primary`) every second and marks a node down
  after two failures and up after one success; a node marked down has its sessions cut.

By hand (the folder must not exist yet, or be empty; `stop` removes it):

    python3 scripts/ha/cluster.py start /tmp/ha [--async]   # prints the DATABASE_URL
    python3 scripts/ha/cluster.py status /tmp/ha
    python3 scripts/ha/cluster.py kill-postgres /tmp/ha     # SIGKILL the primary's PostgreSQL
    python3 scripts/ha/cluster.py kill-node /tmp/ha         # SIGKILL its Patroni and PostgreSQL
    python3 scripts/ha/cluster.py heal /tmp/ha              # restart what is dead, wait for both
    python3 scripts/ha/cluster.py stop /tmp/ha

From Python: `Cluster(synchronous=True).start()`, then `url`, `leader()`, `kill_postgres_of_leader()`,
`kill_patroni_and_postgres_of_leader()`, `wait_for_new_leader(old)`, `heal()`, `stop()`."""
import argparse
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

NODES = ("node0", "node1")


def postgres_bin():
    """The newest PostgreSQL server binaries installed (Debian's layout), or FLETCHER_HA_PG_BIN."""
    if os.environ.get("FLETCHER_HA_PG_BIN"):
        return os.environ["FLETCHER_HA_PG_BIN"]
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin)")
    return os.path.dirname(found[-1])


def tool(name, *fallbacks):
    """The path of an executable: on PATH, or at one of `fallbacks` (/usr/sbin is not always on PATH)."""
    for path in [shutil.which(name), *fallbacks]:
        if path and os.access(path, os.X_OK):
            return path
    raise RuntimeError(f"{name} is not installed (scripts/test-ha.sh installs it)")


def free_ports(count):
    """`count` distinct free loopback ports (held open together while chosen, so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def http_get(url, timeout=1.0):
    """(status, body) of a GET, or (None, None) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, ValueError):
        return None, None


def poll(condition, timeout, what, interval=0.1):
    """Polls `condition` until it returns something true, and returns that; fails after `timeout` s."""
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.time() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def alive(pid):
    """True while process `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Cluster:
    """One etcd, two Patroni-run PostgreSQL nodes and HAProxy, in `folder` (a new temporary folder by
    default). `start()` brings it up and creates `database`; `stop()` kills everything and removes
    the folder."""

    def __init__(self, folder=None, synchronous=True, database="fletcher", max_connections=300):
        self.folder = os.path.abspath(folder) if folder else None
        self.synchronous = synchronous
        self.database = database
        self.max_connections = max_connections
        self.ports = {}
        self.processes = {}  # name -> Popen (only in the process that started them)
        self.pids = {}       # name -> pid, also read back from cluster.json by `attach`
        self.bin = postgres_bin()
        self._owner = self._postgres_user()

    # ----- addresses -----

    @property
    def url(self):
        """Fletcher's DATABASE_URL: the database through HAProxy, which follows the primary."""
        return f"postgres://postgres@127.0.0.1:{self.ports['haproxy']}/{self.database}?sslmode=disable"

    def rest(self, node, path=""):
        return f"http://127.0.0.1:{self.ports[node + '_rest']}{path}"

    def data_dir(self, node):
        return os.path.join(self.folder, node, "data")

    # ----- start and stop -----

    def start(self, timeout=120):
        """Starts etcd, both Patroni nodes and HAProxy, waits until one node is primary and the other
        a streaming (in synchronous mode: synchronous) standby and HAProxy routes to the primary,
        then creates the database. On failure everything started is stopped again."""
        created_folder = self.folder is None
        if created_folder:
            self.folder = tempfile.mkdtemp(prefix="fletcher-ha.")
        os.makedirs(self.folder, exist_ok=True)
        try:
            self._start(timeout)
        except BaseException:
            print(self.diagnostics(), file=sys.stderr)
            self.stop(remove=created_folder)
            raise
        return self

    def _start(self, timeout):
        os.chmod(self.folder, 0o755)
        names = ["etcd_client", "etcd_peer", "haproxy"] + [n + s for n in NODES for s in ("_pg", "_rest")]
        self.ports = dict(zip(names, free_ports(len(names))))
        self._write_state()
        etcd_dir = os.path.join(self.folder, "etcd")
        os.makedirs(etcd_dir, mode=0o700)
        self._chown(etcd_dir)
        peer = f"http://127.0.0.1:{self.ports['etcd_peer']}"
        client = f"http://127.0.0.1:{self.ports['etcd_client']}"
        self._spawn("etcd", [tool("etcd"), "--name", "etcd0", "--data-dir", os.path.join(etcd_dir, "data"),
                             "--listen-client-urls", client, "--advertise-client-urls", client,
                             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                             "--initial-cluster", f"etcd0={peer}", "--initial-cluster-state", "new",
                             "--initial-cluster-token", "fletcher-ha", "--logger", "zap", "--log-level", "warn"],
                    cwd=etcd_dir, as_owner=True)
        poll(lambda: http_get(client + "/health")[0] == 200, 30, "etcd to answer")
        for node in NODES:
            folder = os.path.join(self.folder, node)
            os.makedirs(folder, mode=0o700)
            self._chown(folder)
            with open(os.path.join(folder, "patroni.yml"), "w") as f:
                # JSON is YAML: Patroni reads this with its YAML loader.
                json.dump(self._patroni_config(node), f, indent=2)
            self._chown(os.path.join(folder, "patroni.yml"))
        self.start_patroni(NODES[0])
        poll(lambda: http_get(self.rest(NODES[0], "/primary"))[0] == 200, timeout, "the first node to be primary")
        self.start_patroni(NODES[1])
        with open(os.path.join(self.folder, "haproxy.cfg"), "w") as f:
            f.write(self._haproxy_config())
        self._spawn("haproxy", [tool("haproxy", "/usr/sbin/haproxy"), "-f", os.path.join(self.folder, "haproxy.cfg"), "-db"],
                    cwd=self.folder, as_owner=False)
        self.wait_healthy(timeout)
        self.psql(f'CREATE DATABASE "{self.database}"', database="postgres")

    def stop(self, remove=True):
        """Kills every process of the cluster (HAProxy, Patroni, PostgreSQL, etcd) and removes the
        folder. Safe to call twice, and from another process than the one that started it."""
        for name in ["haproxy"] + [f"patroni-{n}" for n in NODES]:
            self._kill(name)
        if self.folder:
            for node in NODES:
                pid = self.postmaster_pid(node)
                if pid:
                    self._kill_pid(pid, self.data_dir(node))
        self._kill("etcd")
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if remove and self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    @classmethod
    def attach(cls, folder):
        """The cluster started (by `start`, perhaps in another process) in `folder`."""
        with open(os.path.join(folder, "cluster.json")) as f:
            state = json.load(f)
        cluster = cls(folder=folder, synchronous=state["synchronous"], database=state["database"])
        cluster.ports, cluster.pids = state["ports"], state["pids"]
        return cluster

    def __enter__(self):
        return self.start()

    def __exit__(self, *_):
        self.stop()

    # ----- the nodes -----

    def start_patroni(self, node):
        """Starts (or starts again) one node's Patroni, which starts its PostgreSQL."""
        self._spawn(f"patroni-{node}", [tool("patroni"), os.path.join(self.folder, node, "patroni.yml")],
                    cwd=os.path.join(self.folder, node), as_owner=True)

    def patroni_alive(self, node):
        pid = self.pids.get(f"patroni-{node}")
        return bool(pid) and alive(pid)

    def postmaster_pid(self, node):
        """The PID in the node's postmaster.pid, if that process is alive."""
        try:
            with open(os.path.join(self.data_dir(node), "postmaster.pid")) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def members(self):
        """Patroni's view of the cluster (`GET /cluster` on the first node that answers): a list of
        {name, role ("leader", "sync_standby", "replica"), state, lag, timeline, …}."""
        for node in NODES:
            status, body = http_get(self.rest(node, "/cluster"))
            if status == 200:
                return json.loads(body)["members"]
        return []

    def leader(self):
        """The node whose Patroni answers `/primary` with 200 (the one HAProxy sends connections to),
        or None."""
        for node in NODES:
            if http_get(self.rest(node, "/primary"))[0] == 200:
                return node
        return None

    def other(self, node):
        return NODES[1 - NODES.index(node)]

    def children(self, node, kind):
        """PIDs of the node's PostgreSQL processes of one kind (`walsender`, `walreceiver`, …)."""
        postmaster = self.postmaster_pid(node)
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/status") as f:
                    parent = next(line for line in f if line.startswith("PPid:")).split()[1]
            except (OSError, StopIteration):
                continue
            if postmaster and parent == str(postmaster) and kind in cmdline(pid):
                found.append(int(pid))
        return found

    def hold_replication(self):
        """Stops (SIGSTOP) the primary's WAL senders: with asynchronous replication commits are
        still acknowledged, but no standby receives them — a failover now loses them. The next kill
        of the primary ends the senders too. Returns the node."""
        node = poll(self.leader, 30, "a leader")
        senders = poll(lambda: self.children(node, "walsender"), 10, "the primary's WAL sender")
        for pid in senders:
            os.kill(pid, signal.SIGSTOP)
        self._held = senders
        return node

    def _end_held(self):
        for pid in getattr(self, "_held", []):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self._held = []

    def kill_postgres_of_leader(self):
        """SIGKILLs the primary's postmaster (its backends end as they notice). Returns (node, time
        of the kill). Patroni stays up: it fails over and brings the node back as a replica."""
        node = poll(self.leader, 30, "a leader")
        pid = poll(lambda: self.postmaster_pid(node), 10, "the primary's postmaster.pid")
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        # A stopped WAL sender would never notice; it would hold the old shared memory for good.
        self._end_held()
        return node, killed_at

    def kill_patroni_and_postgres_of_leader(self):
        """SIGKILLs the primary's Patroni, then its postmaster: the node is gone until `heal`, and
        the other takes over once the leader key expires (ttl). Returns (node, time of the kill)."""
        node = poll(self.leader, 30, "a leader")
        postmaster = poll(lambda: self.postmaster_pid(node), 10, "the primary's postmaster.pid")
        killed_at = time.time()
        os.kill(self.pids[f"patroni-{node}"], signal.SIGKILL)
        os.kill(postmaster, signal.SIGKILL)
        self._end_held()
        return node, killed_at

    def wait_for_new_leader(self, old, timeout=60):
        """Waits until a node other than `old` is primary; returns it."""
        return poll(lambda: (lambda n: n if n and n != old else None)(self.leader()), timeout,
                    f"a new primary after {old}")

    def heal(self, timeout=180):
        """Starts Patroni again on a node where it is dead, and waits until the cluster is whole."""
        for node in NODES:
            if not self.patroni_alive(node):
                self.start_patroni(node)
        self.wait_healthy(timeout)

    def healthy(self):
        """True when one node is primary, the other streams from it (and is its synchronous standby
        in synchronous mode), HAProxy sends connections to the primary alone, and one through it
        reaches that writable primary."""
        members = self.members()
        if sorted(m["name"] for m in members) != list(NODES) or any(m["state"] != "running" for m in members):
            return False
        standby = "sync_standby" if self.synchronous else "replica"
        if sorted(m["role"] for m in members) != sorted(["leader", standby]):
            return False
        leader = next(m["name"] for m in members if m["role"] == "leader")
        expected = "sync" if self.synchronous else "async"
        streaming = self.psql("SELECT application_name || ' ' || sync_state FROM pg_stat_replication WHERE state = 'streaming'",
                              database="postgres", node=leader, check=False).split("\n")
        if f"{self.other(leader)} {expected}" not in streaming or self.routed() != [leader]:
            return False
        return self.psql("SELECT pg_is_in_recovery() || ' ' || inet_server_port()", database="postgres",
                         check=False).strip() == f"false {self.ports[leader + '_pg']}"

    def wait_healthy(self, timeout=120):
        poll(self.healthy, timeout, "the cluster to be whole (a primary and a streaming standby)", interval=0.25)

    def psql(self, sql, database=None, node=None, check=True):
        """Runs `sql` through HAProxy (or straight at `node`); returns psql's unaligned output."""
        port = self.ports[f"{node}_pg"] if node else self.ports["haproxy"]
        done = subprocess.run([os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database or self.database,
                               "-c", sql], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, PGCONNECT_TIMEOUT="3"))
        if check and done.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {done.stderr.strip()}")
        return done.stdout if done.returncode == 0 else ""

    def haproxy(self, command):
        """Runs one command on HAProxy's admin socket (`show servers state`, `disable health
        primary/node0`, …) and returns its answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(os.path.join(self.folder, "haproxy.sock"))
            s.sendall(command.encode() + b"\n")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        return answer.decode()

    def routed(self):
        """The nodes HAProxy sends new connections to: up, and not in maintenance."""
        up = []
        for line in self.haproxy("show servers state primary").splitlines():
            fields = line.split()
            # be_id be_name srv_id srv_name srv_addr srv_op_state (2: running) srv_admin_state (0) …
            if len(fields) > 6 and not line.startswith("#") and fields[5] == "2" and fields[6] == "0":
                up.append(fields[3])
        return sorted(up)

    def diagnostics(self, lines=40):
        """What to read when something went wrong: Patroni's view and the end of every log."""
        text = [f"cluster in {self.folder}: members {json.dumps(self.members())}"]
        if self.folder:
            for log in sorted(glob.glob(os.path.join(self.folder, "*.log"))
                              + glob.glob(os.path.join(self.folder, "node*", "pglog", "*.log"))):
                try:
                    with open(log, errors="replace") as f:
                        tail = f.readlines()[-lines:]
                except OSError:
                    continue
                text.append(f"--- {log} (last {len(tail)} lines)\n" + "".join(tail))
            for log in sorted(glob.glob(os.path.join(self.folder, "node*", "pglog", "*.log"))):
                with open(log, errors="replace") as f:
                    errors = [line for line in f if " ERROR: " in line][-lines:]
                if errors:
                    text.append(f"--- {log}: its last {len(errors)} errors\n" + "".join(errors))
        return "\n".join(text)

    # ----- internals -----

    def _postgres_user(self):
        """(uid, gid) to run etcd, Patroni and PostgreSQL as: `postgres` when we are root, else us."""
        if os.getuid() != 0:
            return None
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
            entry = pwd.getpwnam("postgres")
        return entry.pw_uid, entry.pw_gid

    def _chown(self, path):
        if self._owner:
            os.chown(path, *self._owner)

    def _spawn(self, name, argv, cwd, as_owner):
        """Starts one process in a session of its own, its output appended to `name`.log."""
        log = open(os.path.join(self.folder, f"{name}.log"), "ab")
        user = {}
        if as_owner and self._owner:
            user = dict(user=self._owner[0], group=self._owner[1], extra_groups=[])
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "HOME": cwd, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True, **user)
        log.close()
        self.processes[name] = process
        self.pids[name] = process.pid
        self._write_state()
        return process

    def _kill(self, name):
        pid = self.pids.get(name)
        if pid:
            self._kill_pid(pid, self.folder)
        process = self.processes.get(name)
        if process:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    @staticmethod
    def _kill_pid(pid, marker):
        """SIGKILLs `pid` and its process group, if its command line names `marker` (our folder), so
        a PID reused by someone else's process is left alone."""
        if not alive(pid) or marker not in cmdline(pid):
            return
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        deadline = time.time() + 10
        while alive(pid) and time.time() < deadline:
            time.sleep(0.05)

    def _write_state(self):
        with open(os.path.join(self.folder, "cluster.json"), "w") as f:
            json.dump({"ports": self.ports, "pids": self.pids, "synchronous": self.synchronous,
                       "database": self.database, "url": self.url if "haproxy" in self.ports else None}, f, indent=2)

    def _patroni_config(self, node):
        folder = os.path.join(self.folder, node)
        pg, rest = self.ports[f"{node}_pg"], self.ports[f"{node}_rest"]
        hba = ["local all all trust", "host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust"]
        return {
            "scope": "fletcher-ha",
            "namespace": "/fletcher-ha/",
            "name": node,
            "log": {"level": "INFO"},
            "restapi": {"listen": f"127.0.0.1:{rest}", "connect_address": f"127.0.0.1:{rest}"},
            "etcd3": {"hosts": [f"127.0.0.1:{self.ports['etcd_client']}"]},
            "bootstrap": {
                "dcs": {
                    "ttl": 10,
                    "loop_wait": 2,
                    "retry_timeout": 4,
                    "maximum_lag_on_failover": 16 * 1024 * 1024,
                    "primary_start_timeout": 0,
                    "synchronous_mode": self.synchronous,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "parameters": {
                            "max_connections": self.max_connections,
                            "synchronous_commit": "on",
                            "wal_log_hints": "on",
                            "wal_keep_size": "256MB",
                            "max_wal_senders": 10,
                            "max_replication_slots": 10,
                            "hot_standby": "on",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "no-sync"],
                "pg_hba": hba,
            },
            "postgresql": {
                "listen": f"127.0.0.1:{pg}",
                "connect_address": f"127.0.0.1:{pg}",
                "data_dir": os.path.join(folder, "data"),
                "bin_dir": self.bin,
                "pgpass": os.path.join(folder, "pgpass"),
                "authentication": {"superuser": {"username": "postgres"}, "replication": {"username": "replicator"}},
                "pg_hba": hba,
                "remove_data_directory_on_rewind_failure": True,
                "remove_data_directory_on_diverged_timelines": True,
                "parameters": {
                    "unix_socket_directories": folder,
                    "logging_collector": "on",
                    "log_directory": os.path.join(folder, "pglog"),
                    "log_filename": "postgresql.log",
                    "log_line_prefix": "%m [%p] %q%u@%d %r ",
                    # Who connected to which node, and when: a client on a standby shows here.
                    "log_connections": "on",
                },
            },
            "watchdog": {"mode": "off"},
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }

    def _haproxy_config(self):
        servers = "\n".join(
            f"    server {node} 127.0.0.1:{self.ports[node + '_pg']} check port {self.ports[node + '_rest']}"
            for node in NODES)
        return f"""global
    maxconn 2000
    stats socket {self.folder}/haproxy.sock mode 600 level admin

defaults
    mode tcp
    retries 2
    timeout connect 3s
    timeout client 30m
    timeout server 30m
    timeout check 2s

# Connections go to the node whose Patroni answers /primary with 200; a node marked down has its
# sessions cut, so nobody keeps talking to a demoted primary.
listen primary
    bind 127.0.0.1:{self.ports['haproxy']}
    maxconn 1000
    option httpchk OPTIONS /primary
    http-check expect status 200
    default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 1 on-marked-down shutdown-sessions
{servers}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "status", "kill-postgres", "kill-node", "heal"])
    parser.add_argument("folder")
    parser.add_argument("--async", dest="asynchronous", action="store_true", help="asynchronous replication")
    arguments = parser.parse_args()
    if arguments.command == "start":
        if os.path.exists(arguments.folder) and os.listdir(arguments.folder):
            parser.error(f"{arguments.folder} is not empty")
        cluster = Cluster(folder=arguments.folder, synchronous=not arguments.asynchronous).start()
        print(cluster.url)
        return
    cluster = Cluster.attach(arguments.folder)
    if arguments.command == "stop":
        cluster.stop()
    elif arguments.command == "status":
        print(json.dumps({"url": cluster.url, "leader": cluster.leader(), "members": cluster.members()}, indent=2))
    elif arguments.command == "kill-postgres":
        print(cluster.kill_postgres_of_leader()[0])
    elif arguments.command == "kill-node":
        print(cluster.kill_patroni_and_postgres_of_leader()[0])
    elif arguments.command == "heal":
        cluster.heal()
        print(cluster.leader())


if __name__ == "__main__":
    main()
