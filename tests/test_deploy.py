"""deploy/: the Kubernetes manifests and the systemd units, held to what hello really does.

The manifests are rendered by kubectl kustomize where kubectl is installed, else by
tests/kustomize.py (checked against kubectl where both exist), validated strictly against the
Kubernetes 1.33 schemas, and their settings are loaded and served by hello itself.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from hello.config import Settings, load
from tests.conftest import Certs, clean_environ, make_certs
from tests.kustomize import render
from tests.support import HelloProcess, poll
from tests.test_acme import ISSUED, Pebble, free_port, run_pebble
from tests.test_observe import h3_get
from tests.test_reload import der_of, served_certificate

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ["base", "overlays/cert-manager", "overlays/acme", "overlays/h3"]
KUBERNETES_VERSION = "1.33.0"
ISSUING = (OSError, httpx.HTTPError, ssl.SSLError)  # until the issued certificate is served
NO_SCHEMA = {"cert-manager.io/v1"}  # custom resources: the CRDs come with cert-manager
SYSTEMD = ROOT / "deploy" / "systemd"

Object = dict[str, Any]


def rendered(overlay: str) -> list[Object]:
    directory = KUBERNETES / overlay
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return render(directory)
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    )
    return [item for item in yaml.safe_load_all(done.stdout) if item]


def identity(item: Object) -> tuple[str, str]:
    return item["kind"], item["metadata"]["name"]


def one(objects: list[Object], kind: str) -> Object:
    (found,) = [item for item in objects if item["kind"] == kind]
    assert isinstance(found, dict)
    return found


def settings_of(objects: list[Object], directory: Path) -> tuple[Settings, Path]:
    """hello's own reading of the ConfigMap's hello.toml: unknown keys and bad values fail."""
    config = directory / "hello.toml"
    config.write_text(one(objects, "ConfigMap")["data"]["hello.toml"])
    return load(config_file=config), config


def container(objects: list[Object]) -> Object:
    (found,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert isinstance(found, dict)
    return found


def port_numbers(item: Object) -> dict[str, tuple[int, str]]:
    return {p["name"]: (p["containerPort"], p.get("protocol", "TCP")) for p in item["ports"]}


def address_port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


# --- Kubernetes ---


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_renders_the_same_here_as_kubectl(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: tests/kustomize.py renders the manifests alone")
    done = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / overlay)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    theirs = [item for item in yaml.safe_load_all(done.stdout) if item]
    assert sorted(render(KUBERNETES / overlay), key=identity) == sorted(theirs, key=identity)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_kubernetes_1_33(overlay: str) -> None:
    objects = rendered(overlay)
    kinds = {item["kind"] for item in objects}
    assert {"Deployment", "Service", "ConfigMap"} <= kinds
    for item in objects:
        if item["apiVersion"] in NO_SCHEMA:
            assert item["kind"] == "Certificate" and overlay != "base"
            continue
        kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)


def test_the_validation_is_strict() -> None:
    deployment = one(rendered("base"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_as_the_restricted_standard_asks(overlay: str) -> None:
    pod = one(rendered(overlay), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532  # the image's user
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert "hostNetwork" not in pod and "hostPID" not in pod
    for each in pod["containers"]:
        context = each["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert "privileged" not in context
        assert all(port["containerPort"] >= 1024 for port in each["ports"])
        resources = each["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) <= set(resources["limits"])
        assert not any("subPath" in mount for mount in each["volumeMounts"])
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert not any("hostPath" in volume for volume in volumes.values())
    mounts = [mount for each in pod["containers"] for mount in each["volumeMounts"]]
    writable = {mount["mountPath"] for mount in mounts if not mount.get("readOnly")}
    expected = {"/tmp", "/var/lib/hello"} if overlay == "overlays/acme" else {"/tmp"}
    assert writable == expected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_probes_and_grace_match_the_settings(overlay: str, tmp_path: Path) -> None:
    objects = rendered(overlay)
    settings, _ = settings_of(objects, tmp_path)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    each = container(objects)
    ports = port_numbers(each)
    assert ports["https"] == (address_port(settings.bind[0]), "TCP")
    assert settings.metrics_bind is not None
    assert ports["ops"] == (address_port(settings.metrics_bind), "TCP")
    for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz")):
        assert each[probe]["httpGet"] == {"path": path, "port": "ops"}
    assert each["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    grace = pod["terminationGracePeriodSeconds"]
    assert grace >= settings.shutdown_delay + settings.graceful_timeout + 5
    assert settings.shutdown_delay >= each["readinessProbe"]["periodSeconds"]
    assert settings.workers == 1
    service = one(objects, "Service")
    for port in service["spec"]["ports"]:
        assert ports[port["targetPort"]][1] == port["protocol"]
    exposed = {(p["port"], p["protocol"]) for p in service["spec"]["ports"]}
    assert (443, "TCP") in exposed
    mounts = {m["mountPath"]: m["name"] for m in each["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "configMap" in volumes[mounts["/etc/hello"]]
    assert each["args"] == ["--config", "/etc/hello/hello.toml"]
    if settings.quic_bind:
        assert ports["h3"] == (address_port(settings.quic_bind[0]), "UDP")
        assert (443, "UDP") in exposed and settings.https_port == 443
        assert each["image"].endswith(":h3")
    if settings.acme:
        assert one(objects, "Deployment")["spec"]["replicas"] == 1
        assert one(objects, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
        assert not [
            item
            for item in objects
            if item["kind"] in {"HorizontalPodAutoscaler", "PodDisruptionBudget"}
        ]
        assert ports["http"] == (address_port(settings.insecure_bind[0]), "TCP")
        assert (80, "TCP") in exposed and settings.https_port == 443
        claim = volumes[mounts[str(settings.state_dir)]]["persistentVolumeClaim"]["claimName"]
        assert one(objects, "PersistentVolumeClaim")["metadata"]["name"] == claim
    else:
        assert settings.certfile is not None and settings.keyfile is not None
        secret = volumes[mounts[str(settings.certfile.parent)]]["secret"]["secretName"]
        assert settings.keyfile.parent == settings.certfile.parent
        assert one(objects, "Deployment")["spec"]["replicas"] >= 2
        assert one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
        assert one(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2
        if overlay != "base":
            assert one(objects, "Certificate")["spec"]["secretName"] == secret


@pytest.mark.parametrize("overlay", ["base", "overlays/acme"])
def test_hello_serves_the_configmap_and_answers_the_probes(overlay: str, tmp_path: Path) -> None:
    """hello started with the rendered hello.toml, only its addresses moved to loopback (and,
    for the ACME overlay, the CA left out): the probes answer where the manifests look."""
    objects = rendered(overlay)
    _, config = settings_of(objects, tmp_path)
    flags = ["--config", str(config), "--bind", "127.0.0.1:0", "--metrics-bind", "127.0.0.1:0"]
    if overlay == "overlays/acme":
        text = re.sub(r"(?m)^(acme_\w+|insecure_bind|https_port) = .*$", "", config.read_text())
        config.write_text(text.replace('"/var/lib/hello"', f'"{tmp_path / "state"}"'))
    else:
        certs = make_certs(tmp_path / "certs")
        flags += ["--certfile", str(certs.certfile), "--keyfile", str(certs.keyfile)]
    server = HelloProcess(flags, env=clean_environ())
    try:
        (line,) = server.wait_for_output("Operations on http://")
        operations = re.search(r"Operations on (http://[\d.]+:\d+)", line)
        assert operations is not None
        each = container(objects)
        with httpx.Client() as client:
            startup = operations.group(1) + each["startupProbe"]["httpGet"]["path"]
            poll(lambda: client.get(startup).status_code == 200, "the startup probe", 15)
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                answer = client.get(operations.group(1) + each[probe]["httpGet"]["path"])
                assert answer.status_code == 200, probe
            assert "hello_requests_in_flight" in client.get(operations.group(1) + "/metrics").text
    finally:
        assert server.stop() == 0


def test_a_secret_volume_updated_as_the_kubelet_does_is_reloaded(tmp_path: Path) -> None:
    """The kubelet writes a Secret's new files into a new hidden directory and swaps the
    ..data link to it in one rename; tls.crt and tls.key are links through ..data."""
    old, new = make_certs(tmp_path / "old"), make_certs(tmp_path / "new")
    volume = tmp_path / "tls"
    volume.mkdir()

    def publish(certs: Certs, version: str) -> None:
        payload = volume / f"..{version}"
        payload.mkdir()
        shutil.copy(certs.certfile, payload / "tls.crt")
        shutil.copy(certs.keyfile, payload / "tls.key")
        (volume / "..data_tmp").symlink_to(payload.name)
        (volume / "..data_tmp").replace(volume / "..data")

    publish(old, "2026_12_01_old")
    for name in ("tls.crt", "tls.key"):
        (volume / name).symlink_to(f"..data/{name}")
    flags = ["--certfile", str(volume / "tls.crt"), "--keyfile", str(volume / "tls.key")]
    server = HelloProcess(["--bind", "127.0.0.1:0", *flags], env=clean_environ())
    try:
        assert served_certificate(server.url, old, new) == der_of(old)
        publish(new, "2026_12_02_new")
        shutil.rmtree(volume / "..2026_12_01_old")  # as the kubelet removes the old payload
        server.wait_for_output("certificate reloaded (the files changed)")
        assert served_certificate(server.url, old, new) == der_of(new)
        assert "not reloaded" not in server.stderr
    finally:
        assert server.stop() == 0


# --- systemd ---


def unit_settings(name: str) -> dict[str, list[str]]:
    """The key = value lines of a unit file, each key with all its values in order."""
    found: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def seconds(value: str) -> float:
    number = re.fullmatch(r"(\d+)(s|min)?", value)
    assert number is not None, value
    return int(number[1]) * (60 if number[2] == "min" else 1)


@pytest.mark.parametrize("unit", ["hello.service", "hello.socket"])
def test_systemd_verifies_the_units(unit: str) -> None:
    done = subprocess.run(
        ["systemd-analyze", "verify", str(SYSTEMD / unit)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert unit not in done.stderr, done.stderr  # no warning about the unit itself


def test_the_service_is_hardened() -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(SYSTEMD / "hello.service")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    score = re.search(r"Overall exposure level for hello\.service: (\d+\.\d+)", done.stdout)
    assert score is not None, done.stdout
    assert float(score[1]) < 2.0
    unit = unit_settings("hello.service")
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "DynamicUser"):
        assert unit[key] == ["yes"], key
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["CapabilityBoundingSet"] == unit["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert unit["StateDirectory"] == unit["CacheDirectory"] == ["hello"]
    assert "HELLO_STATE_DIR=%S/hello" in unit["Environment"][0].split()
    assert "SHIV_ROOT=%C/hello" in unit["Environment"][0].split()  # unpacked once, writable
    assert unit["Restart"] == ["on-failure"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["SystemCallFilter"][0] == "@system-service"


def test_the_stop_timeout_covers_the_drain(tmp_path: Path) -> None:
    settings = load(config_file=SYSTEMD / "hello.toml")
    (timeout,) = unit_settings("hello.service")["TimeoutStopSec"]
    assert seconds(timeout) >= settings.shutdown_delay + settings.graceful_timeout + 5


def test_the_socket_unit_and_the_settings_agree() -> None:
    socket_unit = unit_settings("hello.socket")
    settings = load(config_file=SYSTEMD / "hello.toml")
    assert socket_unit["ListenStream"] == ["443", "80"]  # passed as fds 3 and 4, in order
    assert settings.bind == ("fd://3",) and settings.insecure_bind == ("fd://4",)
    assert settings.acme_domain and settings.workers >= 1
    service = unit_settings("hello.service")
    assert service["ExecStart"] == [
        "/usr/bin/python3 /opt/hello/hello.pyz --config %E/hello/hello.toml"
    ]
    assert service["ConfigurationDirectory"] == ["hello"]


@pytest.fixture
def pebble(tmp_path: Path) -> Iterator[Pebble]:
    with run_pebble(tmp_path / "pebble") as running:
        yield running


@pytest.mark.slow
def test_socket_activation_with_the_units_settings(pebble: Pebble, tmp_path: Path) -> None:
    """systemd-socket-activate passes two listening sockets as fds 3 and 4, as hello.socket
    does; hello runs deploy/systemd/hello.toml, pointed at Pebble instead of Let's Encrypt:
    it gets its certificate over the inherited sockets and serves it."""
    config = tmp_path / "hello.toml"
    text = (SYSTEMD / "hello.toml").read_text().replace('"example.org"', '"localhost"')
    text += f'acme_directory = "{pebble.directory}"\nacme_ca_bundle = "{pebble.ca_bundle}"\n'
    config.write_text(text + f'state_dir = "{tmp_path / "state"}"\n')
    https = free_port()
    command = ["systemd-socket-activate", "-l", f"127.0.0.1:{https}"]
    command += ["-l", f"127.0.0.1:{pebble.http_port}", sys.executable, "-m", "hello"]
    listening = re.compile(r"Listening on (\S+) as \d+")  # systemd-socket-activate's lines
    server = HelloProcess(
        ["--config", str(config)],
        command=command,
        env=clean_environ(),
        listeners=2,
        ready=listening,
    )
    try:
        # Like systemd, systemd-socket-activate starts the service on the first connection.
        socket.create_connection(("127.0.0.1", https)).close()
        server.wait_for_output(ISSUED, timeout=30)
        context = ssl.create_default_context(cafile=str(pebble.roots))  # Pebble's issued only
        with httpx.Client(http2=True, verify=context) as client:
            # Two workers: each swaps the issued pair in within 2 s; poll until both have.
            poll(lambda: client.get(f"https://localhost:{https}/"), "TLS", 30, errors=ISSUING)
            page = client.get(f"https://localhost:{https}/")
            plain = client.get(f"http://localhost:{pebble.http_port}/x?y=1")
        assert page.status_code == 200 and page.http_version == "HTTP/2"
        assert plain.status_code == 308
        assert plain.headers["location"] == f"https://localhost:{https}/x?y=1"
    finally:
        assert server.stop() == 0


# --- the units under a real systemd, in a container ---


@pytest.fixture(scope="module")
def debian_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Debian 12 root with systemd and python3, the system of a VPS, made by mmdebstrap."""
    root = tmp_path_factory.mktemp("machine") / "root"
    packages = "systemd,systemd-sysv,procps,python3,ca-certificates"  # procps: kill
    subprocess.run(
        ["mmdebstrap", "--variant=minbase", f"--include={packages}", "bookworm", str(root)],
        check=True,
        capture_output=True,
    )
    return root


@pytest.fixture(scope="module")
def acme_pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("pyz") / "hello.pyz"
    build = [sys.executable, str(ROOT / "scripts" / "build"), "--extra", "acme"]
    subprocess.run([*build, "--output", str(output)], check=True, capture_output=True)
    return output


class Machine:
    """A container booted by systemd-nspawn on ``root``, sharing this machine's network."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        command = ["systemd-nspawn", "--quiet", "-D", str(root), "--register=no"]
        command += ["--keep-unit", "--boot", "--console=pipe"]
        with log.open("w") as output:
            self.process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        """``command`` inside the container, once its init is up."""
        return subprocess.run(
            ["nsenter", "--target", str(self.init()), "--all", *command],
            capture_output=True,
            text=True,
        )

    def init(self) -> int:
        """The container's PID 1, as this machine numbers it: nspawn's child."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")

        def systemd() -> int | None:
            assert self.process.poll() is None, "systemd-nspawn exited"
            for pid in children.read_text().split():
                if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                    return int(pid)
            return None

        return poll(systemd, "the container's systemd", 30, errors=(OSError,))

    def journal(self, unit: str) -> str:
        return self.run("journalctl", "--no-pager", "-o", "cat", "-u", unit).stdout

    def stop(self) -> None:
        self.process.terminate()  # nspawn asks the container's systemd to power off
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.mark.slow
def test_the_hardened_units_serve_under_systemd(
    debian_root: Path, acme_pyz: Path, pebble: Pebble, tmp_path: Path
) -> None:
    """deploy/systemd's units as they are (only the socket unit's ports and the settings'
    domain and CA changed), under systemd 252 in a Debian 12 container: socket activation,
    the zipapp unpacked into its CacheDirectory, a certificate from Pebble kept in its
    StateDirectory, a reload and a clean stop, all inside the sandbox."""
    root = debian_root
    (root / "opt" / "hello").mkdir(parents=True, exist_ok=True)
    shutil.copy(acme_pyz, root / "opt" / "hello" / "hello.pyz")
    units = root / "etc" / "systemd" / "system"
    shutil.copy(SYSTEMD / "hello.service", units / "hello.service")
    https = free_port()
    socket_unit = (SYSTEMD / "hello.socket").read_text()
    socket_unit = socket_unit.replace("ListenStream=443", f"ListenStream=127.0.0.1:{https}")
    socket_unit = socket_unit.replace(
        "ListenStream=80", f"ListenStream=127.0.0.1:{pebble.http_port}"
    )
    (units / "hello.socket").write_text(socket_unit)
    (units / "sockets.target.wants").mkdir(exist_ok=True)
    (units / "sockets.target.wants" / "hello.socket").unlink(missing_ok=True)
    (units / "sockets.target.wants" / "hello.socket").symlink_to("/etc/systemd/system/hello.socket")
    config = root / "etc" / "hello"
    config.mkdir(exist_ok=True)
    shutil.copy(pebble.ca_bundle, config / "acme-ca.pem")
    text = (SYSTEMD / "hello.toml").read_text().replace('"example.org"', '"localhost"')
    text += f'acme_directory = "{pebble.directory}"\nacme_ca_bundle = "/etc/hello/acme-ca.pem"\n'
    (config / "hello.toml").write_text(text)
    for path in (
        root / "opt" / "hello" / "hello.pyz",
        config / "hello.toml",
        config / "acme-ca.pem",
    ):
        path.chmod(0o644)

    machine = Machine(root, tmp_path / "console.log")
    try:
        context = ssl.create_default_context(cafile=str(pebble.roots))  # Pebble's issued only
        context.set_alpn_protocols(["h2", "http/1.1"])

        def issued_page() -> httpx.Response:
            with httpx.Client(http2=True, verify=context) as client:
                return client.get(f"https://localhost:{https}/")

        page = poll(issued_page, "HTTPS with the certificate Pebble issued", 90, errors=ISSUING)
        assert page.status_code == 200 and page.http_version == "HTTP/2"
        with httpx.Client() as client:
            plain = client.get(f"http://localhost:{pebble.http_port}/x?y=1")
        assert plain.status_code == 308
        assert plain.headers["location"] == f"https://localhost:{https}/x?y=1"

        state = root / "var" / "lib" / "private" / "hello"  # DynamicUser's StateDirectory
        assert {"account.key", "cert.pem", "key.pem"} <= {p.name for p in state.iterdir()}
        assert (state / "key.pem").stat().st_mode & 0o077 == 0
        assert state.stat().st_uid != 0  # written by the user systemd made for it
        cache = root / "var" / "cache" / "private" / "hello"  # SHIV_ROOT: unpacked once
        assert any(cache.iterdir())

        reloaded = machine.run("systemctl", "reload", "hello.service")
        assert reloaded.returncode == 0, machine.journal("hello")
        reread = "started 2 workers with re-read settings"
        poll(lambda: reread in machine.journal("hello"), "the reload", 30)
        assert issued_page().status_code == 200

        stopped = machine.run("systemctl", "stop", "hello.service")
        assert stopped.returncode == 0, stopped.stderr
        shown = machine.run("systemctl", "show", "hello.service", "-p", "Result,ExecMainStatus")
        assert shown.stdout.split() == ["Result=success", "ExecMainStatus=0"], shown.stdout
        journal = machine.journal("hello")
        assert "Traceback" not in journal and "error" not in journal.lower(), journal
        assert "ACME: new certificate" in journal
        assert "certificate reloaded (a new ACME certificate)" in journal
    finally:
        machine.stop()


@pytest.mark.slow
def test_the_h3_build_serves_http3(tmp_path: Path) -> None:
    """The zipapp of the h3 image (scripts/build --extra h3) on Debian's bare python3."""
    pyz = tmp_path / "hello.pyz"
    build = [sys.executable, str(ROOT / "scripts" / "build"), "--extra", "h3"]
    subprocess.run([*build, "--output", str(pyz)], check=True, capture_output=True)
    certs = make_certs(tmp_path / "certs")
    port = free_port()
    flags = ["--bind", f"127.0.0.1:{port}", "--quic-bind", f"127.0.0.1:{port}"]
    flags += ["--certfile", str(certs.certfile), "--keyfile", str(certs.keyfile)]
    flags += ["--https-port", "443"]
    server = HelloProcess(flags, command=["/usr/bin/python3", str(pyz)], env=clean_environ())
    try:
        with httpx.Client(http2=True, verify=certs.client_context()) as client:
            assert client.get(server.url + "/").headers["alt-svc"] == 'h3=":443"; ma=86400'
        ((status, body),) = asyncio.run(h3_get(port, certs, "/"))
        assert status == 200 and b"<html" in body.lower()
    finally:
        assert server.stop() == 0
