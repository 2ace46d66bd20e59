"""The container image definitions: the Dockerfile agrees with hack/image/spec.toml (the daemonless
build's source), the build-only Debian packages are found by dependency closure, and the image
SBOM check names every way the SBOM can disagree with the image."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "hack" / "image"


def _load(name: str) -> ModuleType:
    if str(IMAGE) not in sys.path:
        sys.path.insert(0, str(IMAGE))
    spec = importlib.util.spec_from_file_location(f"image_{name}", IMAGE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


spec_mod = _load("spec")
rootfs = _load("rootfs")
sbom = _load("sbom")
SPEC = spec_mod.load_spec()
DOCKERFILE = (ROOT / "Dockerfile").read_text()


# --------------------------------------------------------------------------- Dockerfile vs spec


def test_the_dockerfile_describes_the_spec_image() -> None:
    assert spec_mod.disagreements(SPEC, DOCKERFILE) == []


def test_the_spec_is_the_image_the_issue_asks_for() -> None:
    assert SPEC["base"]["suite"] == "bookworm"
    assert SPEC["base"]["packages"] == ["python3"]
    assert (SPEC["user"]["uid"], SPEC["user"]["gid"]) == (65532, 65532)
    assert SPEC["config"]["entrypoint"] == ["aivenator"]
    assert SPEC["config"]["cmd"] == ["run"]
    assert SPEC["config"]["env"]["PATH"].startswith(SPEC["venv"]["path"] + "/bin:")


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("USER 65532:65532", "USER 1000:1000", "USER"),
        ('ENTRYPOINT ["aivenator"]', "ENTRYPOINT aivenator", "ENTRYPOINT"),
        ('CMD ["run"]', 'CMD ["demo"]', "CMD"),
        ("WORKDIR /tmp", "WORKDIR /", "WORKDIR"),
        ("EXPOSE 8080 8081", "EXPOSE 8080", "EXPOSE"),
        ("    PYTHONUNBUFFERED=1 \\\n", "    PYTHONUNBUFFERED=0 \\\n", "ENV"),
        ("ARG DEBIAN_IMAGE=debian:bookworm-slim", "ARG DEBIAN_IMAGE=python:3.11-slim-bookworm", "FROM"),
        ("ARG DEBIAN_IMAGE=debian:bookworm-slim", "ARG DEBIAN_IMAGE=debian:trixie-slim", "FROM"),
        ("install -y --no-install-recommends python3 \\\n", "install -y --no-install-recommends python3 curl \\\n", "runtime stage installs"),
        ("python3 python3-venv", "python3 python3-venv python3-pip", "build stage"),
        ("--system --gid 65532 aivenator", "--system --gid 1000 aivenator", "groupadd"),
        ("--system --uid 65532 --gid 65532", "--system --uid 1000 --gid 65532", "useradd"),
        ("--shell /usr/sbin/nologin aivenator", "--shell /bin/bash aivenator", "useradd"),
        ("COPY --from=build /opt/aivenator /opt/aivenator", "COPY --from=build /opt/aivenator /opt/venv", "COPY"),
        ("python3 -m venv /opt/aivenator", "python3 -m venv /opt/other", "venv"),
        ('org.opencontainers.image.licenses="MIT"', 'org.opencontainers.image.licenses="GPL-3.0"', "LABEL"),
    ],
)
def test_each_disagreement_is_named(old: str, new: str, named: str) -> None:
    assert old in DOCKERFILE, f"the test's anchor {old!r} is not in the Dockerfile any more"
    found = spec_mod.disagreements(SPEC, DOCKERFILE.replace(old, new, 1))
    assert found, f"changing {old!r} to {new!r} was not noticed"
    assert any(named in problem for problem in found), found


def test_continuations_and_comments_are_joined() -> None:
    parsed = spec_mod.instructions("FROM a\n# c\nRUN x \\\n  # inner\n  && y\nUSER 1\n")
    assert [(i.keyword, i.args) for i in parsed] == [("FROM", "a"), ("RUN", "x && y"), ("USER", "1")]


def test_shell_vars_round_trip_through_bash_quoting() -> None:
    text = spec_mod.shell_vars(SPEC)
    assert "IMAGE_UID=65532\n" in text
    assert "IMAGE_ENTRYPOINT=(aivenator)\n" in text
    assert "'org.opencontainers.image.description=Kubernetes operator" in text


# --------------------------------------------------------------------------- build-only packages


def stanza(name: str, depends: str = "", essential: bool = False, provides: str = "") -> str:
    lines = [f"Package: {name}", "Status: install ok installed", "Version: 1.0", "Architecture: amd64"]
    if essential:
        lines.append("Essential: yes")
    if provides:
        lines.append(f"Provides: {provides}")
    if depends:
        lines.append(f"Depends: {depends}")
    return "\n".join(lines) + "\n"


STATUS = "\n".join(
    [
        stanza("bash", "base-files (>= 2.1.12), debianutils (>= 5.6-0.1)", essential=True),
        stanza("base-files", essential=True),
        stanza("debianutils"),
        stanza("python3", "python3.11 (>= 3.11.2-1~), libpython3-stdlib (= 3.11.2-1+b1)"),
        stanza("python3.11", "libpython3.11-stdlib, media-types | mime-support"),
        stanza("libpython3-stdlib"),
        stanza("libpython3.11-stdlib", "libssl3 (>= 3.0.0), libffi8"),
        stanza("libssl3"),
        stanza("libffi8", provides="libffi"),
        stanza("media-types"),
        stanza("python3-venv", "python3.11-venv, python3"),
        stanza("python3.11-venv", "python3.11, python3-pip-whl, python3-setuptools-whl"),
        stanza("python3-pip-whl", "ca-certificates"),
        stanza("python3-setuptools-whl"),
        stanza("ca-certificates", "openssl (>= 1.1.1), debconf (>= 0.5) | debconf-2.0"),
        stanza("openssl", "libc6:any"),
        "Package: removed-config\nStatus: deinstall ok config-files\nVersion: 1\n",
    ]
)


def test_build_only_packages_are_everything_outside_the_runtime_closure(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(STATUS)
    assert rootfs.purge_list(tmp_path, ["python3"]) == [
        "ca-certificates",
        "openssl",
        "python3-pip-whl",
        "python3-setuptools-whl",
        "python3-venv",
        "python3.11-venv",
    ]


def test_a_missing_runtime_package_stops_the_build(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(STATUS)
    with pytest.raises(SystemExit, match="not installed: python3-yaml"):
        rootfs.purge_list(tmp_path, ["python3", "python3-yaml"])


def test_a_package_kept_through_provides() -> None:
    packages = rootfs.installed(stanza("a", "libffi-virtual", essential=True) + "\n" + stanza("b", provides="libffi-virtual"))
    assert rootfs.runtime_closure(packages, []) == {"a", "b"}


def test_add_user_appends_once_and_refuses_a_taken_uid(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\n")
    rootfs.add_user(tmp_path, "aivenator", 65532, 65532, "/nonexistent", "/usr/sbin/nologin")
    assert (etc / "passwd").read_text().splitlines()[-1] == "aivenator:x:65532:65532::/nonexistent:/usr/sbin/nologin"
    assert (etc / "group").read_text().splitlines()[-1] == "aivenator:x:65532:"
    with pytest.raises(SystemExit, match="already has"):
        rootfs.add_user(tmp_path, "other", 65532, 65532, "/nonexistent", "/usr/sbin/nologin")


# --------------------------------------------------------------------------- image SBOM


DIGEST = "sha256:" + "ab" * 32
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\n'
DEB_STATUS = (
    stanza("python3", "libc6")
    + "\n"
    + "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u14\nArchitecture: amd64\nSource: glibc\n"
)
METADATA = {
    "aivenator-0.1.0.dist-info": "Metadata-Version: 2.4\nName: aivenator\nVersion: 0.1.0\n\nbody",
    "PyYAML-6.0.4.dist-info": "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.4\n",
}
LOCK = {"pyyaml": "6.0.4"}
PROJECT = ("aivenator", "0.1.0")
CONFIG = {"created": "2026-12-01T00:00:00Z", "architecture": "amd64", "os": "linux", "config": {"User": "65532:65532"}}


def image_bom(metadata: dict[str, str] | None = None) -> dict[str, Any]:
    bom: dict[str, Any] = sbom.build_bom(DIGEST, CONFIG, DEB_STATUS, OS_RELEASE, metadata or METADATA, "0.1.0")
    return bom


def test_a_faithful_image_sbom_passes() -> None:
    bom = image_bom()
    assert sbom.problems(bom, DEB_STATUS, METADATA, LOCK, PROJECT, ["python3"]) == []
    purls = [c["purl"] for c in bom["components"]]
    assert "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12" in purls
    assert "pkg:pypi/pyyaml@6.0.4" in purls
    assert bom["metadata"]["component"]["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    assert bom["metadata"]["timestamp"] == CONFIG["created"]
    assert image_bom() == bom, "the same image must give the same SBOM"


def test_a_debian_package_missing_from_the_sbom_is_named() -> None:
    bom = image_bom()
    bom["components"] = [c for c in bom["components"] if c["name"] != "libc6"]
    assert any("libc6" in p for p in sbom.problems(bom, DEB_STATUS, METADATA, LOCK, PROJECT, ["python3"]))


def test_pip_left_in_the_venv_is_named() -> None:
    metadata = {**METADATA, "pip-23.0.1.dist-info": "Name: pip\nVersion: 23.0.1\n"}
    found = sbom.problems(image_bom(metadata), DEB_STATUS, metadata, LOCK, PROJECT, ["python3"])
    assert any("pip 23.0.1, which is not in requirements.lock" in p for p in found), found


def test_a_venv_version_other_than_the_lock_is_named() -> None:
    found = sbom.problems(image_bom(), DEB_STATUS, METADATA, {"pyyaml": "6.0.3"}, PROJECT, ["python3"])
    assert any("pyyaml 6.0.4, the lock/pyproject says 6.0.3" in p for p in found), found


def test_a_wrong_version_in_the_sbom_is_named() -> None:
    bom = image_bom()
    for component in bom["components"]:
        if component["name"] == "libc6":
            component["version"] = "2.35"
    found = sbom.problems(bom, DEB_STATUS, METADATA, LOCK, PROJECT, ["python3"])
    assert any("libc6 2.36-9+deb12u14 is listed as ['2.35']" in p for p in found), found


def test_a_missing_runtime_package_is_named() -> None:
    found = sbom.problems(image_bom(), DEB_STATUS, METADATA, LOCK, PROJECT, ["python3", "tini"])
    assert "runtime package tini is not installed in the image" in found


# --------------------------------------------------------------------------- manifests vs image


def test_the_deployments_run_as_the_image_user_with_a_read_only_root() -> None:
    uid, gid = SPEC["user"]["uid"], SPEC["user"]["gid"]
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "operator.yaml").read_text()))
    pod = next(d for d in docs if d and d.get("kind") == "Deployment")["spec"]["template"]["spec"]
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid)
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["args"][0] == SPEC["config"]["cmd"][0]
    values = yaml.safe_load((ROOT / "deploy" / "chart" / "aivenator" / "values.yaml").read_text())
    assert (values["podSecurityContext"]["runAsUser"], values["podSecurityContext"]["runAsGroup"]) == (uid, gid)
