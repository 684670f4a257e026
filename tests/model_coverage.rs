//! The schema decides which keys a user may write; the typed model must hold every one of
//! them, or a key would be silently dropped. The kitchen-sink fixture uses every service
//! property the embedded compose-spec schema defines; loading it (in a debug build, where
//! the loader probes the model for keys it only kept as extensions) must lose nothing.

use std::collections::BTreeSet;
use std::path::Path;

use berth::compose::{self, yaml, LoadOptions};

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/kitchen_sink")
}

#[test]
fn kitchen_sink_uses_every_service_property_of_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../src/compose/compose-spec.json")).expect("schema");
    let allowed: BTreeSet<String> = schema["definitions"]["service"]["properties"]
        .as_object()
        .expect("service properties")
        .keys()
        .cloned()
        .collect();
    let src = std::fs::read_to_string(fixture().join("compose.yaml")).expect("fixture");
    let doc = yaml::parse(&src, "compose.yaml").expect("yaml").remove(0);
    let mut used = BTreeSet::new();
    for svc in doc
        .get("services")
        .and_then(yaml::Node::as_map)
        .expect("services")
        .values()
    {
        used.extend(svc.as_map().expect("service").keys().cloned());
    }
    let missing: Vec<&String> = allowed.difference(&used).collect();
    assert!(
        missing.is_empty(),
        "kitchen sink lacks service properties {missing:?}"
    );
}

#[test]
fn kitchen_sink_loads_into_the_model_without_losing_keys() {
    let mut opts = LoadOptions::from_process().expect("options");
    opts.cwd = fixture();
    opts.os_env.clear();
    opts.profiles = vec!["p1".into()];
    let loaded = compose::load(&opts).expect("kitchen sink loads");
    let project = loaded.project.expect("typed project");
    assert_eq!(project.unknown_keys(), Vec::<String>::new());
    assert!(project.services.contains_key("web"));
}
