//! The admin API end to end: real nodes over loopback, real SQLite manifests, real origins, and
//! the dashboard in a real headless Chromium.

mod auth;
mod dashboard;
mod fleet;
mod listing;
mod maintenance;
mod observability;
mod outage;
mod policies;
mod purging;
mod support;
