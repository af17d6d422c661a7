//! A policy built against `caje:policy@0.3.0` (see `wit/`), which the host must refuse.

wit_bindgen::generate!({ path: "wit", world: "policy" });

pub struct FutureVersion;

impl exports::caje::policy::hooks::Guest for FutureVersion {
    fn on_request(path: String) -> String {
        path
    }
}

export!(FutureVersion);
