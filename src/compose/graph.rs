//! The service dependency graph: `depends_on` (which by now includes what `links`,
//! `network_mode: service:x` and `volumes_from` imply).

use indexmap::IndexMap;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::yaml::{Node, Pos};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{pos}: dependency cycle between services: {}", .cycle.join(" -> "))]
pub struct CycleError {
    pub pos: Pos,
    /// The services in the cycle, the first repeated at the end.
    pub cycle: Vec<String>,
}

/// Edges point from a service to what it depends on.
pub struct ServiceGraph {
    graph: DiGraph<String, ()>,
    index: IndexMap<String, NodeIndex>,
}

impl ServiceGraph {
    /// Build from the `services` mapping. Dependencies on unknown services are ignored here
    /// (consistency checks report them).
    pub fn from_services(services: &crate::compose::yaml::Map) -> Self {
        let mut graph = DiGraph::new();
        let mut index = IndexMap::new();
        for name in services.keys() {
            index.insert(name.clone(), graph.add_node(name.clone()));
        }
        for (name, svc) in services {
            let Some(from) = index.get(name).copied() else {
                continue;
            };
            if let Some(deps) = svc.get("depends_on").and_then(Node::as_map) {
                for dep in deps.keys() {
                    if let Some(to) = index.get(dep).copied() {
                        graph.add_edge(from, to, ());
                    }
                }
            }
        }
        ServiceGraph { graph, index }
    }

    /// Services ordered so that every service comes after what it depends on; among the
    /// services ready at each step the alphabetically first goes next (Compose's order for
    /// `config --services`). On a cycle, returns the cycle.
    pub fn start_order(&self) -> Result<Vec<String>, Vec<String>> {
        let mut waiting: Vec<usize> = self
            .graph
            .node_indices()
            .map(|i| self.graph.neighbors(i).count())
            .collect();
        let mut ready: std::collections::BTreeMap<String, NodeIndex> = self
            .graph
            .node_indices()
            .filter(|i| waiting[i.index()] == 0)
            .map(|i| (self.graph[i].clone(), i))
            .collect();
        let mut order = Vec::with_capacity(waiting.len());
        while let Some((name, i)) = ready.pop_first() {
            order.push(name);
            for dependent in self
                .graph
                .neighbors_directed(i, petgraph::Direction::Incoming)
            {
                let w = &mut waiting[dependent.index()];
                *w -= 1;
                if *w == 0 {
                    ready.insert(self.graph[dependent].clone(), dependent);
                }
            }
        }
        if order.len() == waiting.len() {
            Ok(order)
        } else {
            Err(self.find_cycle().unwrap_or_default())
        }
    }

    /// One cycle, as a path `a -> b -> … -> a`, in declaration order of its first member.
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        let mut sccs: Vec<Vec<NodeIndex>> = tarjan_scc(&self.graph)
            .into_iter()
            .filter(|c| c.len() > 1 || self.graph.contains_edge(c[0], c[0]))
            .collect();
        sccs.sort_by_key(|c| c.iter().map(|i| i.index()).min());
        let scc = sccs.into_iter().next()?;
        let start = *scc.iter().min_by_key(|i| i.index())?;
        // Walk inside the component until we return to the start.
        let mut path = vec![start];
        let mut seen = std::collections::HashSet::from([start]);
        let mut cur = start;
        loop {
            let mut nexts: Vec<NodeIndex> = self
                .graph
                .neighbors(cur)
                .filter(|n| scc.contains(n))
                .collect();
            nexts.sort_by_key(|n| n.index());
            if nexts.contains(&start) {
                path.push(start);
                break;
            }
            let next = nexts.into_iter().find(|n| !seen.contains(n))?;
            seen.insert(next);
            path.push(next);
            cur = next;
        }
        Some(path.into_iter().map(|i| self.graph[i].clone()).collect())
    }

    /// The named services plus everything they transitively depend on.
    pub fn with_dependencies(&self, roots: &[String]) -> indexmap::IndexSet<String> {
        let mut out = indexmap::IndexSet::new();
        let mut stack: Vec<NodeIndex> = roots
            .iter()
            .filter_map(|r| self.index.get(r).copied())
            .collect();
        while let Some(i) = stack.pop() {
            if out.insert(self.graph[i].clone()) {
                stack.extend(self.graph.neighbors(i));
            }
        }
        out
    }
}

/// Fail with the services of the first cycle, if any.
pub fn check_cycles(services: &crate::compose::yaml::Map) -> Result<(), CycleError> {
    let g = ServiceGraph::from_services(services);
    match g.find_cycle() {
        None => Ok(()),
        Some(cycle) => {
            let pos = cycle
                .first()
                .and_then(|s| services.get(s))
                .map(|n| n.pos.clone())
                .unwrap_or_default();
            Err(CycleError { pos, cycle })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::yaml::parse;

    fn services(src: &str) -> crate::compose::yaml::Map {
        let doc = parse(src, "c.yaml").expect("yaml").remove(0);
        doc.get("services")
            .and_then(Node::as_map)
            .cloned()
            .expect("services")
    }

    #[test]
    fn order_puts_dependencies_first() {
        let s = services(
            "services:\n  web: {depends_on: {api: {}}}\n  api: {depends_on: {db: {}}}\n  db: {}\n",
        );
        let order = ServiceGraph::from_services(&s)
            .start_order()
            .expect("no cycle");
        let pos = |n: &str| order.iter().position(|x| x == n).expect("present");
        assert!(pos("db") < pos("api") && pos("api") < pos("web"));
    }

    #[test]
    fn cycle_names_its_services() {
        let s = services("services:\n  a: {depends_on: {b: {}}}\n  b: {depends_on: {c: {}}}\n  c: {depends_on: {a: {}}}\n  d: {}\n");
        let e = check_cycles(&s).expect_err("cycle");
        assert_eq!(e.cycle, vec!["a", "b", "c", "a"]);
        assert!(e.to_string().contains("a -> b -> c -> a"), "{e}");
        assert_eq!(e.pos.line, 2);
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let s = services("services:\n  a: {depends_on: {a: {}}}\n");
        assert_eq!(check_cycles(&s).expect_err("cycle").cycle, vec!["a", "a"]);
    }

    #[test]
    fn dependencies_closure() {
        let s = services(
            "services:\n  a: {depends_on: {b: {}}}\n  b: {depends_on: {c: {}}}\n  c: {}\n  d: {}\n",
        );
        let g = ServiceGraph::from_services(&s);
        let set = g.with_dependencies(&["a".to_string()]);
        assert_eq!(set.len(), 3);
        assert!(!set.contains("d"));
    }
}
