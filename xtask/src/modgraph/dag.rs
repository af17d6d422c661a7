//! Layers and cycles of a directed graph given as node → the nodes it uses.

use std::collections::{BTreeMap, BTreeSet};

/// Layers of a DAG: layer 0 uses nothing, layer n uses only layers below n. Nodes in a cycle
/// get no layer.
pub(super) fn layers(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut placed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut layers: Vec<Vec<String>> = Vec::new();
    loop {
        let mut added = Vec::new();
        for (name, uses) in graph {
            if placed.contains_key(name.as_str()) {
                continue;
            }
            let below: Option<Vec<usize>> = uses
                .iter()
                .filter(|used| graph.contains_key(*used))
                .map(|used| placed.get(used.as_str()).copied())
                .collect();
            if let Some(below) = below {
                added.push((name.as_str(), below.into_iter().max().map_or(0, |m| m + 1)));
            }
        }
        if added.is_empty() {
            return layers;
        }
        for (name, layer) in added {
            placed.insert(name, layer);
            if layers.len() <= layer {
                layers.resize(layer + 1, Vec::new());
            }
            layers[layer].push(name.to_owned());
        }
    }
}

/// The strongly connected components with more than one node, each sorted (Tarjan).
pub fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        let n = state.index.len();
        state.index.insert(node, n);
        state.low.insert(node, n);
        state.stack.push(node);
        state.on_stack.insert(node);
        let graph = state.graph;
        for next in graph.get(node).into_iter().flatten() {
            let next = next.as_str();
            if !graph.contains_key(next) {
                continue;
            }
            if !state.index.contains_key(next) {
                visit(state, next);
                let low = state.low[node].min(state.low[next]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(next) {
                let low = state.low[node].min(state.index[next]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack.remove(top);
                component.push(top.to_owned());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found.sort();
    state.found
}
