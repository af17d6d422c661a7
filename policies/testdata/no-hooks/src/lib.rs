//! Implements no hook: every one is the SDK's identity default, which caje detects when it
//! loads the module and then never calls.

pub struct NoHooks;

impl caje_policy::Policy for NoHooks {}

caje_policy::export!(NoHooks);
