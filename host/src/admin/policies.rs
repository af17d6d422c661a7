//! `GET /_caje/policies`: every `*.wasm` file of the policies directory in chain order, serving
//! or refused (and why, while an earlier version may keep serving), with its hook counters.

use http::StatusCode;
use serde::Serialize;

use super::Admin;
use super::reply::{self, Reply};
use crate::policy::ModuleStatus;

#[derive(Serialize)]
struct PolicyList {
    modules: Vec<ModuleStatus>,
}

pub(super) fn policies(admin: &Admin) -> Reply {
    let modules = admin.parts.context.policies.status();
    reply::json(StatusCode::OK, &PolicyList { modules })
}
