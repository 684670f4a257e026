//! Desired vs actual state, the plan (a DAG of actions) and its health-gated executor.
//! Arrives with the engine; the service dependency graph it will consume is
//! `compose::graph`.
