"""The `dispatch.after_send` failpoint at the process level: a server that dies right after a
platform answered, before recording the answer, loses nothing; its successor sends the trigger
again with the same id and the platform starts one job. On each engine. Polls with deadlines; no
fixed sleeps."""
import signal

import pytest

from conftest import API
from servers import Fletcher, eventually


def deliveries(api, dataset, product):
    events = api.call("GET", f"/api/data_product/{dataset}/{product}/history?limit=100")["events"]
    return [e for e in events if e["kind"] == "delivery"]


def test_a_process_killed_after_the_answer_before_recording_it_loses_nothing(database, platform):
    # Lease 2 x 5 + 1 s: the successor sends again once it has expired.
    targets = {"cams": {"url": platform.url, "timeout_s": 5}}
    server = Fletcher(database, targets, extra_env={"FLETCHER_FAILPOINTS": "dispatch.after_send=kill"})
    try:
        api = API(server.base)
        platform.hold.clear()  # answered only once the submission's own answer is in
        dataset, ids = api.submit([("job", True)])
        eventually(platform.held.is_set, what="the trigger at the platform")
        platform.hold.set()
        server.process.wait(timeout=60)  # answered, then the failpoint kills the process
        assert server.process.returncode == -signal.SIGKILL
        first = platform.requests()
        assert len(first) == 1 and first[0][3] == 1

        del server.env["FLETCHER_FAILPOINTS"]
        server.start()  # same database, no failpoint
        api = API(server.base)
        eventually(lambda: any(d["http_status"] == 202 for d in deliveries(api, dataset, ids[0])), timeout=90,
                   what="the delivery by the successor")
        requests = platform.requests()
        assert len(requests) == 2
        assert requests[1][1] == requests[0][1] and requests[1][2] == requests[0][2], "same trigger id and key"
        assert requests[1][3] == 2
        assert platform.jobs() == 1
        # Only the successor's attempt is on record: the dead process recorded nothing of its own.
        assert [(d["attempt"], d["http_status"]) for d in deliveries(api, dataset, ids[0])] == [(2, 202)]
        product = api.plan(dataset)["data_products"][0]
        assert product["state"] == "queued" and product["run_id"] is not None
    finally:
        server.stop()
