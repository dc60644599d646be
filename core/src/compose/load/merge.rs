//! Merging compose documents, and an `extends` base with the service that extends it,
//! by the compose-spec rules as compose-go v2 implements them (override/merge.go):
//! mappings merge key by key, sequences append, scalars are replaced, `x-*` keys are
//! replaced whole, a null leaves the earlier value, and some keys have rules of their
//! own ([`Rule`]). Duplicates that appending leaves in `ports`, `volumes`, `env_file`, …
//! are removed where the model reads them (compose-go's "unicity" rules), see
//! [`crate::compose::project`].

use serde_yaml_ng::{Mapping, Value};

use crate::compose::error::{key_display, ComposeError};

type Result<T, E = ComposeError> = std::result::Result<T, E>;

/// Keys merged other than by the general rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// The later value replaces the earlier whole (`command`, `healthcheck.test`, …).
    Replace,
    /// Both sides as sequences (`KEY=VALUE` for a mapping, one item for a string), appended.
    Sequence,
    /// Both sides as mappings (a list of names is a mapping to null), merged.
    Names,
    /// Like `Names`, a listed name meaning `{condition: service_started, required: true}`.
    DependsOn,
    /// `build: dir` is `build: {context: dir}`.
    Build,
    /// Options merge only when both sides use the same driver (or one names none).
    Logging,
}

fn rule(path: &[String]) -> Option<Rule> {
    if !(3..=4).contains(&path.len()) {
        return None;
    }
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    Some(match p.as_slice() {
        ["services", _, "command" | "entrypoint"]
        | ["services", _, "healthcheck", "test"]
        | ["services", _, "ulimits", _] => Rule::Replace,
        ["services", _, "depends_on"] => Rule::DependsOn,
        ["services", _, "networks" | "models"] => Rule::Names,
        ["services", _, "build"] => Rule::Build,
        ["services", _, "logging"] => Rule::Logging,
        ["services", _, "environment" | "labels" | "annotations" | "env_file" | "label_file" | "dns" | "dns_opt" | "dns_search"
        | "sysctls" | "tmpfs" | "extra_hosts" | "gpus"]
        | ["services", _, "build", "args" | "labels" | "additional_contexts" | "extra_hosts"]
        | ["services", _, "deploy", "labels"]
        | ["networks" | "volumes", _, "labels"] => Rule::Sequence,
        _ => return None,
    })
}

/// Merges a later document (or file) into what earlier ones made.
pub fn merge_documents(base: &mut Mapping, over: Mapping) -> Result<()> {
    merge_mapping(base, over, &mut Vec::new())
}

/// `base` (a copy of the extended service) with `service` merged over it.
pub fn merge_service(name: &str, mut base: Mapping, service: Mapping) -> Result<Mapping> {
    let mut path = vec!["services".to_string(), name.to_string()];
    merge_mapping(&mut base, service, &mut path)?;
    Ok(base)
}

fn merge_mapping(base: &mut Mapping, over: Mapping, path: &mut Vec<String>) -> Result<()> {
    for (k, v) in over {
        match base.get_mut(&k) {
            Some(slot) if !k.as_str().is_some_and(|k| k.starts_with("x-")) => {
                path.push(key_display(&k));
                let earlier = std::mem::take(slot);
                *slot = merge_value(earlier, v, path)?;
                path.pop();
            }
            _ => {
                base.insert(k, v);
            }
        }
    }
    Ok(())
}

fn merge_value(base: Value, over: Value, path: &mut Vec<String>) -> Result<Value> {
    if let Some(rule) = rule(path) {
        return merge_by_rule(rule, base, over, path);
    }
    if over.is_null() {
        return Ok(base);
    }
    match (base, over) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            merge_mapping(&mut b, o, path)?;
            Ok(Value::Mapping(b))
        }
        (Value::Sequence(mut b), Value::Sequence(o)) => {
            b.extend(o);
            Ok(Value::Sequence(b))
        }
        (Value::Mapping(_) | Value::Sequence(_), _) => Err(cannot_override(path)),
        (_, o) => Ok(o),
    }
}

fn cannot_override(path: &[String]) -> ComposeError {
    ComposeError::at(&path.join("."), format!("cannot override {}", path.join(".")))
}

fn merge_by_rule(rule: Rule, base: Value, over: Value, path: &mut Vec<String>) -> Result<Value> {
    match rule {
        Rule::Replace => Ok(over),
        Rule::Sequence => {
            let mut seq = to_sequence(base);
            seq.extend(to_sequence(over));
            Ok(Value::Sequence(seq))
        }
        Rule::Names | Rule::DependsOn => {
            let default = (rule == Rule::DependsOn).then(depends_on_default);
            let mut b = to_mapping(base, default.as_ref());
            merge_mapping(&mut b, to_mapping(over, default.as_ref()), path)?;
            Ok(Value::Mapping(b))
        }
        Rule::Build => {
            let mut b = build_mapping(base);
            merge_mapping(&mut b, build_mapping(over), path)?;
            Ok(Value::Mapping(b))
        }
        Rule::Logging => match (base, over) {
            (Value::Mapping(mut b), Value::Mapping(o)) => {
                let (bd, od) = (b.get("driver"), o.get("driver"));
                if bd.is_some() && od.is_some() && bd != od {
                    return Ok(Value::Mapping(o));
                }
                merge_mapping(&mut b, o, path)?;
                Ok(Value::Mapping(b))
            }
            (b, Value::Null) => Ok(b),
            _ => Err(ComposeError::at(
                &path.join("."),
                "cannot merge logging: expected a mapping",
            )),
        },
    }
}

fn depends_on_default() -> Value {
    let mut m = Mapping::new();
    m.insert("condition".into(), "service_started".into());
    m.insert("required".into(), true.into());
    Value::Mapping(m)
}

/// compose-go's convertIntoSequence: a mapping becomes sorted `KEY=VALUE` items (a null
/// value just `KEY`, a list value one item per element), a string one item.
fn to_sequence(value: Value) -> Vec<Value> {
    match value {
        Value::Sequence(seq) => seq,
        Value::String(s) => vec![Value::String(s)],
        Value::Mapping(m) => {
            let mut items: Vec<String> = Vec::new();
            for (k, v) in m {
                let k = key_display(&k);
                match v {
                    Value::Null => items.push(k),
                    Value::Sequence(seq) => items.extend(seq.iter().map(|e| format!("{k}={}", display(e)))),
                    v => items.push(format!("{k}={}", display(&v))),
                }
            }
            items.sort();
            items.into_iter().map(Value::String).collect()
        }
        _ => Vec::new(),
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim_end()
            .to_string(),
    }
}

/// compose-go's convertIntoMapping: a list of names becomes a mapping of each to
/// `default` (null when there is none).
fn to_mapping(value: Value, default: Option<&Value>) -> Mapping {
    match value {
        Value::Mapping(m) => m,
        Value::Sequence(seq) => seq
            .into_iter()
            .map(|name| (Value::String(display(&name)), default.cloned().unwrap_or(Value::Null)))
            .collect(),
        _ => Mapping::new(),
    }
}

fn build_mapping(value: Value) -> Mapping {
    match value {
        Value::Mapping(m) => m,
        Value::String(context) => {
            let mut m = Mapping::new();
            m.insert("context".into(), Value::String(context));
            m
        }
        _ => Mapping::new(),
    }
}

/// Drops what `paths` (from `!reset`/`!override` in the next document) point at.
pub fn apply_resets(target: &mut Mapping, paths: &[Vec<String>]) {
    for path in paths {
        remove_path(target, path);
    }
}

fn remove_path(map: &mut Mapping, path: &[String]) {
    match path {
        [] => {}
        [last] => {
            map.remove(last.as_str());
        }
        [first, rest @ ..] => {
            if let Some(Value::Mapping(inner)) = map.get_mut(first.as_str()) {
                remove_path(inner, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Mapping {
        serde_yaml_ng::from_str(text).unwrap()
    }

    fn merged(a: &str, b: &str) -> Mapping {
        let mut base = yaml(a);
        merge_documents(&mut base, yaml(b)).unwrap();
        base
    }

    #[test]
    fn mappings_merge_sequences_append_scalars_replace() {
        let m = merged(
            "services: {a: {image: x, restart: always, ports: ['80:80'], deploy: {resources: {limits: {cpus: '1'}}}}}",
            "services: {a: {restart: 'no', ports: ['81:81'], deploy: {resources: {reservations: {devices: [{capabilities: [gpu]}]}}}}, b: {image: y}}",
        );
        assert_eq!(
            m,
            yaml("services: {a: {image: x, restart: 'no', ports: ['80:80', '81:81'], deploy: {resources: {limits: {cpus: '1'}, reservations: {devices: [{capabilities: [gpu]}]}}}}, b: {image: y}}")
        );
    }

    #[test]
    fn null_keeps_and_x_keys_replace() {
        let m = merged(
            "services: {a: {image: x}}\nx-a: {k: 1}\n",
            "services: {a: {image: null}}\nx-a: {j: 2}\n",
        );
        assert_eq!(m, yaml("services: {a: {image: x}}\nx-a: {j: 2}\n"));
    }

    #[test]
    fn per_key_rules() {
        let m = merged(
            "services: {a: {networks: [front], depends_on: [db], env_file: a.env, environment: {A: '1'}, command: [x, y], build: ., logging: {driver: json-file, options: {k: v}}}}",
            "services: {a: {networks: {back: {aliases: [b]}}, depends_on: {cache: {condition: service_healthy}}, env_file: [b.env], environment: [B=2], command: z, build: {dockerfile: D}, logging: {driver: local}}}",
        );
        assert_eq!(
            m,
            yaml(
                "services: {a: {networks: {front: null, back: {aliases: [b]}}, \
                 depends_on: {db: {condition: service_started, required: true}, cache: {condition: service_healthy}}, \
                 env_file: [a.env, b.env], environment: [A=1, B=2], command: z, build: {context: ., dockerfile: D}, \
                 logging: {driver: local}}}"
            )
        );
    }

    #[test]
    fn type_mismatch_is_refused() {
        let mut base = yaml("services: {a: {healthcheck: {test: [CMD, x]}}}");
        let e = merge_documents(&mut base, yaml("services: {a: {healthcheck: x}}")).unwrap_err();
        assert_eq!(e.message, "cannot override services.a.healthcheck");
    }

    #[test]
    fn resets_remove_earlier_values() {
        let mut base = yaml("services: {a: {ports: ['80:80'], image: x}}");
        apply_resets(
            &mut base,
            &[
                vec!["services".into(), "a".into(), "ports".into()],
                vec!["nope".into(), "x".into()],
            ],
        );
        assert_eq!(base, yaml("services: {a: {image: x}}"));
    }

    #[test]
    fn extends_merge_uses_the_service_path() {
        let m = merge_service(
            "web",
            yaml("{networks: [a], command: [x]}"),
            yaml("{networks: [b], command: [y]}"),
        )
        .unwrap();
        assert_eq!(m, yaml("{networks: {a: null, b: null}, command: [y]}"));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                "[a-z0-9=:./-]{0,6}".prop_map(Value::String),
                any::<i32>().prop_map(|n| Value::Number(n.into())),
            ];
            leaf.prop_recursive(4, 40, 5, |inner| {
                let key = prop_oneof![
                    Just("services".to_string()),
                    Just("networks".to_string()),
                    Just("depends_on".to_string()),
                    Just("build".to_string()),
                    Just("logging".to_string()),
                    Just("env_file".to_string()),
                    Just("a".to_string()),
                    Just("x-a".to_string()),
                ];
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
                    proptest::collection::vec((key, inner), 0..4)
                        .prop_map(|kv| Value::Mapping(kv.into_iter().map(|(k, v)| (Value::String(k), v)).collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn merging_never_panics(a in value(), b in value()) {
                if let (Value::Mapping(mut a), Value::Mapping(b)) = (a, b) {
                    let _ = merge_documents(&mut a.clone(), b.clone());
                    let _ = merge_service("s", a.clone(), b.clone());
                    apply_resets(&mut a, &[vec!["services".into()], vec!["a".into(), "a".into()]]);
                }
            }

            #[test]
            fn merging_with_itself_keeps_every_key(a in value()) {
                if let Value::Mapping(a) = a {
                    let mut m = a.clone();
                    if merge_documents(&mut m, a.clone()).is_ok() {
                        prop_assert!(a.keys().all(|k| m.contains_key(k)));
                    }
                }
            }
        }
    }
}
