//! Reaches for the host through WASI, which caje does not grant: `/fs` reads a file, `/net`
//! opens a TCP connection, `/env` reads the environment. Whatever it gets is answered as a
//! synthetic response, so a leak would be visible to the client; caje must trap the call
//! instead. Other paths (and the host's smoke call) are left alone, so the module loads.

use caje_policy::{Policy, Request, RequestDecision, SyntheticResponse};

pub struct HostileWasi;

fn reach(path: &str) -> Option<String> {
    match path {
        "/fs" => Some(std::fs::read_to_string("/etc/hostname").unwrap_or_else(|e| e.to_string())),
        "/net" => Some(match std::net::TcpStream::connect("127.0.0.1:1") {
            Ok(_) => "connected".to_owned(),
            Err(e) => e.to_string(),
        }),
        "/env" => Some(format!("{:?}", std::env::vars().collect::<Vec<_>>())),
        _ => None,
    }
}

impl Policy for HostileWasi {
    fn on_request(req: &Request, current: RequestDecision) -> RequestDecision {
        match reach(req.path()) {
            Some(leak) => current.respond(SyntheticResponse::new(200, format!("leaked: {leak}"))),
            None => current,
        }
    }
}

caje_policy::export!(HostileWasi);
