"""A fault-injecting TCP proxy between Fletcher and PostgreSQL, started in-process by the tests of
Tests/ha: it listens on a free loopback port, forwards every connection to the database, and can,
switched at run time from the test's thread:

- add latency to every chunk forwarded, per direction (`set_latency`);
- stall: hold every byte, in both directions, on every connection (new ones included) while
  keeping them open, and deliver what it held, in order, on `resume` (`stall`);
- reset every open connection with an RST on both sides (`reset_all`);
- go half-open, like a dead network path: nothing is forwarded and nothing is ever closed, so both
  ends see silence; connections open at the time stay that way for good, those accepted meanwhile
  never reach the database, and after `heal` new connections work again (`half_open`);
- act on one transaction (a predicate on what its statements say and bind, e.g.
  `writes_to(dataset_id)`): lose its commit, or lose the answer to its commit, resetting the client
  side so that Fletcher cannot know whether it committed (`trap_commit`), or hold its connection
  after a statement, in the middle of the transaction (`hold_transaction`).

To find transactions it reads the PostgreSQL wire protocol (version 3) in both directions: the
frontend's Query ('Q'), Parse ('P', kept per connection by statement name, so that a named prepared
statement executed later by Bind alone is known by its text), Bind ('B', with its parameter
bytes) and Sync ('S'); the backend's CommandComplete ('C'), ErrorResponse ('E') and
ReadyForQuery ('Z'). A statement outside BEGIN … COMMIT is a transaction of its own, committed
when the server runs it. An encrypted connection (SSLRequest answered 'S') is forwarded without
being read: traps never fire on it. Bytes are forwarded a whole message at a time.

Everything runs on one asyncio loop in a daemon thread; the controls are called from any thread and
return once the loop has applied them."""
import asyncio
import re
import socket
import struct
import threading
import time
import uuid

UP, DOWN = "client→server", "server→client"

# The first word of a startup-phase message: what the frontend asks for.
_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST = 80877103, 80877104, 80877102
# A statement that writes: INSERT INTO, UPDATE t SET, DELETE FROM, COPY … FROM (not SELECT … FOR UPDATE).
_WRITES = re.compile(r"\b(INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM|COPY\s+\S+)", re.IGNORECASE)


class Message:
    """One wire-protocol message: its type byte as a one-character string ('' for the startup
    phase's untyped messages and for bytes forwarded unread), its body, and its bytes as sent."""
    __slots__ = ("kind", "body", "raw")

    def __init__(self, kind, body, raw):
        self.kind, self.body, self.raw = kind, body, raw


class WireReader:
    """Splits one direction of a connection into messages. The frontend starts untyped (length,
    then body: the startup message, SSLRequest, CancelRequest) until its startup message; the backend
    answers an SSLRequest or GSSENCRequest with a single byte (`single_bytes` counts those owed).
    Once the connection is encrypted (`opaque`), bytes are passed on as they come."""

    def __init__(self, typed):
        self.typed = typed
        self.single_bytes = 0
        self.opaque = False
        self._buffer = bytearray()

    def feed(self, data):
        if self.opaque:
            return [Message("", b"", bytes(data))]
        self._buffer += data
        messages = []
        while True:
            buffer = self._buffer
            if self.single_bytes and buffer:
                self.single_bytes -= 1
                messages.append(Message("answer", bytes(buffer[:1]), bytes(buffer[:1])))
                del buffer[:1]
                if self.opaque:  # the rest is encrypted
                    if buffer:
                        messages.append(Message("", b"", bytes(buffer)))
                        buffer.clear()
                    return messages
                continue
            header = 5 if self.typed else 4
            if len(buffer) < header:
                return messages
            length = struct.unpack_from("!i", buffer, header - 4)[0]
            end = header - 4 + length
            if length < 4 or len(buffer) < end:
                return messages
            kind = chr(buffer[0]) if self.typed else ""
            messages.append(Message(kind, bytes(buffer[header:end]), bytes(buffer[:end])))
            del buffer[:end]


def _cstrings(body, count):
    """The first `count` NUL-terminated strings of `body`, and the offset after them."""
    strings, offset = [], 0
    for _ in range(count):
        end = body.index(b"\0", offset)
        strings.append(body[offset:end].decode("utf-8", "replace"))
        offset = end + 1
    return strings, offset


def _normalized(text):
    return " ".join(text.replace(";", " ").split()).upper()


class Transaction:
    """What one transaction said on a connection so far: how it began (None for a statement run on
    its own), its statements' texts and the bytes of every parameter it bound."""

    def __init__(self, begin):
        self.begin = begin
        self.statements = []
        self.parameters = bytearray()

    @property
    def read_only(self):
        return self.begin is not None and "READ ONLY" in _normalized(self.begin)

    @property
    def writes(self):
        return not self.read_only and any(_WRITES.search(s) for s in self.statements)

    def mentions(self, value):
        """Whether a bound parameter or a statement holds `value` (a UUID matches in binary or text)."""
        if isinstance(value, uuid.UUID):
            return value.bytes in self.parameters or self.mentions(str(value))
        needle = value.encode() if isinstance(value, str) else value
        return needle in self.parameters or any(needle.decode() in s for s in self.statements)

    def __repr__(self):
        return f"Transaction(begin={self.begin!r}, statements={[s[:60] for s in self.statements]!r})"


def writes_to(dataset_id):
    """A trap predicate: the transaction writes and binds (or names) `dataset_id`."""
    dataset = uuid.UUID(str(dataset_id))
    return lambda transaction: transaction.writes and transaction.mentions(dataset)


class Trap:
    """One armed action on the next transaction `match` accepts. `fired` is set when it caught one,
    `done` once the action is complete; `transaction` is what it caught; for a commit trap,
    `committed` is what the server made of it (True, False, or None if that could not be seen)."""

    def __init__(self, action, match):
        self.action = action
        self.match = match
        self.fired = threading.Event()
        self.done = threading.Event()
        self.transaction = None
        self.committed = None
        self.server_said = None
        self._connection = None
        self._proxy = None

    def release(self):
        """`hold_transaction`: lets the held connection's bytes flow again (both directions)."""
        if self._connection is not None:
            self._proxy._on_loop(self._connection.unhold)

    def __repr__(self):
        return (f"Trap({self.action}, fired={self.fired.is_set()}, committed={self.committed}, "
                f"server_said={self.server_said!r})")


class _Connection:
    """One client connection and its connection to the server, with a pump per direction: a reader
    that splits what arrives into messages, inspects the frontend's, and queues them with the time
    they are due; and a writer that sends them when due and while the connection is not stalled."""

    def __init__(self, proxy, number, client_reader, client_writer):
        self.proxy = proxy
        self.number = number
        self.client_reader, self.client_writer = client_reader, client_writer
        self.server_reader = self.server_writer = None
        self.silent = False      # half-open: forwards nothing, never closes
        self.held = False        # `hold_transaction`: stalled on its own
        self.go = asyncio.Event()  # set while bytes may flow: neither the proxy nor this connection stalled
        self.queues = {UP: asyncio.Queue(), DOWN: asyncio.Queue()}
        self.readers = {UP: WireReader(typed=False), DOWN: WireReader(typed=True)}
        self.ended = set()       # directions whose end (FIN) was forwarded
        self.tasks = []
        self.closed = False
        self.prepared = {}       # statement name -> text
        self.transaction = None  # the explicit transaction in progress
        self.after_sync = []     # actions to queue once the next Sync (or Query) is forwarded
        self.cut_off = False     # a commit trap fired here: the client's bytes after the commit are not read
        self.commit_trap = None  # that trap, once the commit reached the server: watching its answer
        self.refresh()

    def refresh(self):
        if self.proxy.stalled or self.held:
            self.go.clear()
        else:
            self.go.set()

    def unhold(self):
        self.held = False
        self.refresh()

    # What happens to a connection.

    def reset(self):
        """Closes both sides at once with an RST (SO_LINGER 0), dropping what is queued."""
        if self.closed:
            return
        self.closed = True
        for writer in (self.client_writer, self.server_writer):
            if writer is None:
                continue
            sock = writer.get_extra_info("socket")
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            writer.transport.abort()
        self._finish()

    def reset_client(self):
        """An RST to the client only; the server side is closed by its caller."""
        sock = self.client_writer.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.client_writer.transport.abort()

    def _finish(self):
        self.closed = True
        self.proxy._connections.discard(self)
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()

    def _close_gracefully(self):
        for writer in (self.client_writer, self.server_writer):
            if writer is not None:
                writer.close()
        self._finish()

    # The pumps.

    async def run(self, host, port):
        if self.proxy.half_opened:
            # The path is dead: the connection is accepted and never answered; the server never
            # hears of it.
            self.silent = True
        else:
            try:
                self.server_reader, self.server_writer = await asyncio.open_connection(host, port)
            except OSError:
                self.reset()
                return
            if self.closed:  # reset while it connected
                self.server_writer.transport.abort()
                return
            self.server_writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client_writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._read(UP)), loop.create_task(self._write(UP))]
        if self.server_reader is not None:
            self.tasks += [loop.create_task(self._read(DOWN)), loop.create_task(self._write(DOWN))]
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def _queue(self, direction, kind, payload=None, due=0.0):
        self.queues[direction].put_nowait((kind, due, payload))

    async def _read(self, direction):
        source = self.client_reader if direction == UP else self.server_reader
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await source.read(65536)
            except (ConnectionError, OSError):
                self._queue(direction, "reset")
                return
            if self.closed:
                return
            if not data:
                self._queue(direction, "eof")
                return
            if self.silent:
                continue
            due = loop.time() + self.proxy.latency[direction]
            batch = bytearray()
            for message in self.readers[direction].feed(data):
                verdict = self._inspect_up(message) if direction == UP else self._inspect_down(message)
                if verdict == "drop-rest":
                    # This message and everything after it is never forwarded.
                    if batch:
                        self._queue(direction, "data", bytes(batch), due)
                    for action in self.after_sync:
                        self._queue(direction, "call", action)
                    self.after_sync = []
                    return
                if verdict == "drop":
                    continue
                batch += message.raw
                if direction == UP and message.kind in ("Q", "S") and self.after_sync:
                    self._queue(direction, "data", bytes(batch), due)
                    batch = bytearray()
                    for action in self.after_sync:
                        self._queue(direction, "call", action)
                    self.after_sync = []
                    if self.cut_off:
                        return  # the client is being cut off: nothing more of it is read
            if batch:
                self._queue(direction, "data", bytes(batch), due)

    async def _write(self, direction):
        target = self.server_writer if direction == UP else self.client_writer
        loop = asyncio.get_running_loop()
        queue = self.queues[direction]
        while True:
            kind, due, payload = await queue.get()
            if kind == "call":
                payload()
                if self.closed:
                    return
                continue
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await self.go.wait()
            if self.silent or self.closed:
                continue
            try:
                if kind == "data":
                    target.write(payload)
                    await target.drain()
                elif kind == "eof":
                    # Half-closes; the connection is closed once both directions ended.
                    if target.can_write_eof():
                        target.write_eof()
                    self.ended.add(direction)
                    if len(self.ended) == 2 or self.server_writer is None:
                        self._close_gracefully()
                    return
                elif kind == "reset":
                    self.reset()
                    return
            except (ConnectionError, OSError):
                self.reset()
                return

    # Reading the protocol.

    def _inspect_up(self, message):
        """What the frontend's message means for the traps: None (forward it), "drop-rest"."""
        kind, body = message.kind, message.body
        if kind == "" and not self.readers[UP].typed:
            code = struct.unpack_from("!i", body, 0)[0] if len(body) >= 4 else 0
            if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                self.readers[DOWN].single_bytes += 1
            elif code != _CANCEL_REQUEST:
                self.readers[UP].typed = True
            return None
        try:
            if kind == "P":
                (name, text), _ = _cstrings(body, 2)
                self.prepared[name] = text
            elif kind == "Q":
                # A simple query may hold several statements (split naively: tests' SQL has no ';'
                # inside literals); they run in turn, in one implicit transaction unless they say BEGIN.
                text = body[:-1].decode("utf-8", "replace")
                verdicts = [self._statement(part, b"") for part in text.split(";") if part.strip()]
                return "drop-rest" if "drop-rest" in verdicts else None
            elif kind == "B":
                (_, name), offset = _cstrings(body, 2)
                return self._statement(self.prepared.get(name, ""), body[offset:])
        except (ValueError, struct.error):
            pass  # not a message this reader understands: forwarded as it is
        return None

    def _statement(self, text, parameters):
        """A statement about to run (Query, or Bind of a parsed one): tracks the transaction and
        lets an armed trap act on it."""
        words = _normalized(text)
        if words.startswith("BEGIN") or words.startswith("START TRANSACTION"):
            self.transaction = Transaction(text)
            return None
        if words in ("COMMIT", "END", "COMMIT WORK", "COMMIT TRANSACTION", "END WORK", "END TRANSACTION"):
            transaction, self.transaction = self.transaction, None
            return self._commit(transaction) if transaction is not None else None
        if (words.startswith("ROLLBACK") and not words.startswith("ROLLBACK TO")) or words.startswith("ABORT"):
            self.transaction = None
            return None
        transaction = self.transaction or Transaction(None)
        transaction.statements.append(text)
        transaction.parameters += parameters
        trap = self.proxy._take_trap("hold", transaction)
        if trap is not None:
            trap._connection = self

            def hold():
                self.held = True
                self.refresh()
                trap.done.set()
            self.after_sync.append(hold)
        if self.transaction is None:  # a statement on its own: it commits as it runs
            return self._commit(transaction)
        return None

    def _commit(self, transaction):
        for action in ("commit-lost", "answer-lost"):
            trap = self.proxy._take_trap(action, transaction)
            if trap is None:
                continue
            if action == "commit-lost":
                # The commit never reaches the server: both sides are reset, and the server rolls
                # the transaction back as its connection dies.
                def lose():
                    trap.committed = False
                    self.reset()
                    trap.done.set()
                self.after_sync.append(lose)
                return "drop-rest"
            # The commit goes through; from the moment it has reached the server, what the server
            # answers is kept from the client, whose side is reset once the server has answered
            # (or after 10 s).
            def watch():
                self.commit_trap = trap
                self.tasks.append(asyncio.get_running_loop().create_task(self._answer_deadline(trap)))
            self.cut_off = True
            self.after_sync.append(watch)
            return None
        return None

    def _inspect_down(self, message):
        """With a commit trap fired here: reads the server's answer to the commit, forwards none of
        it, and cuts the client off at its ReadyForQuery."""
        if message.kind == "answer" and message.body in (b"S", b"G"):
            self.readers[UP].opaque = self.readers[DOWN].opaque = True
        trap = self.commit_trap
        if trap is None:
            return None
        if message.kind == "C":
            trap.server_said = message.body.rstrip(b"\0").decode("utf-8", "replace")
            trap.committed = trap.server_said == "COMMIT" or trap.transaction.begin is None
        elif message.kind == "E":
            trap.server_said = "error: " + message.body.decode("utf-8", "replace").replace("\0", " ")
            trap.committed = False
        elif message.kind == "Z":
            self._cut_client(trap)
        return "drop"

    def _cut_client(self, trap):
        if trap.done.is_set():
            return
        self.reset_client()
        self.server_writer.close()
        self._finish()
        trap.done.set()

    async def _answer_deadline(self, trap):
        await asyncio.sleep(10)
        self._cut_client(trap)


class FaultProxy:
    """The proxy: `FaultProxy(host, port)` listens on 127.0.0.1 at `self.port`; `close()` ends it
    and every connection (also as a context manager)."""

    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.latency = {UP: 0.0, DOWN: 0.0}
        self.stalled = False
        self.half_opened = False
        self.accepted = 0
        self.resets = 0
        self._connections = set()
        self._traps = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultproxy", daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, "127.0.0.1", 0), self._loop).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # The controls.

    def set_latency(self, up=0.0, down=0.0):
        """Seconds added to every chunk forwarded client→server (`up`) and server→client (`down`)."""
        self._on_loop(lambda: self.latency.update({UP: up, DOWN: down}))

    def stall(self):
        """Holds every byte on every connection, new ones too, keeping them all open."""
        self._on_loop(self._set_stalled, True)

    def resume(self):
        """Ends `stall`: what was held is delivered in order."""
        self._on_loop(self._set_stalled, False)

    def half_open(self):
        """The path goes silent: nothing is forwarded on connections open now, ever, and none is
        closed; connections made meanwhile are accepted and never answered."""
        def go_silent():
            self.half_opened = True
            for connection in self._connections:
                connection.silent = True
        self._on_loop(go_silent)

    def heal(self):
        """New connections are forwarded again (those made silent stay silent)."""
        self._on_loop(lambda: setattr(self, "half_opened", False))

    def reset_all(self):
        """An RST to both sides of every open connection; returns how many there were."""
        def reset():
            connections = list(self._connections)
            for connection in connections:
                connection.reset()
            self.resets += len(connections)
            return len(connections)
        return self._on_loop(reset)

    def trap_commit(self, match, lose="answer"):
        """Arms a trap on the commit of the next transaction `match` accepts (an explicit COMMIT, or
        a statement run on its own). `lose="answer"`: the commit reaches the server, its answer
        never reaches the client, whose side is reset; `lose="commit"`: the commit never reaches the
        server, and both sides are reset."""
        assert lose in ("answer", "commit")
        return self._arm(Trap(f"{lose}-lost", match))

    def hold_transaction(self, match):
        """Arms a trap holding the connection of the next statement whose transaction `match`
        accepts, once that statement has reached the server: its answer and everything after
        it wait, in both directions, until `trap.release()` (or `reset_all`)."""
        return self._arm(Trap("hold", match))

    def disarm(self, trap):
        """Takes back a trap that has not fired (it may have fired meanwhile: look at `trap.fired`)."""
        self._on_loop(lambda: trap in self._traps and self._traps.remove(trap))

    def open_connections(self):
        return self._on_loop(lambda: len(self._connections))

    def close(self):
        """Stops listening, resets every connection and ends the loop's thread."""
        async def shut():
            self._server.close()
            for connection in list(self._connections):
                connection.reset()
            for trap in self._traps:
                trap.done.set()
            # Each connection's task ends once its pumps are cancelled; cancelling the task itself
            # would upset asyncio's stream server, which asks it for its exception.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if others:
                await asyncio.wait(others, timeout=5)
        try:
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    # On the loop.

    def _on_loop(self, function, *args):
        async def run():
            return function(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def _set_stalled(self, stalled):
        self.stalled = stalled
        for connection in self._connections:
            connection.refresh()

    def _arm(self, trap):
        trap._proxy = self
        self._on_loop(self._traps.append, trap)
        return trap

    def _take_trap(self, action, transaction):
        for trap in self._traps:
            if trap.action == action and trap.match(transaction):
                self._traps.remove(trap)
                trap.transaction = transaction
                trap.fired.set()
                return trap
        return None

    async def _accept(self, reader, writer):
        self.accepted += 1
        connection = _Connection(self, self.accepted, reader, writer)
        self._connections.add(connection)
        try:
            await connection.run(*self.target)
        except Exception:  # noqa: BLE001 — a proxy connection's failure ends that connection only
            connection.reset()
        finally:
            self._connections.discard(connection)


def wait_for(predicate, timeout, what):
    """Polls `predicate` every 20 ms; fails after `timeout` seconds."""
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
