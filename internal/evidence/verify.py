#!/usr/bin/env python3
"""Check a groundzero evidence bundle with nothing but Python 3.

Run it inside the unpacked bundle: python3 verify.py
It checks every file against the SHA-256 list in INDEX.json, recomputes the
audit trail's hash chain and the RFC 6962 Merkle root of each checkpoint.
It does not check signatures: use gpg --verify or ssh-keygen -Y verify.
Exit status 0 when everything checked holds, 1 otherwise.
"""
import base64
import hashlib
import json
import os
import sys

problems = []


def bad(path, why):
    problems.append(path)
    print("FAIL  %s: %s" % (path, why))


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def merkle_root(leaves):
    """RFC 6962 tree hash of a list of leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    # Fold complete subtrees from the right edge, as RFC 6962 splits at the
    # largest power of two below n.
    def mth(lo, hi):
        n = hi - lo
        if n == 1:
            return level[lo]
        k = 1
        while k * 2 < n:
            k *= 2
        return hashlib.sha256(b"\x01" + mth(lo, lo + k) + mth(lo + k, hi)).digest()
    return mth(0, len(level))


def main():
    index = json.loads(read("INDEX.json"), object_pairs_hook=no_duplicates)
    if index.get("kind") != "groundzero.evidence/v1":
        bad("INDEX.json", "not a groundzero.evidence/v1 index")
        return 1
    listed = {}
    for f in index["files"]:
        p = f["path"]
        listed[p] = f
        if p.startswith("/") or ".." in p.split("/"):
            bad(p, "unsafe path in the index")
        elif not os.path.isfile(p) or os.path.islink(p):
            bad(p, "missing from the bundle")
        elif sha256(read(p)) != f["sha256"]:
            bad(p, "modified: its SHA-256 differs from the index")
    for root, dirs, files in os.walk("."):
        for name in dirs + files:
            p = os.path.relpath(os.path.join(root, name), ".").replace(os.sep, "/")
            if os.path.islink(p):
                bad(p, "a symbolic link")
            elif os.path.isfile(p) and p not in listed and p not in (
                    "INDEX.json", "INDEX.json.asc", "INDEX.json.sig"):
                bad(p, "extra: not listed in the index")
    print("checked %d files against INDEX.json" % len(listed))

    trail = "trail/entries.jsonl"
    data = read(trail) if os.path.isfile(trail) else b""
    if data and not data.endswith(b"\n"):
        bad(trail, "ends with a partial line")
    lines = data.split(b"\n")[:-1] if data else []
    prev, last_time, leaves = "0" * 64, "", []
    for seq, line in enumerate(lines):
        try:
            e = json.loads(line, object_pairs_hook=no_duplicates)
        except ValueError:
            bad(trail, "entry %d is not JSON" % seq)
            break
        if e.get("seq") != seq or e.get("prev") != prev or e.get("time", "") < last_time:
            bad(trail, "invalid at seq %d: seq, prev or time breaks the chain" % seq)
            break
        prev, last_time = sha256(line), e["time"]
        leaves.append(hashlib.sha256(b"\x00" + line).digest())
    if len(lines) != index["entries"]:
        bad(trail, "holds %d entries, the index says %d" % (len(lines), index["entries"]))
    origin = ""
    if lines:
        origin = "groundzero.audit/v1/" + sha256(lines[0])[:16]
        if origin != index["origin"]:
            bad(trail, "is trail %s, the index says %s" % (origin, index["origin"]))
    print("checked the hash chain of %d entries" % len(lines))

    newest = 0
    cps = sorted(p for p in listed if p.startswith("trail/checkpoints/") and p.endswith(".cp"))
    for p in cps:
        body = read(p).decode("utf-8").split("\n") if os.path.isfile(p) else []
        if len(body) not in (5, 6) or body[0] != origin:
            bad(p, "not a checkpoint of this trail")
            continue
        size = int(body[1])
        if size > len(leaves) or base64.b64decode(body[2]) != merkle_root(leaves[:size]):
            bad(p, "its Merkle root does not match entries 0 to %d" % (size - 1))
            continue
        newest = max(newest, size)
        print("checkpoint %s: %d entries, Merkle root matches" % (p, size))
    if lines and newest != len(lines):
        bad("trail/checkpoints", "the newest checkpoint covers %d of %d entries" % (newest, len(lines)))

    if problems:
        print("INVALID: %d problem(s)" % len(problems))
        return 1
    print("OK: files, hash chain and Merkle roots check; now check the signatures with gpg or ssh-keygen")
    return 0


if __name__ == "__main__":
    sys.exit(main())
