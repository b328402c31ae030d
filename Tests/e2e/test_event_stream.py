"""The event feed as server-sent events (docs/RULES.md rule 28; `GET /api/events/stream` in
openapi.yaml, Sources/FletcherHTTP/EventRoutes.swift), across processes: two `fletcher serve`
processes on one PostgreSQL database. The stream is read from process A over a raw socket (HTTP/1.1,
chunked or not, parsed here) with short socket timeouts and overall deadlines, so a hang fails
instead of blocking; every change is made through process B.

What is checked:
- a stream opened without Last-Event-ID starts at the feed's end and then gets B's changes live
  (each read before the next change is made), in the feed's order, each message's `id` the feed
  cursor of its event (GET /api/events), `event` its type and `data` its whole JSON;
- closed, then resumed with Last-Event-ID (which wins over `after`), it gets exactly the events
  written meanwhile — none missing, none twice — and then live ones again;
- the same after A is SIGKILLed (its stream ends) and a new process is started: resumed there
  with the last id, exactly the missed events;
- a Last-Event-ID (or `after`) that is no cursor is 400 problem+json; no token is 401.

Polls with deadlines; no fixed sleeps."""
import json
import signal
import socket
import time
import urllib.parse
import uuid

from conftest import API
from servers import Fletcher, eventually, send

READ_TIMEOUT = 30       # seconds an expected message may take to arrive (A hears B's commits by
                        # LISTEN/NOTIFY, or by the stream's 2 s poll)


class EventStream:
    """One `GET /api/events/stream` on a socket of its own: the response head, then messages parsed
    as they arrive (`id`, `event`, `data`; comment lines kept apart)."""

    def __init__(self, port, token, last_event_id=None, query=""):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.socket.settimeout(0.5)
        headers = [f"GET /api/events/stream{query} HTTP/1.1", f"Host: 127.0.0.1:{port}",
                   f"Authorization: Bearer {token}", "Accept: text/event-stream"]
        if last_event_id is not None:
            headers.append(f"Last-Event-ID: {last_event_id}")
        self.socket.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
        self.raw = b""          # bytes received, not yet decoded from their chunks
        self.text = b""         # the body so far, not yet parsed into messages
        self.ended = False      # the server closed the connection (or ended the chunked body)
        self.comments = []
        self.messages = []      # parsed, not yet taken
        deadline = time.time() + READ_TIMEOUT
        while b"\r\n\r\n" not in self.raw:
            self._receive(deadline, "the response head")
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"

    def _receive(self, deadline, what):
        while True:
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            try:
                data = self.socket.recv(65536)
            except socket.timeout:
                continue
            if not data:
                self.ended = True
            self.raw += data
            return

    def _decode(self):
        """Moves whole chunks (or everything, when not chunked) from `raw` to `text`."""
        if not self.chunked:
            self.text, self.raw = self.text + self.raw, b""
            return
        while b"\r\n" in self.raw:
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                self.ended = True
                self.raw = b""
                return
            if len(rest) < size + 2:
                return
            self.text += rest[:size]
            self.raw = rest[size + 2:]

    def _parse(self):
        while b"\n\n" in self.text:
            block, self.text = self.text.split(b"\n\n", 1)
            message = {}
            for line in block.decode().split("\n"):
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                message[field] = message.get(field, "") + ("\n" if field in message else "") + value
            if message:
                self.messages.append({"id": message.get("id"), "event": message.get("event"),
                                      "data": json.loads(message["data"])})

    def _take_in(self):
        self._decode()
        self._parse()

    def read(self, count, timeout=READ_TIMEOUT, what="messages"):
        """The next `count` messages; fails if they do not all come within `timeout` seconds."""
        deadline = time.time() + timeout
        self._take_in()                 # what came with the head, or with earlier messages
        while len(self.messages) < count:
            if self.ended:
                raise AssertionError(f"the stream ended after {len(self.messages)} of {count} {what}")
            self._receive(deadline, f"{count} {what} (got {len(self.messages)})")
            self._take_in()
        taken, self.messages = self.messages[:count], self.messages[count:]
        return taken

    def wait_comment(self, prefix, timeout=READ_TIMEOUT):
        """Waits for a comment line starting with `prefix` (the stream's opening one); returns it."""
        deadline = time.time() + timeout
        self._take_in()
        while not any(c.startswith(prefix) for c in self.comments):
            self._receive(deadline, f"a comment '{prefix}…'")
            self._take_in()
        return next(c for c in self.comments if c.startswith(prefix))

    def wait_end(self, timeout=READ_TIMEOUT):
        """Waits until the server closes the stream; what came before is kept."""
        deadline = time.time() + timeout
        self._take_in()
        while not self.ended:
            try:
                self._receive(deadline, "the stream's end")
            except ConnectionResetError:
                self.ended = True
            self._take_in()

    def close(self):
        self.socket.close()


def feed_after(api, after, count):
    """The feed's events after cursor `after`, once it shows `count` of them (on PostgreSQL an event
    shows only once every older transaction has ended); fails if it ever shows more."""
    events = []

    def enough():
        events[:] = []
        cursor = after
        while True:
            page = api.call("GET", "/api/events?limit=1000" + (f"&after={urllib.parse.quote(cursor)}" if cursor else ""))
            if not page["events"]:
                return len(events) >= count
            events.extend(page["events"])
            cursor = page["next"]
    eventually(enough, timeout=30, what=f"{count} events in the feed")
    assert len(events) == count, [e["type"] for e in events]
    return events


def assert_same(messages, events):
    """The stream's messages are the feed's events: same order, `id` = cursor, `event` = type,
    `data` = the whole event."""
    assert [m["id"] for m in messages] == [e["cursor"] for e in events]
    assert [m["event"] for m in messages] == [e["type"] for e in events]
    assert [m["data"] for m in messages] == events


def submit(api, names, edges=()):
    dataset, ids = str(uuid.uuid4()), {n: str(uuid.uuid4()) for n in names}
    api.call("POST", "/api/plan", {
        "dataset": {"id": dataset, "extra": {}},
        "data_products": [{"id": ids[n], "compute": "cams", "name": n, "version": "1", "eager": False} for n in names],
        "dependencies": [{"parent_id": ids[p], "child_id": ids[c]} for p, c in edges]})
    return dataset, ids


def test_the_stream_is_live_resumable_and_survives_a_killed_process(postgres_database):
    a = b = a2 = None
    streams = []
    try:
        a, b = Fletcher(postgres_database), Fletcher(postgres_database)
        api_a, api_b = API(a.base), API(b.base)
        dataset, ids = submit(api_b, ["extract", "load"], [("extract", "load")])
        update = lambda name, state: api_b.call("PUT", f"/api/data_product/{dataset}/update",
                                                [{"id": ids[name], "state": state}])
        pause = lambda d, action: api_b.call("PUT", f"/api/plan/{d}/{action}")

        # 1. Live: opened at the feed's end, each change through B read on A before the next.
        stream = EventStream(a.port, api_a.token)
        streams.append(stream)
        assert stream.status == 200, stream.raw
        assert stream.headers["content-type"].startswith("text/event-stream")
        start = stream.wait_comment("events after ").split("events after ", 1)[1]
        changes = [(lambda: pause(dataset, "pause"), ["dataset.paused"]),
                   (lambda: pause(dataset, "unpause"), ["dataset.unpaused"]),
                   (lambda: update("extract", "success"), ["data_product.succeeded"]),
                   (lambda: update("load", "failed"), ["data_product.failed"]),
                   (lambda: update("load", "success"), ["data_product.succeeded", "dataset.succeeded"])]
        live = []
        for change, types in changes:
            change()
            got = stream.read(len(types), what=f"{types} live")
            assert [m["event"] for m in got] == types
            live += got
        assert_same(live, feed_after(api_b, start, len(live)))
        assert live[3]["data"]["data"]["final"] is True and live[3]["data"]["data_product_id"] == ids["load"]
        assert [m["data"]["sequence"] for m in live] == list(range(1, len(live) + 1))

        # 2. Closed, more changes (on two datasets), resumed with Last-Event-ID: exactly the missed.
        stream.close()
        last = live[-1]["id"]
        other, _ = submit(api_b, ["report"])
        update("extract", "failed")                  # load is reset to waiting: no event of its own
        pause(other, "pause")
        update("extract", "success")
        pause(dataset, "pause")
        missed = feed_after(api_b, last, 4)
        assert [e["type"] for e in missed] == ["data_product.failed", "dataset.paused", "data_product.succeeded",
                                               "dataset.paused"]
        # Last-Event-ID wins over `after` (here the stream's first start, which would repeat everything).
        stream = EventStream(a.port, api_a.token, last_event_id=last, query=f"?after={urllib.parse.quote(start)}")
        streams.append(stream)
        assert stream.status == 200
        assert_same(stream.read(len(missed), what="the missed events"), missed)
        # Then live again, and nothing was doubled in between: the next message is the next change.
        pause(other, "unpause")
        (next_message,) = stream.read(1, what="the next live event")
        assert_same([next_message], feed_after(api_b, missed[-1]["cursor"], 1))
        assert next_message["event"] == "dataset.unpaused" and next_message["data"]["dataset_id"] == other
        last = next_message["id"]

        # 3. A dies without a word: its stream ends. Changes meanwhile; a new process resumes.
        a.signal(signal.SIGKILL)
        a.process.wait()
        stream.wait_end()
        pause(dataset, "unpause")
        update("load", "success")
        pause(other, "pause")
        missed = feed_after(api_b, last, 4)
        assert [e["type"] for e in missed] == ["dataset.unpaused", "data_product.succeeded", "dataset.succeeded",
                                               "dataset.paused"]
        a2 = Fletcher(postgres_database)
        stream = EventStream(a2.port, API(a2.base).token, last_event_id=last)
        streams.append(stream)
        assert stream.status == 200
        assert_same(stream.read(len(missed), what="the events missed while A was dead"), missed)
        pause(other, "unpause")
        (next_message,) = stream.read(1, what="the next live event on the new process")
        assert_same([next_message], feed_after(api_b, missed[-1]["cursor"], 1))
    finally:
        for stream in streams:
            stream.close()
        for server in (a, b, a2):
            if server:
                server.stop()


def test_a_bad_last_event_id_is_400_problem_json(postgres_database):
    server = Fletcher(postgres_database)
    try:
        api = API(server.base)
        for headers, query in [({"Last-Event-ID": "not-a-cursor"}, ""), ({"Last-Event-ID": ""}, ""),
                               ({}, "?after=12-x")]:
            status, content_type, body, _ = send(server.port, "GET", "/api/events/stream" + query, token=api.token,
                                                 headers=dict(headers, Accept="text/event-stream"))
            assert status == 400, (headers, query, body)
            assert content_type.startswith("application/problem+json")
            problem = json.loads(body)
            assert problem["status"] == 400 and problem["title"] and problem["detail"]
            if headers:
                assert "Last-Event-ID" in problem["detail"]
        status, content_type, body, _ = send(server.port, "GET", "/api/events/stream",
                                             headers={"Last-Event-ID": "not-a-cursor"})
        assert status == 401, body
    finally:
        server.stop()
