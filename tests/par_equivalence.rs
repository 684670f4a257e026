//! Large projects are loaded with per-service work spread across threads. The result must be
//! byte-identical to a one-thread load, warnings in the same order, and the error reported
//! must be the first in file order whatever the scheduling.

use berth::compose::{self, emit, model, LoadOptions};

fn project(dir: &std::path::Path, services: usize, broken: &[usize]) {
    let mut s = String::from("name: par\nx-base: &base\n  restart: always\nservices:\n");
    for i in 0..services {
        let extra = if broken.contains(&i) {
            "    mem_limit: ${BAD_SIZE}\n".to_string()
        } else {
            String::new()
        };
        s.push_str(&format!(
            "  s{i}:\n    <<: *base\n    image: img{i}:${{TAG:-1}}\n    command: run --n {i}\n    ports: [\"{p}:80\", \"{p}:80\"]\n    environment: [\"A={i}\", \"B=${{UNSET_{i}}}\"]\n    volumes: [\"./d{i}:/d\"]\n    healthcheck: {{test: [\"CMD\", \"true\"], interval: 5s}}\n    privileged: ${{PRIV:-false}}\n{extra}",
            p = 20000 + i
        ));
        if i > 0 {
            s.push_str(&format!("    depends_on: [s{}]\n", i - 1));
        }
    }
    std::fs::write(dir.join("compose.yaml"), s).unwrap();
}

fn load_json(dir: &std::path::Path, threads: usize) -> Result<(String, Vec<String>), String> {
    let mut opts = LoadOptions::from_process().unwrap();
    opts.cwd = dir.to_path_buf();
    opts.os_env.clear();
    opts.os_env.insert("BAD_SIZE".into(), "lots".into());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let loaded = compose::load(&opts).map_err(|e| e.to_string())?;
        let project = loaded.project.as_ref().ok_or("no project")?;
        Ok((
            emit::to_json(&model::to_config_json(project)),
            loaded.warnings.clone(),
        ))
    })
}

#[test]
fn parallel_load_equals_serial_load() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 150, &[]);
    let serial = load_json(dir.path(), 1).unwrap();
    let parallel = load_json(dir.path(), 4).unwrap();
    assert_eq!(serial.0, parallel.0);
    assert_eq!(serial.1, parallel.1);
    assert!(serial.0.contains("\"s149\""));
    assert!(serial.1.iter().any(|w| w.contains("UNSET_0")));
}

#[test]
fn parallel_load_reports_the_first_error_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), 150, &[97, 41, 130]);
    let serial = load_json(dir.path(), 1).unwrap_err();
    for _ in 0..5 {
        assert_eq!(load_json(dir.path(), 4).unwrap_err(), serial);
    }
    assert!(serial.contains("s41"), "{serial}");
}

#[test]
fn schema_errors_win_over_canonical_errors_in_large_projects() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = String::from("services:\n");
    for i in 0..120 {
        s.push_str(&format!("  s{i}:\n    image: x\n"));
        if i == 77 {
            // Invalid for the schema and unusable for the canonical form alike.
            s.push_str("    ports: 5\n    volumes: {a: b}\n");
        }
    }
    std::fs::write(dir.path().join("compose.yaml"), s).unwrap();
    let serial = load_json(dir.path(), 1).unwrap_err();
    let parallel = load_json(dir.path(), 4).unwrap_err();
    assert_eq!(serial, parallel);
    assert!(serial.contains("s77"), "{serial}");
}
