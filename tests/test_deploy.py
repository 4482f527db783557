"""The deployment kit in deploy/, checked with the real tools on loopback.

The systemd unit goes through ``systemd-analyze``; the compose file, the
Dockerfile and .dockerignore are read and cross-checked (no Docker engine runs
here, so no image is built); the Caddyfile, haproxy.cfg and Postfix's main.cf
run for real, in front of two real gateway replicas that share one PostgreSQL
database and one key ring, as compose.yaml sets them up. The runbooks' key
rotations run against replicas that keep serving.

A missing tool (systemd-analyze, caddy, haproxy, postfix, unshare) skips its
test with the reason, unless ``OTPGATE_REQUIRE_DEPLOY_TOOLS=1`` (set by
``.ci/run``) makes that a failure. Validators that might resolve names run in
a network namespace of their own, so nothing here reaches past 127.0.0.0/8.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import smtplib
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import (
    OTPGATE,
    ROOT,
    create_database,
    drop_database,
    free_port,
    need_tool,
    running,
    wait_for_port,
)

DEPLOY = ROOT / "deploy"
ADMIN_KEY = "deploy-test-admin-key-0123456789"
INBOX_DOMAIN = "inbox.otpgate.test"
REPLICAS = ("gateway-a", "gateway-b")


def offline(*command: str) -> list[str]:
    """The command, run in an empty network namespace, so a name lookup cannot leave loopback."""
    return [need_tool("unshare", "util-linux"), "--net", *command]


# --- the systemd unit -------------------------------------------------------


def unit_for_checking(tmp_path: Path) -> Path:
    """A copy of the unit whose ExecStart names a binary that exists on this machine."""
    binary = Path(sys.executable).parent / "otpgate"
    if not binary.exists():
        binary = Path("/bin/true")
    text = (DEPLOY / "otpgate.service").read_text()
    assert "ExecStart=/opt/otpgate/venv/bin/otpgate serve" in text
    path = tmp_path / "otpgate.service"
    path.write_text(text.replace("/opt/otpgate/venv/bin/otpgate", str(binary)))
    return path


def unit_settings() -> dict[str, list[str]]:
    """The [Service] section as name -> every value given, in order."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in (DEPLOY / "otpgate.service").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            name, _, value = line.partition("=")
            found.setdefault(name, []).append(value)
    return found


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a single warning."""
    analyze = need_tool("systemd-analyze", "systemd")
    unit = unit_for_checking(tmp_path)
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stderr


def test_unit_is_rated_ok_by_systemd_analyze_security(tmp_path: Path) -> None:
    """`systemd-analyze security` rates the unit's exposure 1.5 or lower ("OK" or better)."""
    analyze = need_tool("systemd-analyze", "systemd")
    unit = unit_for_checking(tmp_path)
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if "offline" in result.stderr and result.returncode != 0:
        pytest.skip(f"this systemd-analyze cannot rate a unit file offline: {result.stderr}")
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= 1.5, result.stdout


def test_unit_confines_the_service_to_its_data_directory() -> None:
    """The unit runs as its own user, read-only but for the data dir, without privileges."""
    s = unit_settings()
    assert s["User"] == ["otpgate"] and s["Group"] == ["otpgate"]
    assert s["ProtectSystem"] == ["strict"]
    assert s["ReadWritePaths"] == ["/var/lib/otpgate"]
    assert s["StateDirectory"] == ["otpgate"] and s["StateDirectoryMode"] == ["0700"]
    assert "OTPGATE_DATA_DIR=/var/lib/otpgate" in s["Environment"]
    assert s["UMask"] == ["0077"]
    for name in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices"):
        assert s[name] == ["yes"], name
    assert s["CapabilityBoundingSet"] == [""] and s["AmbientCapabilities"] == [""]
    assert s["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert s["SystemCallFilter"][0] == "@system-service"
    # The key ring's 0600 is the gateway's own rule; nothing here may loosen it.
    assert not any(k.startswith("ReadOnlyPaths") or k == "DynamicUser" for k in s)


# --- the image ----------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def healthcheck_command() -> list[str]:
    """The image's HEALTHCHECK command (exec form), as a list."""
    (args,) = [a for k, a in final_stage() if k == "HEALTHCHECK"]
    command = json.loads(args[args.index("CMD") + 3 :].strip())
    assert isinstance(command, list)
    return [str(c) for c in command]


def test_dockerfile_runs_otpgate_serve_unprivileged() -> None:
    """The image is slim, installs into its own venv, runs `otpgate serve` as a non-root uid."""
    steps = dockerfile()
    froms = [a for k, a in steps if k == "FROM"]
    args = dict(a.split("=", 1) for k, a in steps if k == "ARG" and "=" in a)
    assert args["PYTHON_IMAGE"].endswith("-slim-bookworm")
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)
    assert any("python -m venv /opt/otpgate/venv" in a for k, a in steps if k == "RUN")
    final = final_stage()
    (user,) = [a for k, a in final if k == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    # The USER line comes before the commands the container runs.
    keywords = [k for k, _ in final]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    (entry,) = [json.loads(a) for k, a in final if k == "ENTRYPOINT"]
    (cmd,) = [json.loads(a) for k, a in final if k == "CMD"]
    assert entry == ["/opt/otpgate/venv/bin/otpgate"] and cmd == ["serve"]
    env = " ".join(a for k, a in final if k == "ENV")
    for setting in (
        "OTPGATE_HTTP=0.0.0.0:8080",
        "OTPGATE_SMTP=0.0.0.0:2525",
        "OTPGATE_DATA_DIR=/var/lib/otpgate",
    ):
        assert setting in env.split(), setting
    assert [json.loads(a) for k, a in final if k == "VOLUME"] == [["/var/lib/otpgate"]]
    assert healthcheck_command()[0] == "/opt/otpgate/venv/bin/python"
    assert "/healthz" in " ".join(healthcheck_command())


def dockerignored(path: str) -> bool:
    """Whether Docker leaves *path* (relative to the root) out of the build context."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").rstrip("/")
        if body.startswith("**/"):
            hit = any(fnmatch.fnmatch(p, body[3:]) for p in parts)
        else:
            hit = any(fnmatch.fnmatch(p, body) for p in prefixes)
        if hit:
            excluded = not negate
    return excluded


def test_build_context_holds_what_the_dockerfile_copies_and_no_keys() -> None:
    """Every COPY source exists and passes .dockerignore; data, keys and the venv do not."""
    sources = []
    for keyword, args in dockerfile():
        if keyword == "COPY" and not args.startswith("--from"):
            sources += args.split()[:-1]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignored(source), f"{source} is left out of the build context"
    for source in ("gateway/migrations/versions/__init__.py", "gateway/py.typed"):
        assert not dockerignored(source), source
    for secret in ("otpgate-data/master.key", ".venv/bin/python", ".git/config", "tests/x.py"):
        assert dockerignored(secret), f"{secret} would be sent to the Docker daemon"
    assert dockerignored("gateway/__pycache__/app.cpython-311.pyc")


# --- the compose file -------------------------------------------------------


def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extra")
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def published(service: dict[str, Any]) -> list[tuple[int, int]]:
    out = []
    for port in service.get("ports", []):
        host, _, container = str(port).partition(":")
        out.append((int(host), int(container.split("/")[0])))
    return out


def test_compose_runs_two_replicas_behind_https_and_smtp_fronts() -> None:
    """compose.yaml has the replicas, PostgreSQL and two fronts, and publishes only 443 and 25."""
    services = compose()["services"]
    assert set(services) == {
        "postgres", "init", *REPLICAS, "caddy", "smtp-front", "admin",
    }  # fmt: skip
    ports = {name: published(s) for name, s in services.items() if published(s)}
    assert ports == {"caddy": [(443, 443)], "smtp-front": [(25, 2525)]}
    for name in REPLICAS:
        replica = services[name]
        assert replica["build"]["dockerfile"] == "deploy/Dockerfile"
        assert replica["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert set(replica["networks"]) == {"backend", "front"}
        assert replica["read_only"] is True and replica["cap_drop"] == ["ALL"]
        assert "test" not in replica["healthcheck"], "the image's /healthz check is used"
        assert not replica["healthcheck"].get("disable")
    assert services["admin"]["profiles"] == ["admin"]
    assert "ports" not in services["postgres"]
    assert compose()["networks"]["backend"]["internal"] is True


def test_compose_shares_one_database_and_one_read_only_key_ring() -> None:
    """Both replicas name the same database and key ring; only init and admin may write it."""
    services = compose()["services"]
    a, b = (services[name] for name in REPLICAS)
    assert a["environment"] == b["environment"]
    env = a["environment"]
    assert env["OTPGATE_DATABASE_URL"].startswith("postgresql://otpgate:")
    assert env["OTPGATE_DATABASE_URL"].endswith("@postgres:5432/otpgate")
    assert env["OTPGATE_MASTER_KEY_FILE"] == "/var/lib/otpgate-keys/master.key"
    assert env["OTPGATE_PUBLIC_URL"].startswith("https://")
    assert env["OTPGATE_ADMIN_KEY"], "set, so no replica makes an admin key of its own"
    for name in REPLICAS:
        volumes = services[name]["volumes"]
        assert "keyring:/var/lib/otpgate-keys:ro" in volumes
        assert f"{name}-data:/var/lib/otpgate" in volumes
    for name in ("init", "admin"):
        assert services[name]["volumes"] == ["keyring:/var/lib/otpgate-keys"]
        assert services[name]["environment"] == env
    assert services["init"]["entrypoint"][-1] == "/opt/otpgate/prepare.py"
    # The image makes the directory the volume starts from: the gateway's own, 0700.
    run = " ".join(a for k, a in final_stage() if k == "RUN")
    assert "install -d -o otpgate -g otpgate -m 0700" in run and "/var/lib/otpgate-keys" in run


def test_compose_healthchecks_and_settings_are_complete() -> None:
    """Long-running services are health-checked; env.example names every variable compose reads."""
    services = compose()["services"]
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "2019" in " ".join(services["caddy"]["healthcheck"]["test"])
    text = (DEPLOY / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    optional = set(re.findall(r"\$\{([A-Z_]+):-", text)) - {"OTPGATE_IMAGE"}
    example = set(re.findall(r"^([A-Z_]+)=", (DEPLOY / "env.example").read_text(), re.M))
    assert required and required | optional <= example
    for service in services.values():
        for volume in service.get("volumes", []):
            if volume.startswith("./"):
                assert (DEPLOY / volume.split(":")[0]).is_file(), volume


def test_compose_file_passes_docker_compose_config(tmp_path: Path) -> None:
    """`docker-compose config` (Debian's, offline) validates the file with env.example filled in."""
    docker_compose = need_tool("docker-compose", "docker-compose")
    example = (DEPLOY / "env.example").read_text()
    filled = example.replace("OTPGATE_ADMIN_KEY=\n", f"OTPGATE_ADMIN_KEY={'k' * 32}\n")
    filled = filled.replace("POSTGRES_PASSWORD=\n", "POSTGRES_PASSWORD=0123abcd\n")
    (tmp_path / "env").write_text(filled)
    # Debian's docker-compose is 1.29, which predates the top-level `name:`.
    text = (DEPLOY / "compose.yaml").read_text()
    assert "\nname: otpgate\n" in text
    (tmp_path / "compose.yaml").write_text(text.replace("\nname: otpgate\n", "\n"))
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    command = [docker_compose, "--project-directory", str(DEPLOY), "--env-file"]
    command += [str(tmp_path / "env"), "-f", str(tmp_path / "compose.yaml"), "config"]
    result = subprocess.run(offline(*command), capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "postgresql://otpgate:0123abcd@postgres:5432/otpgate" in result.stdout
    # Without the required settings, compose stops and names what is missing.
    (tmp_path / "env").write_text(example)
    missing = subprocess.run(offline(*command), capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode != 0
    assert re.search(r"set (OTPGATE_ADMIN_KEY|POSTGRES_PASSWORD) in deploy/.env", missing.stderr)


def test_fronts_send_traffic_to_every_replica() -> None:
    """The Caddyfile and haproxy.cfg name exactly the compose replicas, on the image's ports."""
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    (upstreams,) = re.findall(r"reverse_proxy ([^{\n]+)\{", caddyfile)
    assert upstreams.split() == [f"{name}:8080" for name in REPLICAS]
    assert re.search(r"health_uri /readyz", caddyfile)
    haproxy = (DEPLOY / "haproxy.cfg").read_text()
    servers = re.findall(r"^\s+server (\S+) (\S+)", haproxy, re.M)
    assert servers == [(name, f"{name}:2525") for name in REPLICAS]
    assert re.search(r"^\s+bind :2525$", haproxy, re.M)
    assert "option smtpchk" in haproxy


def test_caddyfile_is_valid_for_caddy() -> None:
    """`caddy validate` accepts the Caddyfile with compose's variables set."""
    caddy = need_tool("caddy", "caddy")
    env = {
        "PATH": os.environ["PATH"],
        "OTPGATE_PUBLIC_HOST": "otp.example.com",
        "ACME_EMAIL": "ops@example.com",
        "HOME": tempfile.gettempdir(),
    }
    result = subprocess.run(
        offline(caddy, "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"),
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr
    assert '"level":"warn"' not in result.stderr, result.stderr


def test_haproxy_cfg_is_valid_for_haproxy() -> None:
    """`haproxy -c` accepts haproxy.cfg as it is (replica names resolved later, by Docker's DNS)."""
    haproxy = need_tool("haproxy", "haproxy")
    result = subprocess.run(
        offline(haproxy, "-c", "-f", str(DEPLOY / "haproxy.cfg")),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


# --- replicas on loopback ---------------------------------------------------


class Replica:
    """One `otpgate serve` process on free loopback ports."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name, self.workdir = name, workdir
        self.env = {
            **env,
            "OTPGATE_DATA_DIR": str(workdir / name),
            "OTPGATE_HTTP": f"127.0.0.1:{free_port()}",
            "OTPGATE_SMTP": f"127.0.0.1:{free_port()}",
        }
        self.http_port = int(self.env["OTPGATE_HTTP"].rsplit(":", 1)[1])
        self.smtp_port = int(self.env["OTPGATE_SMTP"].rsplit(":", 1)[1])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Replica:
        log = (self.workdir / f"{self.name}.log").open("ab")
        self.proc = subprocess.Popen(
            [*OTPGATE, "serve"], env=self.env, cwd=self.workdir, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.log()}")
            with contextlib.suppress(OSError):
                if self.call("GET", "/healthz")[0] == 200:
                    return self
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not come up: {self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return (self.workdir / f"{self.name}.log").read_text(errors="replace")[-3000:]

    def call(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> tuple[int, Any]:
        return http_call(f"http://127.0.0.1:{self.http_port}", method, path, body, key)


def http_call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    key: str | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=40, context=context) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else None
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OTPGATE, *args], env=env, capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database of its own, dropped afterwards, as the contract's URL."""
    url = create_database("otpgate_deploy", ": replicas share a PostgreSQL database")
    try:
        yield url
    finally:
        drop_database(url)


def base_env(tmp: Path, database_url: str, key_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTPGATE_")}
    env.update(
        OTPGATE_DATABASE_URL=database_url,
        OTPGATE_MASTER_KEY_FILE=str(key_file),
        OTPGATE_ADMIN_KEY=ADMIN_KEY,
        OTPGATE_INBOX_DOMAIN=INBOX_DOMAIN,
        OTPGATE_DATA_DIR=str(tmp / "cli"),
    )
    return env


#: The loopback address the SMTP front connects to the replicas from.
SMTP_FRONT = "127.0.0.9"


class Cluster:
    """Two replicas sharing one database and one key ring file, as in compose.yaml."""

    def __init__(self, tmp: Path, database_url: str) -> None:
        self.tmp = tmp
        self.key_file = tmp / "keys" / "master.key"
        self.env = base_env(tmp, database_url, self.key_file)
        # As compose.yaml: the SMTP front (HAProxy, from its own address here) sends
        # a PROXY header; everything else connects directly.
        self.env["OTPGATE_SMTP_PROXY_PROTOCOL"] = SMTP_FRONT
        self.replicas = [Replica(name, self.env, tmp) for name in REPLICAS]
        self.key = ""

    def start(self) -> Cluster:
        for replica in self.replicas:  # the first one makes the key ring
            replica.start()
        status, tenant = self.replicas[0].call("POST", "/v1/tenants", {"name": "ops"}, ADMIN_KEY)
        assert status == 201, tenant
        self.key = tenant["api_key"]
        return self

    def credential(self, on: int = 0, **body: Any) -> dict[str, Any]:
        status, cred = self.replicas[on].call(
            "POST", "/v1/credentials", {"name": "account", **body}, self.key
        )
        assert status == 201, cred
        return dict(cred)

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with postgres_database() as url:
        group = Cluster(tmp_path_factory.mktemp("cluster"), url)
        try:
            yield group.start()
        finally:
            group.stop()


def otp_mail(code: str, to: str) -> bytes:
    return (
        f"From: Service <no-reply@service.example.com>\r\nTo: {to}\r\n"
        "Subject: Your sign-in code\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Your verification code is {code}.\r\n"
    ).encode()


def code_for(replica: Replica, key: str, cred_id: str) -> Any:
    status, body = replica.call("GET", f"/v1/credentials/{cred_id}/code?wait=30", key=key)
    assert status == 200, (status, body)
    return body


def test_image_healthcheck_command_probes_healthz(cluster: Cluster) -> None:
    """The image's HEALTHCHECK exits 0 against a serving gateway and 1 where none listens."""
    command = [sys.executable, *healthcheck_command()[1:]]
    replica = cluster.replicas[0]
    env = {**os.environ, "OTPGATE_HTTP": f"0.0.0.0:{replica.http_port}"}
    assert subprocess.run(command, env=env, timeout=30).returncode == 0
    env["OTPGATE_HTTP"] = f"0.0.0.0:{free_port()}"
    failed = subprocess.run(command, env=env, capture_output=True, timeout=30)
    assert failed.returncode == 1


def test_replicas_share_codes_and_secrets(cluster: Cluster) -> None:
    """Mail taken in by one replica is handed out by the other; either opens the other's secrets."""
    a, b = cluster.replicas
    cred = cluster.credential(on=0, password="from-replica-a")
    assert b.call("GET", f"/v1/credentials/{cred['id']}/password", key=cluster.key) == (
        200, {"password": "from-replica-a"},
    )  # fmt: skip
    with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=30) as smtp:
        smtp.sendmail("no-reply@service.example.com", cred["inbox"], otp_mail("615243", "x"))
    assert code_for(b, cluster.key, cred["id"])["code"] == "615243"


def test_prepare_makes_a_key_ring_only_for_a_new_store(cluster: Cluster, tmp_path: Path) -> None:
    """The init step (deploy/prepare.py) makes a ring for a new store, never for a lost one."""
    prepare = [sys.executable, str(DEPLOY / "prepare.py")]
    cluster.credential(password="sealed")
    ok = subprocess.run(prepare, env=cluster.env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "found key ring" in ok.stdout
    lost = {**cluster.env, "OTPGATE_MASTER_KEY_FILE": str(tmp_path / "gone" / "master.key")}
    refused = subprocess.run(prepare, env=lost, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "does not exist" in refused.stderr, refused.stderr
    assert not (tmp_path / "gone" / "master.key").exists()
    # A new store gets a ring of its own, 0600, and a database no one else reads.
    fresh = {
        **cluster.env,
        "OTPGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'otpgate.db'}",
        "OTPGATE_MASTER_KEY_FILE": str(tmp_path / "keys" / "master.key"),
    }
    made = subprocess.run(prepare, env=fresh, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0 and "made key ring" in made.stdout, made.stderr
    assert stat.S_IMODE((tmp_path / "keys" / "master.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data" / "otpgate.db").stat().st_mode) & 0o077 == 0


# --- the fronts, for real ------------------------------------------------------


@contextlib.contextmanager
def replica_stopped(replica: Replica) -> Iterator[None]:
    """Stop one replica for the block, then start it again on the same ports."""
    replica.stop()
    try:
        yield
    finally:
        replica.start()


def test_caddy_front_balances_over_both_replicas(cluster: Cluster, tmp_path: Path) -> None:
    """The Caddyfile spreads HTTPS over both replicas, hides /metrics, survives one going down."""
    caddy = need_tool("caddy", "caddy")
    https, http = free_port(), free_port()
    text = (DEPLOY / "Caddyfile").read_text()
    # The site block as written; the global options made local: a private CA
    # instead of ACME, loopback ports, no admin endpoint, no trust store change.
    text = re.sub(
        r"\A(.*?)^\{\n.*?^\}\n",
        "{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n\tdefault_bind 127.0.0.1\n"
        f"\thttp_port {http}\n\thttps_port {https}\n}}\n",
        text, count=1, flags=re.S | re.M,
    )  # fmt: skip
    for replica in cluster.replicas:
        text = text.replace(f"{replica.name}:8080", f"127.0.0.1:{replica.http_port}")
    config = tmp_path / "Caddyfile"
    config.write_text(text)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "OTPGATE_PUBLIC_HOST": "localhost",
    }
    command = [caddy, "run", "--config", str(config), "--adapter", "caddyfile"]
    with running(command, tmp_path / "caddy.log", env):
        wait_for_port(https)
        root = tmp_path / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        base = f"https://localhost:{https}"
        # Caddy issues the site's certificate just after it starts listening.
        deadline = time.monotonic() + 20
        while True:
            try:
                context = ssl.create_default_context(cafile=str(root))
                resp = urllib.request.urlopen(base + "/healthz", timeout=20, context=context)
                break
            except (OSError, ssl.SSLError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with resp:
            assert resp.status == 200 and json.loads(resp.read()) == {"status": "ok"}
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        assert http_call(base, "GET", "/metrics", context=context)[0] == 404
        cred = http_call(base, "POST", "/v1/credentials", {"name": "c"}, cluster.key, context)
        assert cred[0] == 201, cred
        path = f"/v1/credentials/{cred[1]['id']}"
        before = [answered(replica) for replica in cluster.replicas]
        for _ in range(40):
            assert http_call(base, "GET", path, None, cluster.key, context)[0] == 200
        after = [answered(replica) for replica in cluster.replicas]
        # Both took a share (least_conn picks at random between idle replicas;
        # each replica also answers a health check every 5 s).
        assert all(b - a >= 5 for a, b in zip(before, after, strict=True)), (before, after)
        with replica_stopped(cluster.replicas[0]):
            for _ in range(6):
                status, body = http_call(base, "GET", path, None, cluster.key, context)
                assert status == 200, body


def counted(replica: Replica, series: str) -> int:
    """A counter's value, from the replica's own /metrics."""
    url = f"http://127.0.0.1:{replica.http_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    found = re.search(rf"^{re.escape(series)} ([0-9.e+]+)$", text, re.M)
    assert found, text
    return int(float(found.group(1)))


def answered(replica: Replica) -> int:
    """How many 2xx answers the replica has given."""
    return counted(replica, 'otpgate_http_requests_total{status="2xx"}')


def test_haproxy_front_relays_smtp_to_both_replicas(cluster: Cluster, tmp_path: Path) -> None:
    """haproxy.cfg spreads SMTP over both replicas, with their own replies, and loses nothing."""
    haproxy = need_tool("haproxy", "haproxy")
    front = free_port()
    text = (DEPLOY / "haproxy.cfg").read_text().replace("bind :2525", f"bind 127.0.0.1:{front}")
    text = text.replace("inter 5s", "inter 1s")
    # HAProxy connects to the replicas from the address they take PROXY headers from.
    leastconn = "    balance leastconn\n"
    text = text.replace(leastconn, f"{leastconn}    source {SMTP_FRONT}\n")
    assert f"source {SMTP_FRONT}" in text
    for replica in cluster.replicas:
        text = text.replace(f"{replica.name}:2525", f"127.0.0.1:{replica.smtp_port}")
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    a, b = cluster.replicas
    with running([haproxy, "-db", "-f", str(config)], tmp_path / "haproxy.log"):
        wait_for_port(front)
        creds = [cluster.credential() for _ in range(9)]
        with smtplib.SMTP("127.0.0.1", front, timeout=30) as smtp:
            # The gateway's own answer for an unknown inbox, during the session.
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                smtp.sendmail("a@service.example.com", f"nobody@{INBOX_DOMAIN}", b"x")
            assert refused.value.recipients[f"nobody@{INBOX_DOMAIN}"][0] == 550
        mail = 'otpgate_messages_total{channel="email",outcome="code"}'
        before = [counted(replica, mail) for replica in cluster.replicas]
        for i, cred in enumerate(creds[:6]):
            with smtplib.SMTP("127.0.0.1", front, timeout=30) as smtp:
                smtp.sendmail("a@service.example.com", cred["inbox"], otp_mail(f"40291{i}", "x"))
        for i, cred in enumerate(creds[:6]):
            assert code_for(b, cluster.key, cred["id"])["code"] == f"40291{i}"
        after = [counted(replica, mail) for replica in cluster.replicas]
        assert all(n > m for m, n in zip(before, after, strict=True)), (before, after)
        assert sum(after) - sum(before) == 6
        with replica_stopped(a):
            for i, cred in enumerate(creds[6:]):
                with smtplib.SMTP("127.0.0.1", front, timeout=30) as smtp:
                    smtp.sendmail(
                        "a@service.example.com", cred["inbox"], otp_mail(f"77000{i}", "x")
                    )
            for i, cred in enumerate(creds[6:]):
                assert code_for(b, cluster.key, cred["id"])["code"] == f"77000{i}"


# --- Postfix in front -------------------------------------------------------

POSTFIX_MASTER_CF = """\
{listen} inet n - n - - smtpd
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
tlsmgr    unix - - n 1000? 1 tlsmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class PrivatePostfix:
    """A Postfix instance of its own (config, queue and data in one temp dir) on loopback."""

    def __init__(self, postfix: str, gateway_smtp: int) -> None:
        self.postfix = postfix
        self.postconf = shutil.which("postconf", path="/usr/sbin:/sbin:/usr/bin") or "postconf"
        self.postmap = shutil.which("postmap", path="/usr/sbin:/sbin:/usr/bin") or "postmap"
        # Not under pytest's 0700 tmp dir: Postfix's daemons run as the postfix user.
        self.dir = Path(tempfile.mkdtemp(prefix="otpgate-postfix-"))
        self.dir.chmod(0o755)
        self.etc, self.queue, self.data = (self.dir / n for n in ("etc", "queue", "data"))
        for d in (self.etc, self.queue, self.data):
            d.mkdir()
        shutil.chown(self.data, user="postfix")
        self.data.chmod(0o700)
        self.port = free_port()
        self.gateway_smtp = gateway_smtp

    def configure(self, cert: Path, key: Path) -> None:
        # deploy/postfix/ as written, for this test's domains, ports and paths.
        main = (DEPLOY / "postfix" / "main.cf").read_text()
        main = main.replace("inbox.example.com", INBOX_DOMAIN).replace("mx.example.com", "mx.test")
        (self.etc / "main.cf").write_text(main)
        transport = (DEPLOY / "postfix" / "transport").read_text()
        transport = transport.replace("inbox.example.com", INBOX_DOMAIN)
        transport = transport.replace("[127.0.0.1]:2525", f"[127.0.0.1]:{self.gateway_smtp}")
        (self.etc / "transport").write_text(transport)
        (self.etc / "master.cf").write_text(
            POSTFIX_MASTER_CF.format(listen=f"127.0.0.1:{self.port}")
        )
        self.run(
            self.postconf, "-c", str(self.etc), "-e",
            f"queue_directory={self.queue}",
            f"data_directory={self.data}",
            "meta_directory=/etc/postfix",
            f"maillog_file={self.dir / 'maillog'}",
            f"maillog_file_prefixes={self.dir}",
            "inet_interfaces=127.0.0.1",
            "inet_protocols=ipv4",
            f"transport_maps=hash:{self.etc / 'transport'}",
            f"smtpd_tls_cert_file={cert}",
            f"smtpd_tls_key_file={key}",
            # No DNS: the client is 127.0.0.1, and this test stays on loopback.
            "smtpd_peername_lookup=no",
        )  # fmt: skip
        self.run(self.postmap, "-c", str(self.etc), f"hash:{self.etc / 'transport'}")
        self.run(self.postfix, "-c", str(self.etc), "check")

    def run(self, *command: str) -> None:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{shlex.join(command)}: {result.stderr}"

    def start(self) -> None:
        self.run(self.postfix, "-c", str(self.etc), "start")
        wait_for_port(self.port)

    def stop(self) -> None:
        pid_file = self.queue / "pid" / "master.pid"
        pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        subprocess.run([self.postfix, "-c", str(self.etc), "stop"], capture_output=True, timeout=60)
        deadline = time.monotonic() + 15
        while pid is not None and time.monotonic() < deadline and alive(pid):
            time.sleep(0.1)
        if pid is not None and alive(pid):
            subprocess.run(
                [self.postfix, "-c", str(self.etc), "abort"], capture_output=True, timeout=60
            )

    def maillog(self) -> str:
        path = self.dir / "maillog"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its parent does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def postfix(cluster: Cluster) -> Iterator[PrivatePostfix]:
    binary = need_tool("postfix", "postfix")
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance needs root (its daemons run as the postfix user)")
    instance = PrivatePostfix(binary, cluster.replicas[0].smtp_port)
    try:
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(instance.dir, ignore_errors=True)


def test_postfix_example_relays_the_inbox_domain_to_the_gateway(
    cluster: Cluster, postfix: PrivatePostfix, tmp_path: Path
) -> None:
    """deploy/postfix/ takes mail over STARTTLS, relays it to the gateway, refuses the rest."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("mx.test", "127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "mx.pem"))
    postfix.configure(tmp_path / "mx.pem", tmp_path / "mx.pem")
    postfix.start()
    cred = cluster.credential()
    context = ssl.create_default_context()
    ca.configure_trust(context)
    try:
        with smtplib.SMTP(
            "127.0.0.1", postfix.port, local_hostname="sender.example.com", timeout=60
        ) as smtp:
            smtp.starttls(context=context)
            smtp.ehlo("sender.example.com")
            smtp.sendmail("no-reply@service.example.com", cred["inbox"], otp_mail("385120", "x"))
            for rcpt, code in ((f"nobody@{INBOX_DOMAIN}", 550), ("x@elsewhere.example", 554)):
                with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                    smtp.sendmail("no-reply@service.example.com", rcpt, b"Subject: x\r\n\r\nx\r\n")
                assert refused.value.recipients[rcpt][0] == code, postfix.maillog()
        # The agent asks the other replica: Postfix -> replica A -> PostgreSQL -> replica B.
        body = code_for(cluster.replicas[1], cluster.key, cred["id"])
    except BaseException:
        print(postfix.maillog())
        raise
    assert body["code"] == "385120" and body["source"] == "email"
    assert body["sender"] == "no-reply@service.example.com"


# --- key rotation runbooks ----------------------------------------------------


def read_all(replicas: list[Replica], key: str, creds: dict[str, str]) -> list[Any]:
    """Every password through every replica; the failures, if any."""
    failures = []
    for replica in replicas:
        for cred_id, password in list(creds.items()):  # another thread may add to it
            got = replica.call("GET", f"/v1/credentials/{cred_id}/password", key=key)
            if got != (200, {"password": password}):
                failures.append((replica.name, cred_id, got))
    return failures


def rewrap_until_version_is_unused(env: dict[str, str], version: int) -> None:
    """`keys rotate --rewrap-only` until no data key uses *version* (replicas reload within 2 s)."""
    deadline = time.monotonic() + 15
    while True:
        listing = run_cli(env, "keys", "list")
        assert listing.returncode == 0, listing.stderr
        if f"version {version}: wraps 0" in listing.stdout:
            return
        assert time.monotonic() < deadline, listing.stdout
        time.sleep(0.5)
        rewrap = run_cli(env, "keys", "rotate", "--rewrap-only")
        assert rewrap.returncode == 0, rewrap.stderr


def test_rotation_on_one_replica_reaches_the_others_through_the_shared_ring(
    cluster: Cluster,
) -> None:
    """compose's rotation: `keys rotate` beside running replicas, which reload; then retire."""
    creds = {cluster.credential(on=i % 2, password=f"pw{i}")["id"]: f"pw{i}" for i in range(6)}
    failures: list[Any] = []
    stop = threading.Event()

    def keep_reading() -> None:
        while not stop.is_set():
            try:
                failures.extend(read_all(cluster.replicas, cluster.key, creds))
            except Exception as exc:  # a failure to report, not a thread to lose
                failures.append(repr(exc))

    reader = threading.Thread(target=keep_reading)
    reader.start()
    try:
        rotated = run_cli(cluster.env, "keys", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        active = re.search(r"version (\d+) is active", rotated.stdout)
        assert active, rotated.stdout
        before = int(active.group(1))
        # New secrets on both replicas, some wrapped before they reloaded.
        for i in range(4):
            password = f"late{i}"
            creds[cluster.credential(on=i % 2, password=password)["id"]] = password
        rewrap_until_version_is_unused(cluster.env, before - 1)
    finally:
        stop.set()
        reader.join()
    assert failures == []
    retired = run_cli(cluster.env, "keys", "retire", str(before - 1))
    assert retired.returncode == 0, retired.stderr
    assert read_all(cluster.replicas, cluster.key, creds) == []


def install_ring(source: Path, target: Path) -> None:
    """Replace a replica's key ring as the runbook says: a 0600 copy, renamed into place."""
    tmp = target.with_name(f".{target.name}.new")
    shutil.copyfile(source, tmp)
    tmp.chmod(0o600)
    os.replace(tmp, target)


def test_staged_rotation_for_replicas_with_their_own_copy_of_the_ring(tmp_path: Path) -> None:
    """The runbook for hosts without shared storage: add, install everywhere, rewrap, retire."""
    with postgres_database() as url:
        ring_a = tmp_path / "host-a" / "master.key"
        ring_b = tmp_path / "host-b" / "master.key"
        env_a = base_env(tmp_path, url, ring_a)
        env_b = base_env(tmp_path, url, ring_b)
        a = Replica("gateway-a", env_a, tmp_path).start()
        ring_b.parent.mkdir(mode=0o700)
        install_ring(ring_a, ring_b)  # the ring is copied to the second host once
        b = Replica("gateway-b", env_b, tmp_path).start()
        try:
            _, tenant = a.call("POST", "/v1/tenants", {"name": "t"}, ADMIN_KEY)
            key = tenant["api_key"]
            creds = {}
            for i, replica in enumerate((a, b, a, b)):
                _, cred = replica.call(
                    "POST", "/v1/credentials", {"name": f"c{i}", "password": f"p{i}"}, key
                )
                creds[cred["id"]] = f"p{i}"
            # 1. Add version 2 to a copy of the ring, against an empty scratch
            #    database: the real one is not touched yet.
            next_ring = tmp_path / "next" / "master.key"
            next_ring.parent.mkdir(mode=0o700)
            install_ring(ring_a, next_ring)
            scratch = {
                **env_a,
                "OTPGATE_MASTER_KEY_FILE": str(next_ring),
                "OTPGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'scratch' / 'otpgate.db'}",
            }
            added = run_cli(scratch, "keys", "rotate")
            assert added.returncode == 0 and "version 2 is active; rewrapped 0" in added.stdout
            # 2. Install it on every host; each replica reloads it by itself.
            install_ring(next_ring, ring_a)
            install_ring(next_ring, ring_b)
            assert read_all([a, b], key, creds) == []
            # 3. Rewrap the real database on one host, then retire version 1 there
            #    and install that ring everywhere.
            rewrap_until_version_is_unused(env_a, 1)
            assert read_all([a, b], key, creds) == []
            assert run_cli(env_a, "keys", "retire", "1").returncode == 0
            install_ring(ring_a, ring_b)
            listing = run_cli(env_b, "keys", "list").stdout
            assert "version 1" not in listing and "version 2 (active)" in listing
            for i, replica in enumerate((a, b)):
                _, cred = replica.call(
                    "POST", "/v1/credentials", {"name": f"n{i}", "password": f"n{i}"}, key
                )
                creds[cred["id"]] = f"n{i}"
            assert read_all([a, b], key, creds) == []
        finally:
            a.stop()
            b.stop()
