//! Swarm mode: the order `hlsys swarm deploy` follows. Pure; the `[swarm]` table is
//! [`crate::config::swarm`], the Docker side is `src/swarm/`, the Compose → Swarm document
//! adjustment is [`adjust`].
//!
//! Swarm schedules the services of one stack; what it lacks is order across stacks.
//! hlsys deploys layer by layer (the layers' start order), waits until every service of
//! a layer runs (healthy, where it has a healthcheck), and does not deploy a stack that
//! requires (`Requires=`: a layer's `requires`, a stack's `requires`) something that did
//! not converge. What only wants it is deployed anyway, as systemd would start it.

pub mod adjust;

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::model::{Layer, Model};
use crate::redact::{mask, HIDDEN};

/// Service label holding the digest of the document a service was deployed from: a
/// second deploy of an unchanged stack is skipped (no service update, no task restart).
pub const DIGEST_LABEL: &str = "io.hlsys.swarm.digest";

/// Hex SHA-256 of a document as deployed (serde_json maps are sorted: stable).
pub fn digest(document: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(document).expect("a JSON value serialises");
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The stack ids that must not be deployed because something they require did not
/// converge (or was itself held back): a stack's own `requires`, and every stack of a
/// layer that requires a layer with a failed stack. Wants never hold anything back.
pub fn held_back(model: &Model, failed: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut held: BTreeMap<String, String> = BTreeMap::new();
    // Until nothing changes: a stack may require one that sorts after it in its layer.
    loop {
        let before = held.len();
        for layer in &model.layers {
            hold_layer(model, layer, failed, &mut held);
        }
        if held.len() == before {
            return held;
        }
    }
}

/// One pass over a layer's stacks for [`held_back`]; a stack keeps its first reason.
fn hold_layer(model: &Model, layer: &Layer, failed: &BTreeSet<String>, held: &mut BTreeMap<String, String>) {
    let bad = |id: &String, held: &BTreeMap<String, String>| failed.contains(id) || held.contains_key(id);
    let layer_cause = layer.requires.iter().find_map(|req| {
        model
            .stacks
            .iter()
            .find(|s| &s.layer == req && bad(&s.id, held))
            .map(|s| {
                format!(
                    "layer {} requires layer {req}, whose stack {} did not converge",
                    layer.name, s.id
                )
            })
    });
    for id in &layer.stacks {
        let Some(stack) = model.stack(id) else { continue };
        if held.contains_key(id) {
            continue;
        }
        let cause = layer_cause.clone().or_else(|| {
            stack
                .requires
                .iter()
                .find(|r| bad(r, held))
                .map(|r| format!("requires stack {r}, which did not converge"))
        });
        if let Some(c) = cause {
            held.insert(id.clone(), c);
        }
    }
}

/// The stacks of a layer in waves: a stack comes in a later wave than every stack of its
/// layer that it requires, so it is deployed only once they converged (or held back when
/// they did not). Wants do not wait: a wanted stack that never converges (a GPU stack on
/// a swarm without a GPU node) must not hold up the stacks that only want it.
pub fn waves(model: &Model, layer: &Layer) -> Vec<Vec<String>> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut left: Vec<String> = layer.stacks.clone();
    let mut out = Vec::new();
    while !left.is_empty() {
        let (ready, wait): (Vec<String>, Vec<String>) = left.into_iter().partition(|id| {
            model
                .stack(id)
                .is_none_or(|s| s.requires.iter().all(|r| !layer.stacks.contains(r) || done.contains(r)))
        });
        if ready.is_empty() {
            // Only a cycle leaves nothing ready, and the graph already left cycles out.
            out.push(wait);
            break;
        }
        done.extend(ready.iter().cloned());
        out.push(ready);
        left = wait;
    }
    out
}

/// A document fit for printing: every `environment` value hidden, and every other string
/// with a value of the stack's env files in it masked. Compose has already interpolated
/// those values everywhere, and no report may carry them. Values under 4 characters are
/// left: masking every "1" or "yes" would hide the document, not a secret.
pub fn redact(document: &serde_json::Value, env_values: &[String]) -> serde_json::Value {
    use serde_json::Value;
    let mut doc = document.clone();
    if let Some(services) = doc.get_mut("services").and_then(Value::as_object_mut) {
        for svc in services.values_mut() {
            match svc.get_mut("environment") {
                Some(Value::Object(env)) => env.values_mut().for_each(|v| {
                    if !v.is_null() {
                        *v = Value::String(HIDDEN.into());
                    }
                }),
                Some(Value::Array(list)) => list.iter_mut().for_each(|v| {
                    if let Some((k, _)) = v.as_str().and_then(|s| s.split_once('=')) {
                        *v = Value::String(format!("{k}={HIDDEN}"));
                    }
                }),
                _ => {}
            }
        }
    }
    mask_strings(&mut doc, env_values);
    doc
}

fn mask_strings(v: &mut serde_json::Value, env_values: &[String]) {
    use serde_json::Value;
    match v {
        Value::String(s) => *s = mask(s, env_values),
        Value::Array(a) => a.iter_mut().for_each(|x| mask_strings(x, env_values)),
        Value::Object(o) => o.values_mut().for_each(|x| mask_strings(x, env_values)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_environment_and_env_values() {
        let doc = serde_json::json!({"services": {"a": {
            "environment": {"TOKEN": "s3cret-token", "EMPTY": null},
            "image": "app:s3cret-token", "command": ["run", "yes"]}}});
        let r = redact(&doc, &["s3cret-token".into(), "yes".into()]);
        assert_eq!(
            r,
            serde_json::json!({"services": {"a": {
                "environment": {"TOKEN": HIDDEN, "EMPTY": null},
                "image": format!("app:{HIDDEN}"), "command": ["run", "yes"]}}})
        );
    }

    #[test]
    fn digest_is_stable_and_sensitive() {
        let a = serde_json::json!({"b": 1, "a": [1, 2]});
        let b = serde_json::json!({"a": [1, 2], "b": 1});
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&serde_json::json!({"a": [2, 1], "b": 1})));
    }
}
