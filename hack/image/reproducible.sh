#!/usr/bin/env bash
# `make image-reproducible`: builds the image twice from the same commit (out/image-a and
# out/image-b) and compares the manifest digests. Exit 0 if they match; otherwise lists the
# entries that differ between the two layers (content, mode, owner, mtime, link) and exits 1.
# Takes twice as long as `make image`; not part of CI.
set -euo pipefail
{
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
for side in a b; do
  echo "image-reproducible: build $side" >&2
  AIVENATOR_IMAGE_DIR=out/image-$side bash hack/image/build.sh > /dev/null
done
a=$(cat out/image-a/digest) b=$(cat out/image-b/digest)
if [[ $a == "$b" ]]; then
  echo "image-reproducible: OK: both builds are $a"
  exit 0
fi
echo "image-reproducible: FAIL: $a != $b; differing layer entries:" >&2
python3 - out/image-a/oci out/image-b/oci <<'PY' >&2
import gzip, hashlib, io, json, sys, tarfile
def entries(layout):
    index = json.load(open(f"{layout}/index.json"))
    manifest = json.load(open(f"{layout}/blobs/" + index["manifests"][0]["digest"].replace(":", "/")))
    found = {}
    for layer in manifest["layers"]:
        data = gzip.decompress(open(f"{layout}/blobs/" + layer["digest"].replace(":", "/"), "rb").read())
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar:
                body = tar.extractfile(m).read() if m.isfile() else b""
                found[m.name] = (hashlib.sha256(body).hexdigest()[:12], oct(m.mode), m.uid, m.gid, m.mtime, m.linkname)
    return found
a, b = entries(sys.argv[1]), entries(sys.argv[2])
diff = sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))
for name in diff[:100]:
    print(f"  {name}: {a.get(name)} != {b.get(name)}")
print(f"  {len(diff)} entries differ")
PY
exit 1
}
