#!/usr/bin/env python3
"""Writes a docker-archive (`docker save` format) of a busybox image built from Debian's
busybox-static (/bin/busybox), so examples and demos run offline:

    python3 examples/busybox-image.py busybox.tar && berth load -i busybox.tar

Deterministic: sorted entries, mtime 0, uid/gid 0."""
import hashlib, io, json, subprocess, sys, tarfile

def add(tar, name, data=None, link=None, mode=0o755, kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.mode = mode
    info.type = kind
    if link is not None:
        info.type = tarfile.SYMTYPE
        info.linkname = link
    if kind == tarfile.DIRTYPE:
        tar.addfile(info)
    elif data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)

def main(out):
    busybox = open("/bin/busybox", "rb").read()
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d in ["bin", "etc", "root", "tmp", "var"]:
            add(t, d, kind=tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        add(t, "bin/busybox", busybox)
        for a in sorted(set(applets) - {"busybox"}):
            add(t, "bin/" + a, link="busybox")
        add(t, "etc/group", b"root:x:0:\nnogroup:x:65534:\n", mode=0o644)
        add(t, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
            b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", mode=0o644)
    layer = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "busybox-image.py"}],
    }, sort_keys=True).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    layer_hex = diff_id.split(":")[1]
    manifest = json.dumps([{"Config": config_hex + ".json", "RepoTags": ["busybox:latest"],
                            "Layers": [layer_hex + "/layer.tar"]}]).encode()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        add(t, config_hex + ".json", config, mode=0o644)
        add(t, layer_hex, kind=tarfile.DIRTYPE)
        add(t, layer_hex + "/layer.tar", layer, mode=0o644)
        add(t, "manifest.json", manifest, mode=0o644)

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "busybox.tar")
