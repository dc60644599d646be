//! The dependency graph of stacks and layers: unknown references, cycles, and the
//! removal of stacks in error together with whatever hard-requires them.
//!
//! The graph is the "starts after" relation exactly as the generated units express it:
//! a stack after what it requires or wants and after the layers its layer depends on; a
//! layer target after its (enabled) member stacks and after the layers it depends on. A
//! cycle here would be an ordering cycle in systemd, which systemd breaks by dropping a
//! random job at boot, so it is refused up front with the cycle spelled out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::capped::{thousands, truncate};
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
    // Iterative: a chain of thousands of layers must not cost a thread's stack.
    let mut order = Vec::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let sorted_deps = |n: &str| {
        let mut deps: Vec<&str> = edges
            .get(n)
            .map(|d| d.iter().map(String::as_str).collect())
            .unwrap_or_default();
        deps.sort();
        deps
    };
    for n in edges.keys() {
        if !done.insert(n) {
            continue;
        }
        let mut stack: Vec<(&str, Vec<&str>, usize)> = vec![(n, sorted_deps(n), 0)];
        while let Some((node, deps, i)) = stack.last_mut() {
            if let Some(&d) = deps.get(*i) {
                *i += 1;
                if done.insert(d) {
                    stack.push((d, sorted_deps(d), 0));
                }
            } else {
                order.push(node.to_string());
                stack.pop();
            }
        }
    }
    Ok(order)
}

/// A cycle of up to this many nodes is spelled out in the error of each of its stacks;
/// a longer one only in the error of its first stack, with its first this many nodes
/// and a count of the rest, and its other stacks point there. Either way a cycle costs
/// the report a bounded text per member, never the whole cycle per member
/// (hlsys.toml(5), LIMITS).
pub const MAX_CYCLE_NAMED: usize = 8;

/// Most bytes of why a stack is left out as quoted in the error of each stack that
/// requires it (its own error says it whole).
pub const MAX_REASON_BYTES: usize = 200;

/// Checks references and cycles, moving every stack that cannot be generated out of
/// `stacks` into the returned errors. `Err` only for a cycle between layers themselves.
///
/// Linear in the stacks and their dependencies: what requires a stack that is left out
/// goes through a work list, and the cycles come from one depth-first pass that drops
/// each cycle's stacks as it finds it ([`Ordering::drop_cycles`]).
pub fn prune(stacks: &mut Vec<Stack>, layers: &[Layer], failed: &BTreeSet<String>) -> Result<Pruned, LayerCycle> {
    let order = layer_order(layers)?;
    let mut errors = Vec::new();
    // Stack id → why it is left out.
    let mut left_out: BTreeMap<String, String> = failed
        .iter()
        .map(|id| (id.clone(), "it is in error".to_string()))
        .collect();
    drop_bad_references(stacks, failed, &mut left_out, &mut errors);
    let mut gone = vec![false; stacks.len()];
    let requirers = requirers(stacks);
    let seeds: Vec<String> = left_out.keys().cloned().collect();
    drop_requirers(stacks, &requirers, seeds, &mut gone, &mut left_out, &mut errors);
    let mut graph = Ordering::new(stacks, layers, &gone);
    let cycles = graph.drop_cycles();
    let mut seeds = Vec::new();
    for cycle in &cycles {
        seeds.extend(name_cycle(
            stacks,
            &graph.nodes,
            cycle,
            &mut gone,
            &mut left_out,
            &mut errors,
        ));
    }
    drop_requirers(stacks, &requirers, seeds, &mut gone, &mut left_out, &mut errors);
    let mut i = 0;
    stacks.retain(|_| {
        i += 1;
        !gone[i - 1]
    });
    for s in stacks.iter_mut() {
        s.wants.retain(|w| !left_out.contains_key(w));
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
        // Quoted by every stack that requires this one: cut, so that a long name costs
        // the report once, not once per requirer.
        left_out.insert(s.id.clone(), truncate(&message, MAX_REASON_BYTES).into_owned());
        errors.push(stack_error(s, message));
        false
    });
}

/// Stack id → the stacks (indices) that require it.
fn requirers(stacks: &[Stack]) -> HashMap<&str, Vec<usize>> {
    let mut by: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in stacks.iter().enumerate() {
        for d in &s.requires {
            by.entry(d.as_str()).or_default().push(i);
        }
    }
    by
}

/// Whatever hard-requires a stack that is left out goes too, from the ids in `seeds`
/// on, each stack looked at once per stack it requires.
fn drop_requirers(
    stacks: &[Stack],
    requirers: &HashMap<&str, Vec<usize>>,
    mut seeds: Vec<String>,
    gone: &mut [bool],
    left_out: &mut BTreeMap<String, String>,
    errors: &mut Vec<StackError>,
) {
    while let Some(id) = seeds.pop() {
        for &r in requirers.get(id.as_str()).map(Vec::as_slice).unwrap_or(&[]) {
            if gone[r] {
                continue;
            }
            let s = &stacks[r];
            let dep = s.requires.iter().find(|d| left_out.contains_key(*d)).unwrap_or(&id);
            let message = format!("requires stack {dep:?}, which is left out ({})", left_out[dep]);
            errors.push(stack_error(s, message));
            left_out.insert(s.id.clone(), format!("requires {dep:?}"));
            gone[r] = true;
            seeds.push(s.id.clone());
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    New,
    Active,
    Done,
    /// A stack left out (for a cycle or before): no edge leads to it any more.
    Gone,
}

/// The "starts after" relation of the units, on indices: node → what it starts after, in
/// the order the units name them. Nodes `0..stacks` are the stacks (same indices as in
/// the slice given), then the layers.
struct Ordering {
    nodes: Vec<Node>,
    edges: Vec<Vec<usize>>,
    stacks: usize,
    mark: Vec<Mark>,
}

impl Ordering {
    /// A stack after what it requires or wants and after the layers its layer depends on;
    /// a layer after its enabled stacks and after the layers it depends on. Stacks that
    /// are `gone` are already left out.
    fn new(stacks: &[Stack], layers: &[Layer], gone: &[bool]) -> Ordering {
        let mut nodes: Vec<Node> = stacks.iter().map(|s| Node::Stack(s.id.clone())).collect();
        let index: HashMap<&str, usize> = stacks.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        let mut layer_index: HashMap<String, usize> = HashMap::new();
        let mut layer_node = |name: &str, nodes: &mut Vec<Node>| -> usize {
            *layer_index.entry(name.to_string()).or_insert_with(|| {
                nodes.push(Node::Layer(name.to_string()));
                nodes.len() - 1
            })
        };
        let layer_by_name: HashMap<&str, &Layer> = layers.iter().map(|l| (l.name.as_str(), l)).collect();
        let layer_deps = |l: &Layer| l.after.iter().chain(&l.requires).cloned().collect::<Vec<String>>();
        let mut edges: Vec<Vec<usize>> = Vec::with_capacity(stacks.len());
        // Layer node → its enabled stacks, in order (their layer deps come last).
        let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, s) in stacks.iter().enumerate() {
            let mut after: Vec<usize> = s
                .requires
                .iter()
                .chain(&s.wants)
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect();
            if let Some(l) = layer_by_name.get(s.layer.as_str()) {
                for d in layer_deps(l) {
                    after.push(layer_node(&d, &mut nodes));
                }
            }
            edges.push(after);
            let l = layer_node(&s.layer, &mut nodes);
            if s.enabled && !gone[i] {
                members.entry(l).or_default().push(i);
            }
        }
        for l in layers {
            let n = layer_node(&l.name, &mut nodes);
            let deps: Vec<usize> = layer_deps(l).iter().map(|d| layer_node(d, &mut nodes)).collect();
            members.entry(n).or_default().extend(deps);
        }
        edges.resize(nodes.len(), Vec::new());
        for (l, after) in members {
            edges[l] = after;
        }
        let mut mark = vec![Mark::New; nodes.len()];
        for (m, &g) in mark.iter_mut().zip(gone) {
            if g {
                *m = Mark::Gone;
            }
        }
        Ordering {
            nodes,
            edges,
            stacks: stacks.len(),
            mark,
        }
    }

    /// Finds cycles and leaves their stacks out, until none is left; returns each cycle
    /// as the path `a, b, …, a` of node indices.
    ///
    /// One depth-first pass (from the nodes in sorted order, children in the units'
    /// order): a back edge closes a cycle, whose stacks are marked gone at once and taken
    /// off the DFS stack with everything above them; a layer taken off (layers are never
    /// left out) is visited again later, resuming past the children known finished or
    /// gone. A finished node only leads to finished or gone ones, so what remains has no
    /// cycle, and every edge is looked at about once: linear in the graph, however many
    /// cycles there are and however long.
    fn drop_cycles(&mut self) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        order.sort_by(|&a, &b| self.nodes[a].cmp(&self.nodes[b]));
        let mut next = vec![0usize; self.nodes.len()];
        // Children before `settled[n]` are finished or gone for good.
        let mut settled = vec![0usize; self.nodes.len()];
        let mut cycles = Vec::new();
        let mut again: Vec<usize> = Vec::new();
        let mut starts = order.into_iter();
        while let Some(start) = starts.next().or_else(|| again.pop()) {
            if self.mark[start] != Mark::New {
                continue;
            }
            let mut path: Vec<usize> = vec![start];
            self.mark[start] = Mark::Active;
            while let Some(&node) = path.last() {
                let Some(&child) = self.edges[node].get(next[node]) else {
                    self.mark[node] = Mark::Done;
                    path.pop();
                    continue;
                };
                next[node] += 1;
                match self.mark[child] {
                    Mark::Done | Mark::Gone => {
                        if settled[node] == next[node] - 1 {
                            settled[node] += 1;
                        }
                    }
                    Mark::New => {
                        self.mark[child] = Mark::Active;
                        path.push(child);
                    }
                    Mark::Active => {
                        let from = path.iter().rposition(|&n| n == child).unwrap_or(0);
                        // A cycle holds a stack: one of layers alone was refused before.
                        let Some(first) = path[from..].iter().position(|&n| n < self.stacks) else {
                            continue;
                        };
                        // Spelled from its first stack: `a → b → layer l → a`.
                        let cycle: Vec<usize> = path[from + first..]
                            .iter()
                            .chain(&path[from..=from + first])
                            .copied()
                            .collect();
                        for n in path.drain(from + first..) {
                            if n < self.stacks {
                                self.mark[n] = Mark::Gone;
                            } else {
                                self.mark[n] = Mark::New;
                                next[n] = settled[n];
                                again.push(n);
                            }
                        }
                        cycles.push(cycle);
                    }
                }
            }
        }
        cycles
    }
}

/// Leaves out the stacks of `cycle`: a short cycle is spelled out in each of their
/// errors, a long one in the first stack's only (capped at [`MAX_CYCLE_NAMED`] nodes),
/// the others pointing there. Returns the ids left out.
fn name_cycle(
    stacks: &[Stack],
    nodes: &[Node],
    cycle: &[usize],
    gone: &mut [bool],
    left_out: &mut BTreeMap<String, String>,
    errors: &mut Vec<StackError>,
) -> Vec<String> {
    let members: Vec<usize> = cycle[..cycle.len() - 1]
        .iter()
        .copied()
        .filter(|&n| n < stacks.len())
        .collect();
    let text = capped_arrow(&cycle.iter().map(|&n| &nodes[n]).collect::<Vec<_>>());
    let first = &stacks[members[0]];
    for (k, &m) in members.iter().enumerate() {
        let s = &stacks[m];
        let message = if cycle.len() - 1 <= MAX_CYCLE_NAMED || k == 0 {
            format!("dependency cycle: {text}")
        } else {
            format!(
                "in the dependency cycle spelled out at stack {:?} ({} stacks)",
                first.id,
                thousands(members.len())
            )
        };
        errors.push(stack_error(s, message));
        left_out.insert(s.id.clone(), "in a dependency cycle".into());
        gone[m] = true;
    }
    members.iter().map(|&m| stacks[m].id.clone()).collect()
}

/// `a → b → … → a`, naming at most [`MAX_CYCLE_NAMED`] nodes before the count of the rest.
fn capped_arrow<N: std::fmt::Display>(path: &[N]) -> String {
    let len = path.len() - 1;
    if len <= MAX_CYCLE_NAMED {
        return arrow(path);
    }
    format!(
        "{} → … ({} more) → {}",
        arrow(&path[..MAX_CYCLE_NAMED]),
        thousands(len - MAX_CYCLE_NAMED),
        path[len]
    )
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
    fn a_long_ring_is_spelled_out_once() {
        let n = 1000;
        let ids: Vec<String> = (0..n).map(|i| format!("s{i:04}")).collect();
        let mut stacks: Vec<Stack> = (0..n)
            .map(|i| stack(&ids[i], "x", &[ids[(i + 1) % n].as_str()], &[]))
            .collect();
        stacks.push(stack("z-needs-ring", "x", &["s0500"], &[]));
        stacks.push(stack("z-free", "x", &[], &["s0001"]));
        let out = prune(&mut stacks, &[layer("x", &[])], &BTreeSet::new()).unwrap();
        assert_eq!(stacks.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["z-free"]);
        assert!(stacks[0].wants.is_empty());
        assert_eq!(out.errors.len(), n + 1);
        let spelled: Vec<&StackError> = out.errors.iter().filter(|e| e.message.contains('→')).collect();
        assert_eq!(spelled.len(), 1, "{spelled:?}");
        assert_eq!(spelled[0].stack, "s0000");
        assert_eq!(
            spelled[0].message,
            "dependency cycle: s0000 → s0001 → s0002 → s0003 → s0004 → s0005 → s0006 → s0007 → … (992 more) → s0000"
        );
        let other = out.errors.iter().find(|e| e.stack == "s0999").unwrap();
        assert_eq!(
            other.message,
            "in the dependency cycle spelled out at stack \"s0000\" (1,000 stacks)"
        );
        let needs = out.errors.iter().find(|e| e.stack == "z-needs-ring").unwrap();
        assert!(needs.message.contains("requires stack \"s0500\""), "{}", needs.message);
        let total: usize = out.errors.iter().map(|e| e.message.len()).sum();
        assert!(total < n * 80, "{total} bytes of messages");
    }

    /// Many short cycles through one layer target: each named on its own stacks, found in
    /// one pass.
    #[test]
    fn many_cycles_through_one_layer() {
        let n = 2000;
        let mut stacks = Vec::new();
        for i in 0..n {
            let llm = format!("llm{i:04}");
            stacks.push(stack(&format!("db{i:04}"), "database", &[llm.as_str()], &[]));
            stacks.push(stack(&llm, "genai", &[], &[]));
        }
        stacks.push(stack("db-ok", "database", &[], &[]));
        let layers = [layer("database", &[]), layer("genai", &["database"])];
        let t = std::time::Instant::now();
        let out = prune(&mut stacks, &layers, &BTreeSet::new()).unwrap();
        println!("{} cycles through one layer: {:?}", n, t.elapsed());
        assert_eq!(stacks.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["db-ok"]);
        assert_eq!(out.errors.len(), 2 * n);
        let e = out.errors.iter().find(|e| e.stack == "llm1234").unwrap();
        assert_eq!(
            e.message,
            "dependency cycle: db1234 → llm1234 → layer database → db1234"
        );
    }

    /// A tiny deterministic generator (no dependency on the clock or a crate).
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
    }

    /// On random graphs: what is kept has no cycle and needs nothing left out; what is
    /// left out is said once, as a real cycle, a requirement of a stack left out, or a
    /// bad reference.
    #[test]
    fn random_graphs_keep_only_what_can_start() {
        let mut rng = Lcg(7);
        for round in 0..300 {
            let n = 2 + rng.below(14);
            let ids: Vec<String> = (0..n).map(|i| format!("s{i:02}")).collect();
            let layer_names = ["a", "b", "c"];
            let mut stacks: Vec<Stack> = (0..n)
                .map(|i| {
                    let mut req = Vec::new();
                    let mut want = Vec::new();
                    for _ in 0..rng.below(3) {
                        let d = ids[rng.below(n)].as_str();
                        if d != ids[i] {
                            if rng.below(2) == 0 {
                                req.push(d);
                            } else {
                                want.push(d);
                            }
                        }
                    }
                    req.sort();
                    req.dedup();
                    want.retain(|w| !req.contains(w));
                    want.sort();
                    want.dedup();
                    stack(&ids[i], layer_names[rng.below(3)], &req, &want)
                })
                .collect();
            let layers = [layer("a", &[]), layer("b", &["a"]), layer("c", &["b"])];
            let failed: BTreeSet<String> = if rng.below(4) == 0 {
                [ids[0].clone()].into()
            } else {
                BTreeSet::new()
            };
            if !failed.is_empty() {
                stacks.remove(0);
            }
            let before: Vec<Stack> = stacks.clone();
            let out = prune(&mut stacks, &layers, &failed).unwrap();
            let kept: BTreeSet<&str> = stacks.iter().map(|s| s.id.as_str()).collect();
            let mut said: BTreeMap<&str, &str> = BTreeMap::new();
            for e in &out.errors {
                assert!(
                    said.insert(&e.stack, &e.message).is_none(),
                    "round {round}: {} twice",
                    e.stack
                );
            }
            for s in &before {
                assert!(
                    kept.contains(s.id.as_str()) != said.contains_key(s.id.as_str()),
                    "round {round}: {} kept and left out, or neither",
                    s.id
                );
            }
            for s in &stacks {
                for d in &s.requires {
                    assert!(kept.contains(d.as_str()), "round {round}: {} kept, requires {d}", s.id);
                }
                for d in &s.wants {
                    assert!(kept.contains(d.as_str()), "round {round}: {} kept, wants {d}", s.id);
                }
            }
            let mut rest = Ordering::new(&stacks, &layers, &vec![false; stacks.len()]);
            assert!(rest.drop_cycles().is_empty(), "round {round}: a cycle is left");
        }
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
