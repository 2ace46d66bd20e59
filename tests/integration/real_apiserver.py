"""A real etcd + kube-apiserver for the integration tier.

The binaries are built from the Go module proxy by ``hack/kube-test-assets.sh`` (or taken from
``AIVENATOR_KUBE_ASSETS_DIR``). The server runs with RBAC authorization and static token
authentication for two identities: an admin (``system:masters``) and the operator's service
account ``system:serviceaccount:aivenator:aivenator``, so RBAC bindings in ``deploy/`` apply to
the operator token exactly as they would in a cluster.

This module has no pytest dependency; the fixture lives in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aivenator.adapters.fakes.aiven._certs import ca_builder
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
ASSETS_SCRIPT = REPO_ROOT / "hack" / "kube-test-assets.sh"

OPERATOR_NAMESPACE = "aivenator"
OPERATOR_SERVICE_ACCOUNT = "aivenator"
OPERATOR_USERNAME = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
OPERATOR_GROUPS = (
    "system:serviceaccounts",
    f"system:serviceaccounts:{OPERATOR_NAMESPACE}",
    "system:authenticated",
)
ADMIN_USERNAME = "aivenator-test-admin"
ADMIN_GROUPS = ("system:masters", "system:authenticated")
FIELD_MANAGER = "aivenator-tests"

START_TIMEOUT_SECONDS = 120.0
BUILD_TIMEOUT_SECONDS = 45 * 60.0


# Typed-client handles for tests: the generated client types every optional field as
# Optional and custom objects as `object`, so tests (which assert on live server answers)
# use these Any-typed constructors instead of narrowing each access.
CoreV1Api: Callable[[k8s.ApiClient], Any] = k8s.CoreV1Api
AppsV1Api: Callable[[k8s.ApiClient], Any] = k8s.AppsV1Api
BatchV1Api: Callable[[k8s.ApiClient], Any] = k8s.BatchV1Api
CustomObjectsApi: Callable[[k8s.ApiClient], Any] = k8s.CustomObjectsApi
CoordinationV1Api: Callable[[k8s.ApiClient], Any] = k8s.CoordinationV1Api
AuthorizationV1Api: Callable[[k8s.ApiClient], Any] = k8s.AuthorizationV1Api
AuthenticationV1Api: Callable[[k8s.ApiClient], Any] = k8s.AuthenticationV1Api
ApiextensionsV1Api: Callable[[k8s.ApiClient], Any] = k8s.ApiextensionsV1Api
AdmissionregistrationV1Api: Callable[[k8s.ApiClient], Any] = k8s.AdmissionregistrationV1Api
EventsV1Api: Callable[[k8s.ApiClient], Any] = k8s.EventsV1Api


class RealApiserverError(RuntimeError):
    """The real apiserver tier cannot run (binaries missing, start failure, bad manifests)."""


@dataclass(frozen=True)
class RealApiserver:
    """Connection facts for a running kube-apiserver; tokens are for loopback tests only."""

    host: str
    admin_token: str = field(repr=False)
    operator_token: str = field(repr=False)
    kubeconfig_admin: Path
    kubeconfig_operator: Path
    ca_file: Path
    startup_seconds: float = 0.0
    version: str = ""

    def api_client(self, token: str) -> k8s.ApiClient:
        return api_client(self, token)

    def get_json(self, token: str, path: str, accept: str = "application/json") -> Any:
        """A raw GET (for responses the typed client does not model, such as Tables)."""
        request = urllib.request.Request(
            self.host + path, headers={"Authorization": f"Bearer {token}", "Accept": accept}
        )
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return json.loads(response.read())

    def admin_client(self) -> k8s.ApiClient:
        return api_client(self, self.admin_token)

    def operator_client(self) -> k8s.ApiClient:
        return api_client(self, self.operator_token)


def api_client(server: RealApiserver, token: str) -> k8s.ApiClient:
    """An official-client ApiClient for ``server`` authenticating with a bearer ``token``."""
    config = k8s.Configuration()
    config.host = server.host
    config.api_key = {"authorization": token}
    config.api_key_prefix = {"authorization": "Bearer"}
    config.ssl_ca_cert = str(server.ca_file)
    config.verify_ssl = True
    return k8s.ApiClient(configuration=config)


# --------------------------------------------------------------------------- binaries


def find_assets(env: dict[str, str] | None = None) -> Path:
    """Directory holding ``kube-apiserver`` and ``etcd``; builds them if needed."""
    environ = os.environ if env is None else env
    preset = environ.get("AIVENATOR_KUBE_ASSETS_DIR")
    if preset:
        directory = Path(preset)
        _check_binaries(directory, source="AIVENATOR_KUBE_ASSETS_DIR")
        return directory
    if shutil.which("go") is None and not Path("/usr/local/go/bin/go").exists():
        raise RealApiserverError(
            "cannot build kube-apiserver/etcd: Go is not installed and AIVENATOR_KUBE_ASSETS_DIR is not set"
        )
    run_env = dict(os.environ)
    run_env["PATH"] = run_env.get("PATH", "") + os.pathsep + "/usr/local/go/bin"
    try:
        result = subprocess.run(
            ["bash", str(ASSETS_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            env=run_env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RealApiserverError(f"{ASSETS_SCRIPT} did not finish in {BUILD_TIMEOUT_SECONDS:.0f} s") from exc
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RealApiserverError(
            f"{ASSETS_SCRIPT} failed (exit {result.returncode}):\n{_tail(result.stderr, 40)}"
        )
    directory = Path(lines[-1])
    _check_binaries(directory, source=str(ASSETS_SCRIPT))
    return directory


def _check_binaries(directory: Path, source: str) -> None:
    for name in ("kube-apiserver", "etcd"):
        path = directory / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RealApiserverError(f"{source}: {path} is missing or not executable")


# --------------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it if the test process dies (Linux only)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


class _ProcessGroup:
    """Child processes sharing one process group, killed together."""

    def __init__(self) -> None:
        self.pgid: int | None = None
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0 if self.pgid is None else self.pgid,
                preexec_fn=_die_with_parent,  # started from the single test thread
            )
        if self.pgid is None:
            self.pgid = proc.pid
        self.procs.append(proc)
        return proc

    def kill(self) -> None:
        # A throw-away server: no graceful shutdown (kube-apiserver takes ~10 s to drain on SIGTERM).
        if self.pgid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait()

    def alive(self) -> bool:
        return self.pgid is not None and _group_alive(self.pgid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return _tail(path.read_text(errors="replace"), lines)
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- PKI and auth


def _write_pki(directory: Path) -> tuple[Path, Path, Path, Path]:
    """A throw-away CA, a serving certificate for 127.0.0.1, and a service-account key."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aivenator-test-ca")])
    ca_cert = ca_builder(ca_name, ca_key, now, datetime.timedelta(days=2)).sign(ca_key, hashes.SHA256())
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file = directory / "apiserver.crt"
    cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "apiserver.key"
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    sa_file = directory / "service-account.key"
    sa_file.write_bytes(
        sa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    for path in (key_file, sa_file):
        path.chmod(0o600)
    return ca_file, cert_file, key_file, sa_file


def _token_line(token: str, user: str, uid: str, groups: Iterable[str]) -> str:
    return f'{token},{user},{uid},"{",".join(groups)}"\n'


def _write_kubeconfig(path: Path, host: str, ca_file: Path, user: str, token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "real-apiserver", "cluster": {"server": host, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "real-apiserver", "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


# --------------------------------------------------------------------------- readiness


def _wait_http(
    url: str,
    deadline: float,
    group: _ProcessGroup,
    what: str,
    log: Path,
    context: ssl.SSLContext | None = None,
    token: str | None = None,
) -> None:
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not group.alive() or any(p.poll() is not None for p in group.procs):
            raise RealApiserverError(f"{what} exited during start-up:\n{_log_tail(log)}")
        request = urllib.request.Request(url)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as response:
                body = response.read().decode(errors="replace")
                if response.status == 200:
                    return
                last = f"HTTP {response.status}: {body[:200]}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.25)
    raise RealApiserverError(f"{what} not ready at {url} in time (last: {last}):\n{_log_tail(log)}")


# --------------------------------------------------------------------------- manifests


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def dynamic_client(api: k8s.ApiClient) -> DynamicClient:
    """The dynamic client; `kubernetes.dynamic` has no annotations, so tests reach it only here."""
    return DynamicClient(api)  # type: ignore[no-untyped-call]  # kubernetes.dynamic is unannotated


def server_side_apply(
    dyn: DynamicClient, resource: Any, obj: dict[str, Any], *, dry_run: str | None = None
) -> Any:
    """Server-side apply one object as FIELD_MANAGER, forcing conflicts (optionally a dry run)."""
    options: dict[str, str] = {"dry_run": dry_run} if dry_run is not None else {}
    return dyn.server_side_apply(  # type: ignore[no-untyped-call]  # kubernetes.dynamic is unannotated
        resource,
        body=obj,
        name=obj["metadata"]["name"],
        namespace=obj["metadata"].get("namespace") if resource.namespaced else None,
        field_manager=FIELD_MANAGER,
        force_conflicts=True,
        **options,
    )


def apply_objects(api: k8s.ApiClient, objects: Iterable[dict[str, Any]]) -> list[Any]:
    """Server-side apply each object (forcing conflicts), discovering new kinds as needed."""
    dyn = dynamic_client(api)
    applied = []
    for obj in objects:
        try:
            resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except ResourceNotFoundError:
            dyn.resources.invalidate_cache()
            resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        applied.append(server_side_apply(dyn, resource, obj))
    return applied


def apply_file(api: k8s.ApiClient, path: Path) -> list[Any]:
    return apply_objects(api, load_yaml_documents(path))


def crd_files() -> list[Path]:
    return sorted((DEPLOY_DIR / "crds").rglob("*.yaml"))


def wait_crds_established(api: k8s.ApiClient, names: Iterable[str], timeout: float = 60.0) -> None:
    ext = k8s.ApiextensionsV1Api(api)
    pending = set(names)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            crd = ext.read_custom_resource_definition(name)
            conditions = (crd.status.conditions if crd.status else None) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                pending.discard(name)
        if pending:
            time.sleep(0.2)
    if pending:
        raise RealApiserverError(f"CRDs not Established within {timeout:.0f} s: {sorted(pending)}")


def install_base(api: k8s.ApiClient) -> None:
    """CRDs (Established), the operator namespace, and the RBAC manifests."""
    crds = [doc for path in crd_files() for doc in load_yaml_documents(path)]
    if not any(doc["metadata"]["name"] == "aivenapplications.aiven.nais.io" for doc in crds):
        raise RealApiserverError(f"no aivenapplications CRD under {DEPLOY_DIR / 'crds'}")
    apply_objects(api, crds)
    wait_crds_established(api, [doc["metadata"]["name"] for doc in crds])
    namespace_file = DEPLOY_DIR / "namespace.yaml"
    if namespace_file.exists():
        apply_file(api, namespace_file)
    else:
        apply_objects(
            api, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}]
        )
    apply_file(api, DEPLOY_DIR / "rbac.yaml")


# --------------------------------------------------------------------------- the server


@contextlib.contextmanager
def running_apiserver(assets: Path, keep_dir: bool = False) -> Iterator[RealApiserver]:
    """Start etcd + kube-apiserver, install CRDs/namespace/RBAC, yield, then kill everything."""
    workdir = Path(tempfile.mkdtemp(prefix="aivenator-apiserver-"))
    group = _ProcessGroup()
    try:
        yield _start(assets, workdir, group)
    finally:
        group.kill()
        if not keep_dir:
            shutil.rmtree(workdir, ignore_errors=True)


def _start(assets: Path, workdir: Path, group: _ProcessGroup) -> RealApiserver:
    started = time.monotonic()
    deadline = started + START_TIMEOUT_SECONDS
    etcd_client, etcd_peer, api_port = _free_port(), _free_port(), _free_port()
    etcd_log, api_log = workdir / "etcd.log", workdir / "kube-apiserver.log"
    etcd_url = f"http://127.0.0.1:{etcd_client}"
    peer_url = f"http://127.0.0.1:{etcd_peer}"
    group.start(
        [
            str(assets / "etcd"),
            "--name=default",
            f"--data-dir={workdir / 'etcd-data'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        etcd_log,
    )
    _wait_http(f"{etcd_url}/health", deadline, group, "etcd", etcd_log)

    ca_file, cert_file, key_file, sa_key = _write_pki(workdir)
    admin_token, operator_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    token_file = workdir / "tokens.csv"
    token_file.write_text(
        _token_line(admin_token, ADMIN_USERNAME, "admin-uid", ADMIN_GROUPS)
        + _token_line(operator_token, OPERATOR_USERNAME, "operator-uid", OPERATOR_GROUPS)
    )
    token_file.chmod(0o600)
    host = f"https://127.0.0.1:{api_port}"
    group.start(
        [
            str(assets / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            f"--cert-dir={workdir / 'certs'}",
            f"--tls-cert-file={cert_file}",
            f"--tls-private-key-file={key_file}",
            f"--client-ca-file={ca_file}",
            f"--secure-port={api_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            "--service-cluster-ip-range=10.0.0.0/24",
            f"--service-account-issuer={host}/",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            "--authorization-mode=RBAC",
            f"--token-auth-file={token_file}",
            "--anonymous-auth=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--v=1",
        ],
        api_log,
    )
    context = ssl.create_default_context(cafile=str(ca_file))
    _wait_http(
        f"{host}/readyz", deadline, group, "kube-apiserver", api_log, context=context, token=admin_token
    )
    startup = time.monotonic() - started

    kubeconfig_admin = workdir / "kubeconfig-admin.yaml"
    kubeconfig_operator = workdir / "kubeconfig-operator.yaml"
    _write_kubeconfig(kubeconfig_admin, host, ca_file, ADMIN_USERNAME, admin_token)
    _write_kubeconfig(kubeconfig_operator, host, ca_file, OPERATOR_USERNAME, operator_token)
    server = RealApiserver(
        host=host,
        admin_token=admin_token,
        operator_token=operator_token,
        kubeconfig_admin=kubeconfig_admin,
        kubeconfig_operator=kubeconfig_operator,
        ca_file=ca_file,
        startup_seconds=startup,
    )
    with server.admin_client() as api:
        version = k8s.VersionApi(api).get_code().git_version
        install_base(api)
    return RealApiserver(
        host=host,
        admin_token=admin_token,
        operator_token=operator_token,
        kubeconfig_admin=kubeconfig_admin,
        kubeconfig_operator=kubeconfig_operator,
        ca_file=ca_file,
        startup_seconds=startup,
        version=str(version),
    )
