//! The dependency graph of stacks and layers: unknown references, cycles, and the
//! removal of stacks in error together with whatever hard-requires them.
//!
//! The graph is the "starts after" relation exactly as the generated units express it:
//! a stack after what it requires or wants and after the layers its layer depends on; a
//! layer target after its (enabled) member stacks and after the layers it depends on. A
//! cycle here would be an ordering cycle in systemd, which systemd breaks by dropping a
//! random job at boot, so it is refused up front with the cycle spelled out.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Layer, Stack, StackError};

/// Layers that depend on each other in a circle: nothing can start first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("layer dependency cycle: {cycle}")]
pub struct LayerCycle {
    /// `a → b → a`
    pub cycle: String,
}

pub struct Pruned {
    pub errors: Vec<StackError>,
    /// Layer names in start order.
    pub layer_order: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Stack(String),
    Layer(String),
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::Stack(s) => write!(f, "{s}"),
            Node::Layer(l) => write!(f, "layer {l}"),
        }
    }
}

/// Finds one cycle reachable in `edges`, returned as the path `a, b, …, a`.
fn find_cycle<N: Ord + Clone>(edges: &BTreeMap<N, Vec<N>>) -> Option<Vec<N>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    let mut marks: BTreeMap<N, Mark> = BTreeMap::new();
    for start in edges.keys() {
        if marks.contains_key(start) {
            continue;
        }
        // Iterative DFS: (node, index of next child); `path` mirrors the stack.
        let mut stack: Vec<(N, usize)> = vec![(start.clone(), 0)];
        marks.insert(start.clone(), Mark::Active);
        while let Some((node, i)) = stack.last().cloned() {
            let children = edges.get(&node).map(Vec::as_slice).unwrap_or(&[]);
            if i < children.len() {
                stack.last_mut().unwrap().1 += 1;
                let child = &children[i];
                match marks.get(child) {
                    Some(Mark::Active) => {
                        let from = stack.iter().position(|(n, _)| n == child).unwrap();
                        let mut cycle: Vec<N> = stack[from..].iter().map(|(n, _)| n.clone()).collect();
                        cycle.push(child.clone());
                        return Some(cycle);
                    }
                    Some(Mark::Done) => {}
                    None => {
                        marks.insert(child.clone(), Mark::Active);
                        stack.push((child.clone(), 0));
                    }
                }
            } else {
                marks.insert(node, Mark::Done);
                stack.pop();
            }
        }
    }
    None
}

fn arrow<N: std::fmt::Display>(path: &[N]) -> String {
    path.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" → ")
}

/// Layers in start order; `Err` names a cycle between layers.
pub fn layer_order(layers: &[Layer]) -> Result<Vec<String>, LayerCycle> {
    let edges: BTreeMap<String, Vec<String>> = layers
        .iter()
        .map(|l| (l.name.clone(), l.after.iter().chain(&l.requires).cloned().collect()))
        .collect();
    if let Some(c) = find_cycle(&edges) {
        return Err(LayerCycle { cycle: arrow(&c) });
    }
    // Depth-first post-order gives "dependencies first"; names sorted for stable output.
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    fn visit(n: &str, edges: &BTreeMap<String, Vec<String>>, done: &mut BTreeSet<String>, order: &mut Vec<String>) {
        if !done.insert(n.to_string()) {
            return;
        }
        let mut deps = edges.get(n).cloned().unwrap_or_default();
        deps.sort();
        for d in deps {
            visit(&d, edges, done, order);
        }
        order.push(n.to_string());
    }
    for n in edges.keys() {
        visit(n, &edges, &mut done, &mut order);
    }
    Ok(order)
}

/// Checks references and cycles, moving every stack that cannot be generated out of
/// `stacks` into the returned errors. `Err` only for a cycle between layers themselves.
pub fn prune(stacks: &mut Vec<Stack>, layers: &[Layer], failed: &BTreeSet<String>) -> Result<Pruned, LayerCycle> {
    let order = layer_order(layers)?;
    let mut errors = Vec::new();
    // Stack id → why it is left out.
    let mut left_out: BTreeMap<String, String> = failed
        .iter()
        .map(|id| (id.clone(), "it is in error".to_string()))
        .collect();
    drop_bad_references(stacks, failed, &mut left_out, &mut errors);
    loop {
        if drop_requirers(stacks, &mut left_out, &mut errors) {
            continue;
        }
        let Some(cycle) = find_cycle(&ordering_edges(stacks, layers)) else {
            break;
        };
        drop_cycle(stacks, &cycle, &mut left_out, &mut errors);
    }
    Ok(Pruned {
        errors,
        layer_order: order,
    })
}

fn stack_error(s: &Stack, message: String) -> StackError {
    StackError {
        stack: s.id.clone(),
        file: s.compose_file.clone(),
        message,
    }
}

/// Unknown references are errors of the stack that makes them; a want of a stack that
/// is merely in error is dropped (that is what Wants= means).
fn drop_bad_references(
    stacks: &mut Vec<Stack>,
    failed: &BTreeSet<String>,
    left_out: &mut BTreeMap<String, String>,
    errors: &mut Vec<StackError>,
) {
    let all: BTreeSet<String> = stacks.iter().map(|s| s.id.clone()).collect();
    stacks.retain_mut(|s| {
        let mut deps = s.requires.iter().chain(&s.wants);
        let message = if let Some(d) = deps.clone().find(|d| !all.contains(*d) && !failed.contains(*d)) {
            format!("depends on unknown stack {d:?}")
        } else if deps.any(|d| *d == s.id) {
            "depends on itself".to_string()
        } else {
            s.wants.retain(|w| !failed.contains(w));
            return true;
        };
        left_out.insert(s.id.clone(), message.clone());
        errors.push(stack_error(s, message));
        false
    });
}

/// Whatever hard-requires a stack that is left out goes too; wants of it are dropped.
/// Returns whether a stack was left out (then its requirers must be looked at again).
fn drop_requirers(
    stacks: &mut Vec<Stack>,
    left_out: &mut BTreeMap<String, String>,
    errors: &mut Vec<StackError>,
) -> bool {
    let mut changed = false;
    stacks.retain(|s| {
        let Some(dep) = s.requires.iter().find(|d| left_out.contains_key(*d)) else {
            return true;
        };
        let message = format!("requires stack {dep:?}, which is left out ({})", left_out[dep]);
        errors.push(stack_error(s, message));
        left_out.insert(s.id.clone(), format!("requires {dep:?}"));
        changed = true;
        false
    });
    for s in stacks.iter_mut() {
        s.wants.retain(|w| !left_out.contains_key(w));
    }
    changed
}

/// The "starts after" relation of the units: node → what it starts after.
fn ordering_edges(stacks: &[Stack], layers: &[Layer]) -> BTreeMap<Node, Vec<Node>> {
    let layer_by_name: BTreeMap<&str, &Layer> = layers.iter().map(|l| (l.name.as_str(), l)).collect();
    let layer_deps = |l: &Layer| {
        l.after
            .iter()
            .chain(&l.requires)
            .map(|d| Node::Layer(d.clone()))
            .collect::<Vec<_>>()
    };
    let mut edges: BTreeMap<Node, Vec<Node>> = BTreeMap::new();
    for s in stacks {
        let mut after: Vec<Node> = s
            .requires
            .iter()
            .chain(&s.wants)
            .map(|d| Node::Stack(d.clone()))
            .collect();
        if let Some(l) = layer_by_name.get(s.layer.as_str()) {
            after.extend(layer_deps(l));
        }
        edges.insert(Node::Stack(s.id.clone()), after);
        if s.enabled {
            edges
                .entry(Node::Layer(s.layer.clone()))
                .or_default()
                .push(Node::Stack(s.id.clone()));
        }
    }
    for l in layers {
        edges
            .entry(Node::Layer(l.name.clone()))
            .or_default()
            .extend(layer_deps(l));
    }
    edges
}

/// Leaves out every stack of `cycle`, naming the whole cycle in each error.
fn drop_cycle(
    stacks: &mut Vec<Stack>,
    cycle: &[Node],
    left_out: &mut BTreeMap<String, String>,
    errors: &mut Vec<StackError>,
) {
    let text = arrow(cycle);
    let in_cycle: BTreeSet<&String> = cycle
        .iter()
        .filter_map(|n| match n {
            Node::Stack(s) => Some(s),
            Node::Layer(_) => None,
        })
        .collect();
    stacks.retain(|s| {
        if !in_cycle.contains(&s.id) {
            return true;
        }
        errors.push(stack_error(s, format!("dependency cycle: {text}")));
        left_out.insert(s.id.clone(), "in a dependency cycle".into());
        false
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn stack(id: &str, layer: &str, requires: &[&str], wants: &[&str]) -> Stack {
        Stack {
            id: id.into(),
            layer: layer.into(),
            dir: PathBuf::from("/t").join(id),
            compose_file: PathBuf::from("/t").join(id).join("compose.yaml"),
            compose_files: vec![PathBuf::from("/t").join(id).join("compose.yaml")],
            project: id.into(),
            env_files: vec![],
            services: vec![],
            networks: vec![],
            gpu: false,
            requires: requires.iter().map(|s| s.to_string()).collect(),
            wants: wants.iter().map(|s| s.to_string()).collect(),
            unit: format!("homelab-{id}.service"),
            enabled: true,
            timeout_start_sec: None,
            service_details: vec![],
            secret_files: vec![],
        }
    }

    fn layer(name: &str, after: &[&str]) -> Layer {
        Layer {
            name: name.into(),
            target: format!("homelab-{name}.target"),
            after: after.iter().map(|s| s.to_string()).collect(),
            requires: vec![],
            stacks: vec![],
        }
    }

    #[test]
    fn cycle_is_named_and_only_its_members_and_hard_dependents_go() {
        let mut stacks = vec![
            stack("a", "x", &["b"], &[]),
            stack("b", "x", &["a"], &[]),
            stack("c", "x", &["a"], &[]),
            stack("d", "x", &[], &["a"]),
            stack("e", "x", &[], &[]),
        ];
        let out = prune(&mut stacks, &[layer("x", &[])], &BTreeSet::new()).unwrap();
        let ids: Vec<&str> = stacks.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["d", "e"]);
        assert!(stacks[0].wants.is_empty(), "want of a left-out stack is dropped");
        let msg = &out.errors.iter().find(|e| e.stack == "a").unwrap().message;
        assert_eq!(msg, "dependency cycle: a → b → a");
        let c = &out.errors.iter().find(|e| e.stack == "c").unwrap().message;
        assert!(c.contains("requires stack \"a\""), "{c}");
    }

    #[test]
    fn dependency_against_layer_order_is_a_cycle_through_the_layers() {
        let mut stacks = vec![stack("db", "database", &["llm"], &[]), stack("llm", "genai", &[], &[])];
        let layers = [layer("database", &[]), layer("genai", &["database"])];
        let out = prune(&mut stacks, &layers, &BTreeSet::new()).unwrap();
        assert!(stacks.is_empty());
        assert!(
            out.errors[0].message.contains("layer database"),
            "{}",
            out.errors[0].message
        );
    }

    #[test]
    fn unknown_reference_and_failed_dependencies() {
        let mut stacks = vec![
            stack("a", "x", &["nope"], &[]),
            stack("b", "x", &["broken"], &[]),
            stack("c", "x", &[], &["broken"]),
            stack("d", "x", &["b"], &[]),
        ];
        let failed: BTreeSet<String> = ["broken".to_string()].into();
        let out = prune(&mut stacks, &[layer("x", &[])], &failed).unwrap();
        assert_eq!(stacks.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["c"]);
        assert!(stacks[0].wants.is_empty());
        let msgs: BTreeMap<&str, &str> = out
            .errors
            .iter()
            .map(|e| (e.stack.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(msgs["a"], "depends on unknown stack \"nope\"");
        assert!(msgs["b"].contains("broken"));
        assert!(msgs["d"].contains("\"b\""));
    }

    #[test]
    fn layer_order_and_layer_cycles() {
        let layers = [
            layer("media", &["genai"]),
            layer("genai", &["database"]),
            layer("database", &["panel"]),
            layer("panel", &[]),
        ];
        assert_eq!(layer_order(&layers).unwrap(), ["panel", "database", "genai", "media"]);
        let cyc = [layer("a", &["b"]), layer("b", &["a"])];
        assert_eq!(
            layer_order(&cyc).unwrap_err().to_string(),
            "layer dependency cycle: a → b → a"
        );
    }
}
