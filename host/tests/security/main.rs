//! Security: cache poisoning and deception, request smuggling from clients and toward origins,
//! the host allow-list, and the policy sandbox, each against a real caje on loopback. The admin
//! API's token checks are in `tests/admin/auth.rs`; the fuzz (proptest) suites sit next to the
//! parsers they exercise (`cache::fuzz`, `config::fuzz`, `policy::fuzz`, `admin::purge::fuzz`).

mod poisoning;
mod sandbox;
mod smuggling;
mod support;
mod upstream;
