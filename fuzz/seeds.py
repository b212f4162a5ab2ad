#!/usr/bin/env python3
"""Fills corpus/<target>/ with seeds, so the fuzzers start from bundles that
read in full instead of from random bytes that zstd, tar and the manifest
parser refuse at once.

Seeds: the golden signed bundle (tests/fixtures/bundles/v1.0-minimal.zst)
and a few small unsigned bundles made here. Each target gets the layer it
fuzzes: bundle_reader the compressed file, bundle_tar the tar inside it,
bundle_manifest airgap/manifest.json, bundle_admit the compressed file (and
the golden sealed bundle, v1.3-minimal.zst), seal the sealed bundle's
tail, parts_index the index of the seeds split into parts. Needs the zstd
command.

    python3 fuzz/seeds.py        # from anywhere; writes fuzz/corpus/
"""
import hashlib, io, json, pathlib, subprocess, tarfile

FUZZ = pathlib.Path(__file__).resolve().parent
GOLDEN = FUZZ.parent / "tests/fixtures/bundles/v1.0-minimal.zst"
SEALED = FUZZ.parent / "tests/fixtures/bundles/v1.3-minimal.zst"
MEDIA_TYPE = "application/vnd.airgap.bundle.manifest.v1+json"


def sha(data):
    return hashlib.sha256(data).hexdigest()


def blob(data):
    return {"digest": "sha256:" + sha(data), "size": len(data)}


def tar_of(files):
    """A ustar archive cut right after its end-of-archive marker."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            t.addfile(info, io.BytesIO(data))
        end = t.offset
    return buf.getvalue()[: end + 1024]


def manifest_of(entries, images=(), required=()):
    return (json.dumps({
        "mediaType": MEDIA_TYPE,
        "formatVersion": "1.0",
        "tool": "seeds.py",
        "created": "2026-01-01T00:00:00Z",
        "source": {"kind": "docker-archive"},
        "images": list(images),
        "entries": [{"path": p, "size": len(d), "sha256": sha(d)} for p, d in entries],
        "required": list(required),
    }, indent=2) + "\n").encode()


def bundle_parts(entries, images=(), required=()):
    manifest = manifest_of(entries, images, required)
    return manifest, tar_of([("airgap/manifest.json", manifest), *entries])


def small_bundles():
    yield "two-entries", *bundle_parts([("a", b"first entry"), ("b", b"second entry")])
    yield "empty", *bundle_parts([])

    layer, config = b"layer bytes\n", b'{"rootfs":{"diff_ids":[]}}'
    manifest_blob = b'{"schemaVersion":2}'
    absent = b"a layer the site already has\n"
    image = {
        "refs": [{"given": "seed/app:1", "name": "docker.io/seed/app:1"}],
        "platform": {"os": "linux", "architecture": "amd64"},
        "manifest": blob(manifest_blob),
        "config": blob(config),
        "layers": [blob(absent), blob(layer)],
    }
    entries = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')] + [
        ("blobs/sha256/" + sha(d), d) for d in (manifest_blob, config, layer)
    ]
    yield "delta-image", *bundle_parts(entries, [image], [blob(absent)])


def zstd(data, *flags):
    return subprocess.run(["zstd", "-q", "-c", *flags], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def seal_seed(sealed):
    """The seal target's input: the count of bytes before the tail (8 bytes,
    little-endian), then the tail: the sealed bundle's last 4 KiB."""
    tail = sealed[-4096:]
    return (len(sealed) - len(tail)).to_bytes(8, "little") + tail


def parts_index(name, bundle, part_size):
    """The index airgap writes for `bundle` split into parts of `part_size`."""
    parts = [bundle[at:at + part_size] for at in range(0, len(bundle), part_size)]
    return (json.dumps({
        "mediaType": "application/vnd.airgap.parts.v1+json",
        "bundle": name,
        "size": len(bundle),
        "sha256": "sha256:" + sha(bundle),
        "parts": [{"name": f"{name}.{i:03}", "size": len(p), "sha256": "sha256:" + sha(p)}
                  for i, p in enumerate(parts, 1)],
    }, indent=2) + "\n").encode()


def main():
    dirs = {t: FUZZ / "corpus" / t
            for t in ("bundle_reader", "bundle_tar", "bundle_manifest", "bundle_admit",
                      "seal", "parts_index")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)

    golden = GOLDEN.read_bytes()
    golden_tar = zstd(golden, "-d")
    with tarfile.open(fileobj=io.BytesIO(golden_tar)) as t:
        golden_manifest = t.extractfile("airgap/manifest.json").read()
    seeds = [("golden", golden_manifest, golden_tar, golden)]
    for name, manifest, tar in small_bundles():
        seeds.append((name, manifest, tar, zstd(tar, "-3")))

    for name, manifest, tar, bundle in seeds:
        (dirs["bundle_manifest"] / f"seed-{name}").write_bytes(manifest)
        (dirs["bundle_tar"] / f"seed-{name}").write_bytes(tar)
        (dirs["bundle_reader"] / f"seed-{name}").write_bytes(bundle)
        (dirs["bundle_admit"] / f"seed-{name}").write_bytes(bundle)
        (dirs["parts_index"] / f"seed-{name}").write_bytes(
            parts_index(f"{name}.zst", bundle, 700))
    # the one seed with a valid seal (format 1.3), for admission by seal
    sealed = SEALED.read_bytes()
    (dirs["bundle_admit"] / "seed-golden-sealed").write_bytes(sealed)
    (dirs["seal"] / "seed-golden-sealed").write_bytes(seal_seed(sealed))
    (dirs["parts_index"] / "seed-golden-sealed").write_bytes(
        parts_index("shop.zst", sealed, 97))
    print(f"wrote {len(seeds)} seeds for each target under {FUZZ / 'corpus'}")


if __name__ == "__main__":
    main()
