//! Data parallelism over a project's services. Most of the loader's work is per service and
//! independent, so large projects split it across the cores with rayon; small ones stay on
//! one thread, where spreading out would cost more than it saves.

use rayon::prelude::*;

use super::yaml::{Map, Node};

/// Below this many entries the work stays on the calling thread.
const PAR_MIN: usize = 64;

/// Whether `n` entries are worth spreading across threads.
pub fn worth_it(n: usize) -> bool {
    n >= PAR_MIN && rayon::current_num_threads() > 1
}

/// Runs `f` on every entry of `m`, in parallel for large maps. On failure returns the error
/// of the first failing entry in map order, so errors do not depend on scheduling.
pub fn try_each_entry<E, F>(m: &mut Map, f: F) -> Result<(), E>
where
    E: Send,
    F: Fn(&str, &mut Node) -> Result<(), E> + Sync,
{
    if !worth_it(m.len()) {
        return m.iter_mut().try_for_each(|(k, v)| f(k, v));
    }
    let mut entries: Vec<(&String, &mut Node)> = m.iter_mut().collect();
    try_each_in_order(&mut entries, |(k, v)| f(k, v))
}

/// Runs `f` on every item in parallel; on failure returns the error of the first failing
/// item in slice order, so errors do not depend on scheduling.
pub fn try_each_in_order<T, E, F>(items: &mut [T], f: F) -> Result<(), E>
where
    T: Send,
    E: Send,
    F: Fn(&mut T) -> Result<(), E> + Sync,
{
    let first_err = items
        .par_iter_mut()
        .enumerate()
        .filter_map(|(i, item)| f(item).err().map(|e| (i, e)))
        .min_by_key(|(i, _)| *i);
    match first_err {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// Maps every item through `f`, in parallel for large inputs, keeping the order.
pub fn map_in_order<T, R, F>(items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync + Send,
{
    if !worth_it(items.len()) {
        return items.iter().map(f).collect();
    }
    items.par_iter().map(f).collect()
}
