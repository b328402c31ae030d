"""A compute platform on loopback for the dispatch tests: records every trigger, answers as told."""
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Platform:
    def __init__(self):
        self.lock = threading.Lock()
        self.received = []          # (time, trigger_id, idempotency_key, attempt, body)
        self.headers = []           # each request's headers, in the same order
        self.open = 0
        self.most_open = 0
        self.hold = threading.Event()
        self.hold.set()             # cleared: requests wait until it is set again
        self.held = threading.Event()
        self.delay = 0.0
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with platform.lock:
                    platform.received.append((time.time(), body.get("trigger_id"), self.headers.get("Idempotency-Key"),
                                              body.get("attempt"), body))
                    platform.headers.append(dict(self.headers))
                    platform.open += 1
                    platform.most_open = max(platform.most_open, platform.open)
                if not platform.hold.is_set():
                    platform.held.set()
                    platform.hold.wait()
                if platform.delay:
                    time.sleep(platform.delay)
                answer = json.dumps({"run_id": str(uuid.uuid4()), "link": "http://platform.test/run"}).encode()
                try:
                    self.send_response(202)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with platform.lock:
                        platform.open -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jobs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def jobs(self):
        with self.lock:
            return len({key for _, _, key, _, _ in self.received})

    def requests(self):
        with self.lock:
            return list(self.received)

    def close(self):
        self.hold.set()
        self.server.shutdown()
