//! Loader benchmark: a generated 1000-service project, load + validate + normalize + print
//! JSON, timed in-process. Target (issue 2): median under 50 ms on the 2-core CI machine.
//! Run: `cargo bench --bench load` (prints min / median / max over the runs).

use std::time::{Duration, Instant};

use berth::compose::{self, emit, model, LoadOptions};

// The same allocator as the berth binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SERVICES: usize = 1000;
const RUNS: usize = 21;

fn generate(dir: &std::path::Path) -> std::io::Result<()> {
    let mut s = String::from("name: bench\nx-common: &common\n  restart: unless-stopped\n  logging:\n    driver: json-file\n    options: {max-size: 10m}\nservices:\n");
    for i in 0..SERVICES {
        let dep = if i > 0 {
            format!("\n    depends_on: [svc{}]", i - 1)
        } else {
            String::new()
        };
        s.push_str(&format!(
            "  svc{i}:\n    <<: *common\n    image: registry.local/app{i}:${{TAG:-latest}}\n    command: [\"/bin/run\", \"--id\", \"{i}\"]\n    ports: [\"{}:80\"]\n    volumes: [\"./data/{i}:/data\", \"vol{i}:/var/lib\"]\n    environment:\n      - ID={i}\n      - MODE=${{MODE:-prod}}\n    labels: {{tier: \"t{}\"}}\n    healthcheck:\n      test: curl -f http://localhost/\n      interval: 10s\n    networks: [front, back]{dep}\n",
            10000 + i,
            i % 3
        ));
    }
    s.push_str("networks:\n  front: {}\n  back: {}\nvolumes:\n");
    for i in 0..SERVICES {
        s.push_str(&format!("  vol{i}: {{}}\n"));
    }
    std::fs::write(dir.join("compose.yaml"), s)
}

fn main() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tempdir: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = generate(dir.path()) {
        eprintln!("generate: {e}");
        std::process::exit(1);
    }
    let mut opts = match LoadOptions::from_process() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("options: {e}");
            std::process::exit(1);
        }
    };
    opts.cwd = dir.path().to_path_buf();
    opts.os_env.clear();
    let mut total: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut loading: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut cpu: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut bytes = 0;
    for _ in 0..RUNS {
        let c = process_cpu();
        let t = Instant::now();
        let loaded = match compose::load(&opts) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("load: {e}");
                std::process::exit(1);
            }
        };
        let loaded_at = t.elapsed();
        let Some(project) = &loaded.project else {
            eprintln!("no typed project");
            std::process::exit(1);
        };
        let out = emit::to_json(&model::to_config_json(project));
        bytes = out.len();
        total.push(t.elapsed());
        cpu.push(process_cpu().saturating_sub(c));
        loading.push(loaded_at);
        // Freeing the tree is not part of the job: the CLI exits without it (mem::forget).
        drop(out);
        drop(loaded);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let report = |what: &str, mut v: Vec<Duration>| {
        v.sort();
        println!(
            "{what}: min {:.1} ms, median {:.1} ms, max {:.1} ms",
            ms(v[0]),
            ms(v[RUNS / 2]),
            ms(v[RUNS - 1])
        );
    };
    println!("{SERVICES} services, {bytes} bytes of JSON out, {RUNS} runs");
    report("load+validate+normalize", loading);
    report("load+validate+normalize+json", total);
    report("  cpu time (all threads)", cpu);
}

/// CPU time of the whole process: less disturbed than wall time on a busy machine.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
