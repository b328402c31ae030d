"""Fletcher's container image (Containerfile, scripts/image.sh), run with podman: on SQLite in its
/data volume and on PostgreSQL, as the non-root user, healthy, stopped gracefully."""
import json
import os

from conftest import IMAGE_UID, RUN_LIMITS, Client, free_port, podman, send

# The size the image must stay under, in bytes (podman's count, uncompressed).
MAX_IMAGE_BYTES = 150_000_000
STOP_TIMEOUT_S = 30


def config(image):
    return json.loads(podman("image", "inspect", image).stdout)[0]


def test_the_image_is_small_runs_as_a_fixed_user_and_says_what_it_is(image):
    # Given the image scripts/image.sh built
    inspected = config(image)
    settings = inspected["Config"]

    # Then it stays small, runs as uid 10001 with its data in /data, and carries its health check
    size = inspected["Size"]
    print(f"\nimage {image}: {size / 1e6:.1f} MB")
    assert size < MAX_IMAGE_BYTES
    assert settings["User"] == f"{IMAGE_UID}:{IMAGE_UID}"
    assert "/data" in settings["Volumes"]
    assert "3000/tcp" in settings["ExposedPorts"]
    assert "DATABASE_URL=sqlite:/data/fletcher.sqlite" in settings["Env"]
    assert inspected["Healthcheck"]["Test"][0] == "CMD"
    assert settings["Entrypoint"] == ["/usr/local/bin/fletcher"] and settings["Cmd"] == ["serve"]

    # And its labels name the version the binary reports, the commit, the source and the licence
    labels = settings["Labels"]
    version = podman("run", "--rm", "--network=none", *RUN_LIMITS, image, "--version").stdout.split()[0]
    assert labels["org.opencontainers.image.version"] == version
    assert len(labels["org.opencontainers.image.revision"]) == 40
    assert "org.opencontainers.image.source" in labels
    assert labels["org.opencontainers.image.licenses"]


def test_on_sqlite_in_its_volume_the_server_keeps_plans_and_stops_gracefully(image, image_credentials, containers,
                                                                              volume):
    # Given the image started with a named volume at /data and the default DATABASE_URL
    container = containers(image_credentials, volume=volume).start()
    print(f"\nstart-up on SQLite (podman start → /health 200): {container.startup_seconds:.2f} s")

    # When a plan is submitted through the API
    api = Client(container.port)
    dataset, ids = api.submit_plan()

    # Then it reads back, its page draws the graph (Graphviz in the image: two edges), and the database file
    # is in the volume, owned by the server's uid
    plan = api.call("GET", f"/api/plan/{dataset}")
    assert sorted(p["id"] for p in plan["data_products"]) == sorted(ids)
    status, page = send(container.port, "GET", f"/plan/{dataset}")
    assert status == 200 and page.count(b'class="edge"') == 2
    mountpoint = podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip()
    assert os.stat(os.path.join(mountpoint, "fletcher.sqlite")).st_uid == IMAGE_UID

    # And the server process runs as uid 10001, not root
    pid = container.inspect("{{.State.Pid}}")
    with open(f"/proc/{pid}/status") as status_file:
        uids = next(line for line in status_file if line.startswith("Uid:")).split()[1:]
    assert uids == [str(IMAGE_UID)] * 4

    # And the image's HEALTHCHECK passes
    assert container.healthcheck() == (0, "healthy")

    # When podman stops it: SIGTERM, a graceful shutdown, exit 0 well before the SIGKILL
    code, seconds = container.stop(timeout=STOP_TIMEOUT_S)
    print(f"graceful stop on SQLite: {seconds:.2f} s")
    assert code == 0, container.logs()[-3000:]
    assert seconds < STOP_TIMEOUT_S

    # Then a new container on the same volume serves the same plan
    again = containers(image_credentials, volume=volume).start()
    assert Client(again.port).call("GET", f"/api/plan/{dataset}")["dataset"]["id"] == dataset
    assert again.stop(timeout=STOP_TIMEOUT_S)[0] == 0


def test_on_postgresql_the_server_keeps_plans_and_stops_gracefully(image, image_credentials, containers,
                                                                   postgres_url):
    # Given the image started on the throwaway PostgreSQL (the host's loopback address)
    container = containers({**image_credentials, "DATABASE_URL": postgres_url}).start()
    print(f"\nstart-up on PostgreSQL (podman start → /health 200): {container.startup_seconds:.2f} s")
    health = json.loads(send(container.port, "GET", "/health")[1])
    assert health["database"] == "up"

    # When a plan is submitted
    api = Client(container.port)
    dataset, ids = api.submit_plan()

    # Then it reads back, and the image's HEALTHCHECK passes
    plan = api.call("GET", f"/api/plan/{dataset}")
    assert sorted(p["id"] for p in plan["data_products"]) == sorted(ids)
    assert container.healthcheck() == (0, "healthy")

    # And podman stops it gracefully
    code, seconds = container.stop(timeout=STOP_TIMEOUT_S)
    print(f"graceful stop on PostgreSQL: {seconds:.2f} s")
    assert code == 0, container.logs()[-3000:]

    # And another container finds the plan in the database
    again = containers({**image_credentials, "DATABASE_URL": postgres_url}).start()
    assert Client(again.port).call("GET", f"/api/plan/{dataset}")["dataset"]["id"] == dataset
    assert again.stop(timeout=STOP_TIMEOUT_S)[0] == 0


def test_the_health_check_fails_while_the_database_cannot_be_reached(image, image_credentials, containers):
    # Given a server whose PostgreSQL does not answer (nothing listens on the port)
    unreachable = f"postgres://fletcher@127.0.0.1:{free_port()}/nowhere?sslmode=disable"
    container = containers({**image_credentials, "DATABASE_URL": unreachable}).start(want=503)

    # Then the image's HEALTHCHECK fails: the container is unhealthy, not merely started
    code, status = container.healthcheck()
    assert code != 0 and status in ("starting", "unhealthy")


def test_a_bad_setting_stops_the_container_at_once_naming_the_variable(image):
    # When the image starts with a secret too short to sign tokens
    result = podman("run", "--rm", "--network=none", *RUN_LIMITS, "-e", "SECRET_KEY=short", "-e", "REMOTE_APIS=[]",
                    image, check=False)

    # Then it exits with EX_CONFIG, saying which variable is wrong
    assert result.returncode == 78, result.stdout + result.stderr
    assert "SECRET_KEY" in result.stderr
