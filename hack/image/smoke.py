#!/usr/bin/env python3
"""`make image-smoke`: start the built image with runc and prove the operator works inside it.

The image's OCI layout (out/image/oci, from hack/image/build.sh) is unpacked once with
`umoci unpack`; every check runs a container from that root filesystem with runc (Debian's;
crun 1.8 refuses this machine's hybrid cgroup layout) with the restrictions of
deploy/operator.yaml's container: the image's user (65532:65532), a read-only root filesystem,
a tmpfs on /tmp (the pod's emptyDir), every capability dropped, no new privileges, and for the
operator the 512Mi memory limit; in the host's network namespace (loopback servers reachable):

1. `aivenator --help` lists the commands;
2. the process is uid/gid 65532, `/` is read-only, /tmp is writable, pip is not in the image;
3. `aivenator demo` (the offline demo) passes;
4. `aivenator fake-aiven` (the simulator) serves on a loopback port from one container while
   `aivenator run` in another reconciles against a real kube-apiserver + etcd
   (tests/integration/real_apiserver.py, the real-apiserver tier's server, with the operator's
   RBAC-bound token; the Aiven token file mounted read-only where the Deployment mounts it,
   /var/run/secrets/aiven/token, mode 0400): an AivenApplication gets its Kafka Secret and RolloutComplete status; then
   the operator stops cleanly on SIGTERM, with no traceback and no Aiven token in its output.

Run with the project venv (it starts the apiserver through the tests' module):
    .venv/bin/python hack/image/smoke.py [--layout out/image/oci] [--tag <version>]
Needs root, runc and umoci (hack/image/deps.sh) and the kube assets (hack/kube-test-assets.sh or
AIVENATOR_KUBE_ASSETS_DIR). Exit 0 only if every check passed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kubernetes import client as k8s  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402
from tests.integration.real_apiserver import RealApiserver, running_apiserver  # noqa: E402

PROJECT = "dev-nais-dev"
WAIT = 120.0


def fail(message: str) -> None:
    print(f"image-smoke: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def log(message: str) -> None:
    print(f"image-smoke: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Runtime:
    """Containers from one unpacked image: one bundle directory (config.json) per container."""

    def __init__(self, rootfs: Path, base_config: dict[str, Any], workdir: Path) -> None:
        self.rootfs = rootfs
        self.base = base_config
        self.workdir = workdir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def bundle(
        self, args: list[str], binds: dict[str, Path] | None = None, memory_limit: int | None = None
    ) -> tuple[str, Path]:
        config = copy.deepcopy(self.base)
        config["process"]["terminal"] = False
        config["process"]["args"] = args
        # deploy/operator.yaml: capabilities drop ALL, allowPrivilegeEscalation false
        config["process"]["capabilities"] = {
            kind: [] for kind in ("bounding", "effective", "inheritable", "permitted", "ambient")
        }
        config["process"]["noNewPrivileges"] = True
        config["root"] = {"path": str(self.rootfs), "readonly": True}
        linux = config["linux"]
        # the host's network namespace: the apiserver and the simulator listen on its loopback
        linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "network"]
        if memory_limit is not None:
            linux.setdefault("resources", {})["memory"] = {"limit": memory_limit, "swap": memory_limit}
        config["mounts"].append(
            {
                "destination": "/tmp",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777", "size=64m"],
            }
        )
        for target, source in (binds or {}).items():
            config["mounts"].append(
                {"destination": target, "type": "bind", "source": str(source), "options": ["rbind", "ro"]}
            )
        name = f"aivenator-smoke-{uuid.uuid4().hex[:8]}"
        directory = self.workdir / name
        directory.mkdir()
        (directory / "config.json").write_text(json.dumps(config))
        return name, directory

    def run(self, args: list[str], timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        name, directory = self.bundle(args)
        try:
            return subprocess.run(
                ["runc", "run", "--bundle", str(directory), name],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        finally:
            subprocess.run(["runc", "delete", "--force", name], capture_output=True)

    def start(
        self,
        args: list[str],
        log_path: Path,
        binds: dict[str, Path] | None = None,
        memory_limit: int | None = None,
    ) -> str:
        name, directory = self.bundle(args, binds, memory_limit)
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                ["runc", "run", "--bundle", str(directory), name],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started.append((name, process))
        return name

    def process(self, name: str) -> subprocess.Popen[bytes]:
        return next(p for n, p in self.started if n == name)

    def stop(self, name: str, timeout: float = 30.0) -> int:
        """SIGTERM the container's init (the aivenator process) and wait; its exit code."""
        process = self.process(name)
        if process.poll() is None:
            subprocess.run(["runc", "kill", name, "TERM"], capture_output=True)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                subprocess.run(["runc", "kill", name, "KILL"], capture_output=True)
                process.wait(timeout=10)
                fail(f"container {name} did not stop within {timeout:.0f} s of SIGTERM")
        return int(process.returncode)

    def memory(self, name: str) -> tuple[int, int]:
        """(limit, peak usage) in bytes of the container's memory cgroup (v1 or v2)."""
        state = json.loads(subprocess.run(["runc", "state", name], capture_output=True, check=True).stdout)
        for line in Path(f"/proc/{state['pid']}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
                files = ("memory.limit_in_bytes", "memory.max_usage_in_bytes")
                break
        else:
            base = Path("/sys/fs/cgroup") / Path(f"/proc/{state['pid']}/cgroup").read_text().split("::", 1)[1].strip().lstrip("/")
            files = ("memory.max", "memory.peak")
        limit, peak = ((base / f).read_text().strip() for f in files)
        return int(limit), int(peak)

    def cleanup(self) -> None:
        for name, process in self.started:
            if process.poll() is None:
                subprocess.run(["runc", "kill", name, "KILL"], capture_output=True)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
            subprocess.run(["runc", "delete", "--force", name], capture_output=True)


@contextlib.contextmanager
def unpacked(layout: Path, tag: str) -> Iterator[tuple[Path, dict[str, Any], Path]]:
    workdir = Path(tempfile.mkdtemp(prefix="aivenator-image-smoke-"))
    try:
        bundle = workdir / "image"
        subprocess.run(
            ["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)], check=True, capture_output=True
        )
        yield bundle / "rootfs", json.loads((bundle / "config.json").read_text()), workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def check_help(rt: Runtime) -> None:
    result = rt.run(["aivenator", "--help"])
    if result.returncode != 0:
        fail(f"aivenator --help exited {result.returncode}: {result.stderr.strip()}")
    for command in ("run", "demo", "audit", "fake-aiven"):
        if command not in result.stdout:
            fail(f"aivenator --help does not list {command!r}")
    log("ok: aivenator --help")


PROBE = """
import json, os
try:
    open("/probe", "w")
    root = "writable"
except OSError as exc:
    root = f"errno {exc.errno}"
with open("/tmp/probe", "w") as f:
    f.write("x")
try:
    import pip  # noqa: F401
    has_pip = True
except ModuleNotFoundError:
    has_pip = False
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "root": root, "pip": has_pip}))
"""


def check_user_and_filesystem(rt: Runtime, uid: int, gid: int) -> None:
    result = rt.run(["python3", "-c", PROBE])
    if result.returncode != 0:
        fail(f"the probe failed ({result.returncode}): {result.stderr.strip()}")
    facts = json.loads(result.stdout)
    if (facts["uid"], facts["gid"]) != (uid, gid):
        fail(f"the process runs as {facts['uid']}:{facts['gid']}, not {uid}:{gid}")
    if facts["root"] != "errno 30":  # EROFS
        fail(f"writing to / did not fail with EROFS: {facts['root']}")
    if facts["pip"]:
        fail("pip is importable in the image")
    log(f"ok: uid/gid {uid}:{gid}, read-only root (EROFS), writable /tmp, no pip")


def check_demo(rt: Runtime) -> None:
    started = time.monotonic()
    result = rt.run(["aivenator", "demo"], timeout=600)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        fail(f"aivenator demo exited {result.returncode}:\n{tail}")
    if "Traceback" in result.stdout + result.stderr:
        fail("aivenator demo printed a traceback")
    log(f"ok: aivenator demo passed in {time.monotonic() - started:.1f} s")


def kubeconfig(server: RealApiserver, token: str) -> dict[str, Any]:
    """A self-contained kubeconfig (CA inline) for the operator inside the container."""
    ca = base64.b64encode(server.ca_file.read_bytes()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "smoke", "cluster": {"server": server.host, "certificate-authority-data": ca}}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "smoke", "context": {"cluster": "smoke", "user": "operator"}}],
        "current-context": "smoke",
    }


def wait_for(what: str, check: Any, watched: list[tuple[str, subprocess.Popen[bytes], Path]]) -> Any:
    deadline = time.monotonic() + WAIT
    while True:
        value = check()
        if value:
            return value
        for name, process, log_path in watched:
            if process.poll() is not None:
                fail(f"{name} exited ({process.returncode}) waiting for {what}:\n{tail(log_path)}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {name}:\n{tail(path)}" for name, _, path in watched)
            fail(f"timed out after {WAIT:.0f} s waiting for {what}\n{logs}")
        time.sleep(0.5)


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def check_operator(rt: Runtime, assets: Path, uid: int, gid: int) -> None:
    aiven_token = "smoke-" + uuid.uuid4().hex
    aiven_port, metrics_port, health_port = free_port(), free_port(), free_port()
    config_dir, token_dir = rt.workdir / "operator-config", rt.workdir / "aiven-token"
    config_dir.mkdir()
    token_dir.mkdir()
    started = time.monotonic()
    with running_apiserver(assets) as server:
        log(f"real kube-apiserver {server.version} up in {server.startup_seconds:.1f} s at {server.host}")
        (config_dir / "kubeconfig").write_text(json.dumps(kubeconfig(server, server.operator_token)))
        (token_dir / "token").write_text(aiven_token + "\n")
        for path in (config_dir, token_dir, *config_dir.iterdir(), *token_dir.iterdir()):
            os.chown(path, uid, gid)
            path.chmod(0o500 if path.is_dir() else 0o400)
        fake_log, operator_log = rt.workdir / "fake-aiven.log", rt.workdir / "operator.log"
        fake = rt.start(
            ["aivenator", "fake-aiven", "--port", str(aiven_port), "--token", aiven_token], fake_log
        )
        watched = [("fake-aiven", rt.process(fake), fake_log)]
        url = wait_for(
            "the simulator's URL",
            lambda: next(
                (line.split("=", 1)[1] for line in fake_log.read_text().splitlines()
                 if line.startswith("AIVEN_WEB_URL=")),
                None,
            ),
            watched,
        )
        log(f"simulator (aivenator fake-aiven, in the image) at {url}")
        operator = rt.start(
            [
                "aivenator", "run",
                "--kubeconfig", "/etc/aivenator/kubeconfig",
                "--aiven-api-url", url,
                "--aiven-token-file", "/var/run/secrets/aiven/token",
                "--projects", PROJECT, "--main-project", PROJECT,
                "--metrics-address", f"127.0.0.1:{metrics_port}",
                "--health-probe-address", f"127.0.0.1:{health_port}",
                "--log-format", "json", "--workers", "2",
            ],
            operator_log,
            binds={"/etc/aivenator": config_dir, "/var/run/secrets/aiven": token_dir},
            memory_limit=512 * 1024 * 1024,  # deploy/operator.yaml: limits.memory 512Mi
        )
        watched.append(("operator", rt.process(operator), operator_log))
        namespace = f"smoke-{uuid.uuid4().hex[:6]}"
        with server.admin_client() as admin:
            core, custom = k8s.CoreV1Api(admin), k8s.CustomObjectsApi(admin)
            core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
            custom.create_namespaced_custom_object(
                "aiven.nais.io", "v1", namespace, "aivenapplications",
                {
                    "apiVersion": "aiven.nais.io/v1",
                    "kind": "AivenApplication",
                    "metadata": {"name": "app", "namespace": namespace,
                                 "labels": {"aiven.nais.io/secret-generation": "1"}},
                    "spec": {"kafka": {"pool": PROJECT, "secretName": "app-kafka"}},
                },
            )

            def secret() -> Any:
                try:
                    return core.read_namespaced_secret("app-kafka", namespace)
                except ApiException as exc:
                    if exc.status == 404:
                        return None
                    raise

            found = wait_for("the Kafka Secret", secret, watched)
            keys = sorted((found.data or {}).keys())
            for key in ("KAFKA_BROKERS", "KAFKA_CERTIFICATE", "KAFKA_PRIVATE_KEY", "KAFKA_CA"):
                if key not in keys:
                    fail(f"the Secret app-kafka has no {key} (keys: {keys})")

            def converged() -> Any:
                app: Any = custom.get_namespaced_custom_object(
                    "aiven.nais.io", "v1", namespace, "aivenapplications", "app"
                )
                status = app.get("status") or {}
                return status.get("synchronizationState") == "RolloutComplete" and status.get(
                    "synchronizedGeneration"
                ) == app["metadata"]["generation"]

            wait_for("the AivenApplication to be RolloutComplete", converged, watched)
        limit, peak = rt.memory(operator)
        if limit != 512 * 1024 * 1024:
            fail(f"the operator's memory limit is {limit} bytes, not the 512Mi it was started with")
        log(f"operator memory: peak {peak / 2**20:.0f} MiB of the 512 MiB limit")
        log(f"ok: aivenator run converged an app in the real apiserver: Secret app-kafka with {len(keys)} keys, "
            f"RolloutComplete ({time.monotonic() - started:.1f} s from the apiserver start)")
        code = rt.stop(operator)
        rt.stop(fake)
    text = operator_log.read_text(errors="replace")
    if code != 0:
        fail(f"the operator exited {code} on SIGTERM:\n{tail(operator_log)}")
    if "Traceback" in text:
        fail(f"the operator printed a traceback:\n{tail(operator_log)}")
    if aiven_token in text:
        fail("the Aiven token appears in the operator's output")
    log("ok: the operator stopped on SIGTERM with exit 0, no traceback, no token in its output")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", type=Path, default=ROOT / "out" / "image" / "oci")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    parser.add_argument("--tag", default=version)
    args = parser.parse_args(argv)
    for tool in ("runc", "umoci"):
        if shutil.which(tool) is None:
            fail(f"{tool} is not installed (bash hack/image/deps.sh)")
    if not (args.layout / "index.json").exists():
        fail(f"no OCI layout at {args.layout} (run make image)")
    assets_dir = os.environ.get("AIVENATOR_KUBE_ASSETS_DIR") or subprocess.run(
        ["bash", str(ROOT / "hack" / "kube-test-assets.sh")], check=True, capture_output=True, text=True
    ).stdout.strip().splitlines()[-1]
    assets = Path(assets_dir)
    started = time.monotonic()
    with unpacked(args.layout, args.tag) as (rootfs, config, workdir):
        user = config["process"]["user"]
        uid, gid = int(user["uid"]), int(user["gid"])
        rt = Runtime(rootfs, config, workdir)
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            check_help(rt)
            check_user_and_filesystem(rt, uid, gid)
            check_demo(rt)
            check_operator(rt, assets, uid, gid)
        finally:
            rt.cleanup()
            signal.signal(signal.SIGTERM, previous)
    log(f"OK: every check passed in {time.monotonic() - started:.0f} s (runtime: runc)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
