//! Keeps every decision: the baseline for measuring what a hook call costs.

pub struct Noop;

impl caje_policy::Policy for Noop {}

caje_policy::export!(Noop);
