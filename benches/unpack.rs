//! Layer unpack benchmark: berth's Snapshotter (gzip decompression + diff_id hashing +
//! secure unpack) against `tar -xzf` (and `tar` with `pigz -d` when pigz is installed) on a
//! generated ≥ 200 MB gzip layer. Target (issue 3): berth throughput ≥ 0.9× tar's.
//!
//! Run: `cargo bench --bench unpack`. The layer is generated once (deterministically) and
//! cached in /var/tmp/berth-bench/. Runs alternate between the tools, each into a fresh
//! directory; results are flushed (untimed) between runs and removed at the end.
//! BERTH_BENCH_RUNS sets the number of runs per tool (default 5); BERTH_BENCH_SYNC=1 adds
//! runs that flush the result to disk (berth's default `syncfs` against `tar; sync -f`);
//! BERTH_BENCH_TOOLS=berth runs only the named tools (comma-separated), e.g. under perf.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth::engine::image::digest::{Digest, HashingWriter};
use berth::engine::image::snapshot::Snapshotter;

// The same allocator as the berth binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CACHE: &str = "/var/tmp/berth-bench";
const LAYER: &str = "layer-v1.tar.gz";

/// xorshift64*: deterministic content without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "the",
    "layer",
    "container",
    "image",
    "config",
    "return",
    "static",
    "void",
    "int",
    "struct",
    "function",
    "error",
    "value",
    "buffer",
    "const",
    "import",
    "export",
    "module",
    "#include",
    "<stdio.h>",
    "if",
    "else",
    "for",
    "while",
    "{",
    "}",
    "(",
    ")",
    ";",
    "=",
    "0x7f",
    "NULL",
    "true",
    "false",
    "self",
    "println",
    "license",
    "copyright",
    "GNU",
];

/// 4 KiB blocks: 70% random bytes (as in binaries and compressed assets), 30% text-like,
/// so the layer compresses to roughly 0.75 of its size.
fn content(rng: &mut Rng, size: usize, out: &mut Vec<u8>) {
    out.clear();
    while out.len() < size {
        let end = (out.len() + 4096).min(size);
        if rng.below(10) < 7 {
            while out.len() < end {
                out.extend_from_slice(&rng.next().to_le_bytes());
            }
        } else {
            while out.len() < end {
                out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
                out.push(if rng.below(8) == 0 { b'\n' } else { b' ' });
            }
        }
        out.truncate(end);
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

/// Writes the layer; returns its diff_id and uncompressed size.
fn generate(path: &Path) -> io::Result<(Digest, u64)> {
    let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::new(6));
    let mut b = tar::Builder::new(HashingWriter::new(gz));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::new();
    let mut dirs = Vec::new();
    for top in 0..20 {
        let top = format!("usr/lib/pkg{top:02}");
        for sub in 0..20 {
            dirs.push(format!("{top}/sub{sub:02}"));
        }
    }
    let mut parents: Vec<String> = vec!["usr/".into(), "usr/lib/".into()];
    for d in &dirs {
        let top = &d[..d.rfind('/').unwrap_or(0)];
        let top = format!("{top}/");
        if !parents.contains(&top) {
            parents.push(top);
        }
    }
    for p in &parents {
        b.append_data(
            &mut header(tar::EntryType::Directory, 0o755, 0),
            p,
            io::empty(),
        )?;
    }
    let mut n = 0u64;
    for d in &dirs {
        b.append_data(
            &mut header(tar::EntryType::Directory, 0o755, 0),
            format!("{d}/"),
            io::empty(),
        )?;
        // 20 small files per directory, 1–64 KiB, log-uniform (most are small).
        for i in 0..20 {
            let exp = rng.below(1_000) as f64 / 1_000.0 * 6.0;
            let size = (1024.0 * 2f64.powf(exp)) as usize;
            content(&mut rng, size, &mut buf);
            b.append_data(
                &mut header(tar::EntryType::Regular, 0o644, size as u64),
                format!("{d}/file{i:02}.dat"),
                &buf[..],
            )?;
            n += 1;
        }
        b.append_link(
            &mut header(tar::EntryType::Symlink, 0o777, 0),
            format!("{d}/link"),
            "file00.dat",
        )?;
    }
    // Some large files.
    for i in 0..20 {
        let size = 8 << 20 | (rng.below(1 << 20) as usize);
        content(&mut rng, size, &mut buf);
        b.append_data(
            &mut header(tar::EntryType::Regular, 0o755, size as u64),
            format!("usr/lib/pkg{:02}/big{i}.so", i % 20),
            &buf[..],
        )?;
        n += 1;
    }
    let hashing = b.into_inner()?;
    let (gz, diff_id, len) = hashing.finish();
    let mut file = gz.finish()?;
    file.flush()?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    eprintln!("generated {n} files, {len} bytes uncompressed");
    Ok((diff_id, len))
}

/// The cached layer, generated if absent: (path, diff_id, uncompressed bytes).
fn layer() -> io::Result<(PathBuf, Digest, u64)> {
    let dir = Path::new(CACHE);
    fs::create_dir_all(dir)?;
    let path = dir.join(LAYER);
    let meta = dir.join(format!("{LAYER}.meta"));
    if let (true, Ok(text)) = (path.exists(), fs::read_to_string(&meta)) {
        if let Some((d, n)) = text.trim().split_once(' ') {
            if let (Ok(d), Ok(n)) = (d.parse(), n.parse()) {
                return Ok((path, d, n));
            }
        }
    }
    eprintln!("generating {} (once)...", path.display());
    let tmp = dir.join(format!("{LAYER}.tmp"));
    let (diff_id, len) = generate(&tmp)?;
    fs::rename(&tmp, &path)?;
    fs::write(&meta, format!("{diff_id} {len}\n"))?;
    Ok((path, diff_id, len))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn flush() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

fn run_tar(args: &[&str], target: &Path, then_sync: bool) -> Duration {
    fs::create_dir(target).expect("creating a tar target");
    let start = Instant::now();
    let status = Command::new("tar")
        .args(args)
        .arg("-C")
        .arg(target)
        .status()
        .expect("running tar");
    assert!(status.success(), "tar {args:?} failed");
    if then_sync {
        let status = Command::new("sync")
            .arg("-f")
            .arg(target)
            .status()
            .expect("running sync");
        assert!(status.success());
    }
    start.elapsed()
}

fn run_berth(layer: &Path, diff_id: &Digest, root: &Path, sync: bool) -> Duration {
    let mut snapshots = Snapshotter::open(root).expect("opening the snapshotter");
    snapshots.set_sync(sync);
    let start = Instant::now();
    let file = File::open(layer).expect("opening the layer");
    let id = snapshots
        .unpack_layer(None, diff_id, file)
        .expect("berth unpack");
    let took = start.elapsed();
    assert!(snapshots.exists(&id));
    took
}

fn clean(dir: &Path) {
    if dir.exists() {
        fs::remove_dir_all(dir).expect("removing a run directory");
    }
    flush();
}

fn main() {
    let (layer, diff_id, tar_bytes) = match layer() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot prepare the benchmark layer: {e}");
            std::process::exit(1);
        }
    };
    let runs: usize = std::env::var("BERTH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let gz_bytes = fs::metadata(&layer).map(|m| m.len()).unwrap_or(0);
    // Keep the input warm: every tool reads it from the page cache.
    let mut f = File::open(&layer).expect("opening the layer");
    io::copy(&mut f, &mut io::sink()).expect("reading the layer");
    let pigz = Command::new("pigz").arg("--version").output().is_ok();
    let layer_s = layer.to_str().expect("a UTF-8 cache path");
    let pigz_args = ["-xf", layer_s, "--use-compress-program=pigz -d"];
    let tgz_args = ["-xzf", layer_s];

    let work = Path::new(CACHE).join("runs");
    clean(&work);
    fs::create_dir_all(&work).expect("creating the run directory");
    let mut tools: Vec<(&str, Vec<Duration>)> = vec![("berth", vec![]), ("tar -xzf", vec![])];
    if pigz {
        tools.push(("tar -xf (pigz -d)", vec![]));
    }
    // With a flush to disk: slow on this VM's disk, and the discards of the deleted
    // results disturb the next runs, so only on request.
    if std::env::var_os("BERTH_BENCH_SYNC").is_some() {
        tools.push(("berth + syncfs", vec![]));
        tools.push(("tar -xzf + sync -f", vec![]));
    }
    // BERTH_BENCH_TOOLS=berth (comma-separated names) runs only those, e.g. under perf.
    if let Ok(only) = std::env::var("BERTH_BENCH_TOOLS") {
        let only: Vec<&str> = only.split(',').map(str::trim).collect();
        tools.retain(|(name, _)| only.contains(name));
    }
    // Results are kept until the end: ext4 avoids reusing inodes freed in the last 1-5
    // minutes (recently_deleted() in its allocator), and with 8000 inodes freed per run
    // that scan dominated the next run's time (perf: ~60%), whatever the tool.
    // BERTH_BENCH_DELETE_BETWEEN=1 deletes between runs instead.
    let delete_between = std::env::var_os("BERTH_BENCH_DELETE_BETWEEN").is_some();
    for run in 0..runs {
        for (i, (name, times)) in tools.iter_mut().enumerate() {
            let target = work.join(format!("run{run}-tool{i}"));
            let took = match *name {
                "berth" => run_berth(&layer, &diff_id, &target, false),
                "berth + syncfs" => run_berth(&layer, &diff_id, &target, true),
                "tar -xzf" => run_tar(&tgz_args, &target, false),
                "tar -xzf + sync -f" => run_tar(&tgz_args, &target, true),
                _ => run_tar(&pigz_args, &target, false),
            };
            eprintln!("run {run}: {name:<20} {:>8.3} s", took.as_secs_f64());
            times.push(took);
            if delete_between {
                clean(&target);
            } else {
                flush();
            }
        }
    }
    let mb = tar_bytes as f64 / 1e6;
    println!(
        "layer: {:.1} MB gzip, {mb:.1} MB uncompressed; {runs} runs each, medians:",
        gz_bytes as f64 / 1e6
    );
    let med: Vec<(&str, f64)> = tools
        .into_iter()
        .map(|(n, t)| (n, median(t).as_secs_f64()))
        .collect();
    for (name, secs) in &med {
        println!("  {name:<20} {secs:>7.3} s  {:>7.1} MB/s", mb / secs);
    }
    let get = |n: &str| med.iter().find(|(m, _)| *m == n).map(|(_, s)| *s);
    if let (Some(b), Some(t)) = (get("berth"), get("tar -xzf")) {
        println!("  ratio berth / tar -xzf throughput: {:.2}", t / b);
    }
    if let (Some(b), Some(t)) = (get("berth + syncfs"), get("tar -xzf + sync -f")) {
        println!("  ratio with a flush to disk:        {:.2}", t / b);
    }
    if let (Some(b), Some(t)) = (get("berth"), get("tar -xf (pigz -d)")) {
        println!("  ratio berth / tar+pigz throughput: {:.2}", t / b);
    }
    clean(&work);
}
