#!/usr/bin/env python3
"""Volume backup and restore throughput: `compound volume backup/restore`
beside plain `tar` with the same compression (zstd -3, all cores), on the
same volume, in the same run; plus the codec measurements the archive
format was chosen by.

    .venv/bin/python bench/volume_backup.py                 1 GiB volume, 3 rounds
    .venv/bin/python bench/volume_backup.py --size-mib 256 --rounds 1

The volume (local driver) is filled once, seeded: half in 4 large files,
half in small files of 4-64 KiB in directories of 500; half of the bytes
random (incompressible), half hex text (compresses ~2:1).

Per round, interleaved so load from other processes hits all alike:
  compound backup   `compound volume backup` (CLI process, --via mount): read
                    the volume's directory, sha256 every file, zstd, fsync
  compound backup (engine)   the same with --via engine (helper container,
                    the engine's archive API): the fallback path
  tar backup        tar -cf - . | zstd -3 -T0 > FILE && sync FILE
  compound restore  `compound volume restore` (--via mount): decompress,
                    verify every sha256, extract beside the volume, swap in
  compound restore (engine)  the same with --via engine
  tar restore       rm -rf the old contents; zstd -dc FILE | tar -xp
                    (both restores replace the volume's 1 GiB by the backup's)

Every command starts after a `sync` (untimed), so none pays for flushing
the previous one's writes.

MB/s are the volume's bytes (sum of file sizes) per second of wall clock
for the whole command (compound's include starting Python, ~0.5 s). Reads
come from the page cache for all paths (the volume was just written); the
machine's caches are not dropped (other work shares it).

Results: bench/results/volume_backup-<date>T<time>_<host>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

from run import RESULTS_DIR, ROOT, fmt_ratio, log, machine_info, sh, summarize, tail

COMPOUND = str(ROOT / ".venv" / "bin" / "compound")
MiB = 1 << 20
SMALL_FILES_PER_DIR = 500


def fill(root: Path, size: int, seed: int) -> dict[str, int]:
    """Half the bytes in 4 large files, half in small ones; half random, half hex."""
    rng = random.Random(seed)

    def content(n: int, compressible: bool) -> bytes:
        return rng.randbytes(n // 2).hex().encode() if compressible else rng.randbytes(n)

    large = size // 2 // 4
    for i in range(4):
        (root / f"large-{i}.bin").write_bytes(content(large, compressible=i % 2 == 1))
    left, n = size - 4 * large, 0
    while left > 0:
        d = root / "small" / f"d{n // SMALL_FILES_PER_DIR:04d}"
        if n % SMALL_FILES_PER_DIR == 0:
            d.mkdir(parents=True)
        k = min(left, rng.randint(4, 64) * 1024)
        (d / f"f{n:06d}").write_bytes(content(k, compressible=n % 2 == 1))
        left -= k
        n += 1
    return {"bytes": size, "large_files": 4, "small_files": n}


def timed(cmd: list[str] | str, what: str) -> tuple[float, dict[str, Any] | None]:
    # start from clean page-cache writeback: otherwise whoever runs after a
    # restore pays for flushing its gigabyte (measured: up to +4 s)
    sh(["sync"])
    t0 = time.monotonic()
    r = sh(cmd if isinstance(cmd, list) else ["sh", "-c", cmd], timeout=1800)
    took = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed ({r.returncode}):\n{tail(r.stderr or r.stdout)}")
    try:
        return took, json.loads(r.stdout)
    except ValueError:
        return took, None


def codecs(mountpoint: Path, work: Path, sample_mib: int) -> dict[str, Any]:
    """Compression candidates on the same sample of the volume's tar stream."""
    sample = work / "sample.tar"
    sh(["sh", "-c", f"tar -C {mountpoint} -cf - . | head -c {sample_mib * MiB} > {sample}"])
    raw = sample.read_bytes()
    out: dict[str, Any] = {"sample_bytes": len(raw)}
    for name, comp, decomp in (
        ("zstd -3 -T0", "zstd -q -3 -T0 -c", "zstd -q -dc"),
        ("zstd -1 -T0", "zstd -q -1 -T0 -c", "zstd -q -dc"),
        ("gzip -1", "gzip -1 -c", "gzip -dc"),
        ("gzip -6", "gzip -6 -c", "gzip -dc"),
    ):
        packed = work / "packed"
        t0 = time.monotonic()
        sh(["sh", "-c", f"{comp} < {sample} > {packed}"], timeout=1800)
        t_comp = time.monotonic() - t0
        t0 = time.monotonic()
        sh(["sh", "-c", f"{decomp} < {packed} > /dev/null"], timeout=1800)
        t_dec = time.monotonic() - t0
        out[name] = {
            "compress_mb_s": round(len(raw) / t_comp / 1e6, 1),
            "decompress_mb_s": round(len(raw) / t_dec / 1e6, 1),
            "ratio": round(packed.stat().st_size / len(raw), 3),
        }
    t0 = time.monotonic()
    packed_z = zlib.compress(raw, 1)
    out["python zlib 1 (in-process)"] = {
        "compress_mb_s": round(len(raw) / (time.monotonic() - t0) / 1e6, 1),
        "ratio": round(len(packed_z) / len(raw), 3),
    }
    sample.unlink()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--codec-sample-mib", type=int, default=256)
    args = ap.parse_args()
    if not Path(COMPOUND).exists():
        log(f"{COMPOUND} not found: run `make venv`")
        return 1

    project = f"benchvol-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="volume-bench-", dir=os.environ.get("BENCH_TMP")))
    compose = work / "compose.yaml"
    compose.write_text(
        "services:\n  app:\n    image: local/busybox:latest\n"
        "    volumes: [data:/data, peer:/peer]\n"
        "volumes:\n  data: {}\n  peer: {}\n"
    )
    base = [COMPOUND, "--progress", "quiet", "-f", str(compose), "-p", project]
    vol, peer = f"{project}_data", f"{project}_peer"
    res: dict[str, Any] = {
        "benchmark": "volume_backup",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_before": list(os.getloadavg()),
    }
    times: dict[str, list[float]] = {}
    try:
        for name in (vol, peer):
            sh(["docker", "volume", "create", "--label", f"io.compound.project={project}",
                "--label", f"io.compound.volume={name.rsplit('_', 1)[1]}", name])  # fmt: skip
        mp = Path(sh(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", vol]).stdout.strip())
        peer_mp = Path(
            sh(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", peer]).stdout.strip()
        )
        log(f"filling {vol} with {args.size_mib} MiB ...")
        t0 = time.monotonic()
        res["volume"] = fill(mp, args.size_mib * MiB, args.seed)
        log(f"  filled in {time.monotonic() - t0:.1f}s: {res['volume']}")
        size = res["volume"]["bytes"]
        ours, theirs = work / "compound.tar.zst", work / "tar.tar.zst"
        internal: dict[str, list[float]] = {}

        def record(key: str, took: float, out: dict[str, Any] | None) -> None:
            times.setdefault(key, []).append(took)
            if out and out.get("seconds"):
                internal.setdefault(key, []).append(out["seconds"])
            log(f"  {key:<28} {took:6.2f}s  {size / took / 1e6:7.1f} MB/s")

        for rnd in range(1, args.rounds + 1):
            log(f"round {rnd}/{args.rounds}")
            for via, key in (("mount", "compound backup"), ("engine", "compound backup (engine)")):
                ours.unlink(missing_ok=True)
                cmd = [*base, "volume", "backup", "data", "-o", str(ours), "--via", via, "--json"]
                record(key, *timed(cmd, key))
            theirs.unlink(missing_ok=True)
            record(
                "tar backup",
                *timed(
                    f"tar -C {mp} --numeric-owner -cf - . | zstd -q -3 -T0 > {theirs}"
                    f" && sync {theirs}",
                    "tar backup",
                ),
            )
            for via, key in (
                ("mount", "compound restore"),
                ("engine", "compound restore (engine)"),
            ):
                cmd = [*base, "volume", "restore", "data", str(ours), "--via", via, "--json"]
                record(key, *timed(cmd, key))
            if rnd == 1:  # the peer replaces 1 GiB by 1 GiB as compound does
                sh(["sh", "-c", f"zstd -q -dc {theirs} | tar -C {peer_mp} -xpf -"])
            # the peer replaces contents too: clear, then extract
            record(
                "tar restore",
                *timed(
                    f"rm -rf {peer_mp}/* && zstd -q -dc {theirs} | tar -C {peer_mp}"
                    " --numeric-owner -xpf -",
                    "tar restore",
                ),
            )
        res["archive_bytes"] = {"compound": ours.stat().st_size, "tar": theirs.stat().st_size}
        log("codecs on a sample of the volume's tar stream ...")
        res["codecs"] = codecs(mp, work, args.codec_sample_mib)
        res["internal_seconds"] = {k: summarize(v) for k, v in internal.items()}
    finally:
        for name in (vol, peer):
            sh(["docker", "volume", "rm", "-f", name])
        shutil.rmtree(work, ignore_errors=True)
    res["load_after"] = list(os.getloadavg())
    res["seconds"] = {k: summarize(v) for k, v in times.items()}
    res["mb_per_s"] = {k: round(size / statistics.median(v) / 1e6, 1) for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    res["ratios"] = {
        "backup compound/tar (time)": round(med["compound backup"] / med["tar backup"], 2),
        "restore compound/tar (time)": round(med["compound restore"] / med["tar restore"], 2),
        "backup engine/mount (time)": round(
            med["compound backup (engine)"] / med["compound backup"], 2
        ),
        "restore engine/mount (time)": round(
            med["compound restore (engine)"] / med["compound restore"], 2
        ),
    }
    base_path = write_results(res)
    log(f"\nwrote {base_path.relative_to(ROOT)}.json and .md")
    print(base_path.with_suffix(".md").read_text())
    return 0


def write_results(res: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    base = RESULTS_DIR / f"volume_backup-{stamp}_{res['machine']['hostname']}"
    base.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    m, v = res["machine"], res["volume"]
    lines = [
        f"# Volume backup/restore benchmark — {res['date']} on {m['hostname']}",
        "",
        f"{m['nproc']} x {m.get('cpu')}, {m.get('memory_mib')} MiB, kernel {m['kernel']},"
        f" {m.get('os')}, Docker {m.get('docker_server')} ({m.get('docker_storage_driver')});"
        f" load average before/after: {res['load_before']} / {res['load_after']}.",
        "",
        f"Volume: {v['bytes'] / MiB:.0f} MiB in {v['large_files']} large and"
        f" {v['small_files']} small files, half random, half hex text. Archives:"
        f" compound {res['archive_bytes']['compound'] / MiB:.0f} MiB,"
        f" tar {res['archive_bytes']['tar'] / MiB:.0f} MiB (both zstd -3 -T0).",
        "",
        "| path | median s | min s | max s | MB/s (median) | runs |",
        "|---|---|---|---|---|---|",
    ]
    for key, s in res["seconds"].items():
        lines.append(
            f"| {key} | {s['median']:.2f} | {s['min']:.2f} | {s['max']:.2f} |"
            f" {res['mb_per_s'][key]} | {s['n']} |"
        )
    lines += [
        "",
        "Ratios of medians (time, lower is better for compound): "
        + ", ".join(f"{k} **{fmt_ratio(r)}**" for k, r in res["ratios"].items())
        + ".",
        "",
        f"Codecs on {res['codecs']['sample_bytes'] / MiB:.0f} MiB of the volume's tar stream:",
        "",
        "| codec | compress MB/s | decompress MB/s | size ratio |",
        "|---|---|---|---|",
    ]
    for name, c in res["codecs"].items():
        if isinstance(c, dict):
            lines.append(
                f"| {name} | {c['compress_mb_s']} | {c.get('decompress_mb_s', '—')} |"
                f" {c['ratio']} |"
            )
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return base


if __name__ == "__main__":
    sys.exit(main())
