//! Docker's event stream: a broadcast for live listeners and a ring of the last 256 for
//! `since`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bollard_stubs::models::{SystemEventsResponse, SystemEventsResponseActor};
use tokio::sync::broadcast;

use super::store::Record;

const KEEP: usize = 256;

pub struct EventBus {
    tx: broadcast::Sender<SystemEventsResponse>,
    ring: Mutex<VecDeque<SystemEventsResponse>>,
}

impl EventBus {
    pub fn new() -> EventBus {
        EventBus {
            tx: broadcast::channel(1024).0,
            ring: Mutex::new(VecDeque::with_capacity(KEEP)),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SystemEventsResponse> {
        self.tx.subscribe()
    }

    pub fn past(&self) -> Vec<SystemEventsResponse> {
        self.ring
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn publish(&self, ev: SystemEventsResponse) {
        if let Ok(mut ring) = self.ring.lock() {
            if ring.len() == KEEP {
                ring.pop_front();
            }
            ring.push_back(ev.clone());
        }
        // No receiver is not an error.
        let _ = self.tx.send(ev);
    }

    /// A container event with Docker's attributes: labels, `image`, `name`, plus `extra`.
    pub fn container(&self, rec: &Record, action: &str, extra: &[(&str, String)]) {
        let mut attributes: HashMap<String, String> = rec.config.labels.clone().unwrap_or_default();
        attributes.insert("image".into(), rec.image.clone());
        attributes.insert("name".into(), rec.name.clone());
        for (k, v) in extra {
            attributes.insert(k.to_string(), v.clone());
        }
        let now = chrono::Utc::now();
        self.publish(SystemEventsResponse {
            typ: Some("container".into()),
            action: Some(action.to_string()),
            actor: Some(SystemEventsResponseActor {
                id: Some(rec.id.clone()),
                attributes: Some(attributes),
            }),
            time: Some(now.timestamp()),
            time_nano: now.timestamp_nanos_opt(),
        });
    }
}
