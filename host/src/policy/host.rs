//! The data of one module instance's store and the host side of the WIT imports (of both
//! contract versions): the request and response lookups guests make, their panic reports, and
//! the memory limiter.

use std::ptr::NonNull;

use http::HeaderMap;
use wasmtime::component::Resource;
use wasmtime::{ResourceLimiter, Store, bail};

use super::bindings::{ClientResponseHandle, RequestHandle, ResponseHandle, v1, v2};
use super::edits::wit_headers;
use super::memo::{Read, Trace};
use super::view::{ClientResponseView, RequestView, ResponseView};

/// The longest panic message kept from a guest.
const MAX_PANIC_MESSAGE: usize = 1024;

/// What a module instance can reach: the request (and response) of the call in progress.
pub(crate) struct StoreState {
    request: Option<Lent<RequestView<'static>>>,
    response: Option<Lent<ResponseView<'static>>>,
    client_response: Option<Lent<ClientResponseView<'static>>>,
    memory_limit: usize,
    /// The size the guest last tried to grow its memory to beyond `memory_limit`.
    pub memory_refused: Option<usize>,
    /// What the guest's panic hook reported before it trapped.
    pub panic_message: Option<String>,
    /// The reads of the request (and client response) in this call, when its decision may be
    /// memoized.
    pub trace: Option<Trace>,
}

/// The proxy's request (or response head), lent to a store for one hook call. A store's data
/// must be `'static` while the proxy's request is borrowed; copying it into the store instead
/// (and dropping the copy) made a trivial hook call 40% slower (`benches/policy_hook.rs`).
struct Lent<T: 'static>(NonNull<T>);

// SAFETY: a `Lent` is created and cleared by `StoreState::lend`, which outlives every use of
// it, and is only dereferenced by host functions running inside that call, on its thread.
// `T: Sync` makes reading the referent from whichever thread runs the call sound.
unsafe impl<T: Sync> Send for Lent<T> {}

impl<T> Lent<T> {
    fn get(&self) -> &T {
        // SAFETY: see the `Send` impl: the referent is alive for the whole call, and host
        // functions only read it while the call runs.
        unsafe { self.0.as_ref() }
    }
}

/// Ends a lend when the hook call returns or unwinds, so a pooled store never keeps a pointer
/// to a request that is gone.
struct LendGuard<'s>(&'s mut Store<StoreState>);

impl Drop for LendGuard<'_> {
    fn drop(&mut self) {
        let state = self.0.data_mut();
        state.request = None;
        state.response = None;
        state.client_response = None;
    }
}

/// What one hook call lends the guest besides the request.
#[derive(Clone, Copy)]
pub(crate) enum Lend<'a> {
    Nothing,
    Response(&'a ResponseView<'a>),
    ClientResponse(&'a ClientResponseView<'a>),
}

impl StoreState {
    pub fn new(memory_limit: usize) -> Self {
        StoreState {
            request: None,
            response: None,
            client_response: None,
            memory_limit,
            memory_refused: None,
            panic_message: None,
            trace: None,
        }
    }

    /// Runs `call` with `request` (and what `lend` holds) visible to the guest's host calls.
    pub fn lend<R>(
        store: &mut Store<StoreState>,
        request: &RequestView<'_>,
        lend: Lend<'_>,
        call: impl FnOnce(&mut Store<StoreState>) -> R,
    ) -> R {
        let state = store.data_mut();
        // The views' lifetimes are erased here and end with the guard below, within the call.
        state.request = Some(Lent(NonNull::from(request).cast()));
        match lend {
            Lend::Nothing => {}
            Lend::Response(response) => {
                state.response = Some(Lent(NonNull::from(response).cast()));
            }
            Lend::ClientResponse(response) => {
                state.client_response = Some(Lent(NonNull::from(response).cast()));
            }
        }
        // A report from an earlier call that did not trap must not explain this call's trap.
        state.panic_message = None;
        state.memory_refused = None;
        let guard = LendGuard(store);
        call(guard.0)
    }

    fn note(&mut self, read: Read) {
        if let Some(trace) = &mut self.trace {
            trace.record(read);
        }
    }

    fn note_all_headers(&mut self) {
        if let Some(trace) = &mut self.trace {
            trace.record_all_headers();
        }
    }

    /// The request, noting `read` in the trace of a memoizable call.
    fn read(&mut self, read: Read) -> wasmtime::Result<&RequestView<'_>> {
        self.note(read);
        self.request()
    }

    fn request(&self) -> wasmtime::Result<&RequestView<'_>> {
        match &self.request {
            Some(request) => Ok(request.get()),
            None => bail!("the guest used a request outside of a hook call"),
        }
    }

    fn response(&self) -> wasmtime::Result<&ResponseView<'_>> {
        match &self.response {
            Some(response) => Ok(response.get()),
            None => bail!("the guest used a response head outside of on-response"),
        }
    }

    fn client_response(&self) -> wasmtime::Result<&ClientResponseView<'_>> {
        match &self.client_response {
            Some(response) => Ok(response.get()),
            None => bail!("the guest used a client response outside of on-deliver"),
        }
    }

    /// The client response, noting `read` in the trace of a memoizable call.
    fn read_client(&mut self, read: Read) -> wasmtime::Result<&ClientResponseView<'_>> {
        self.note(read);
        self.client_response()
    }

    fn request_method(&mut self) -> wasmtime::Result<String> {
        Ok(self.read(Read::Method)?.method.as_str().to_owned())
    }

    fn request_scheme(&mut self) -> wasmtime::Result<String> {
        Ok(self.read(Read::Scheme)?.scheme.to_owned())
    }

    fn request_authority(&mut self) -> wasmtime::Result<String> {
        Ok(self.read(Read::Authority)?.authority.to_owned())
    }

    fn request_path(&mut self) -> wasmtime::Result<String> {
        Ok(self.read(Read::Path)?.path_and_query.path().to_owned())
    }

    fn request_query(&mut self) -> wasmtime::Result<Option<String>> {
        let request = self.read(Read::Query)?;
        Ok(request.path_and_query.query().map(str::to_owned))
    }

    fn request_header(&mut self, name: &str) -> wasmtime::Result<Option<Vec<u8>>> {
        let read = Read::Header(name.to_ascii_lowercase());
        Ok(first_value(self.read(read)?.headers, name))
    }

    fn request_header_all(&mut self, name: &str) -> wasmtime::Result<Vec<Vec<u8>>> {
        let read = Read::HeaderAll(name.to_ascii_lowercase());
        Ok(all_values(self.read(read)?.headers, name))
    }

    fn request_headers(&mut self) -> wasmtime::Result<Vec<(String, Vec<u8>)>> {
        self.note_all_headers();
        Ok(wit_headers(self.request()?.headers))
    }

    fn keep_panic_message(&mut self, mut message: String) {
        if message.len() > MAX_PANIC_MESSAGE {
            let cut = (0..=MAX_PANIC_MESSAGE)
                .rev()
                .find(|&at| message.is_char_boundary(at))
                .unwrap_or(0);
            message.truncate(cut);
        }
        self.panic_message = Some(message);
    }
}

fn first_value(headers: &HeaderMap, name: &str) -> Option<Vec<u8>> {
    headers.get(name).map(|value| value.as_bytes().to_vec())
}

fn all_values(headers: &HeaderMap, name: &str) -> Vec<Vec<u8>> {
    headers
        .get_all(name)
        .iter()
        .map(|value| value.as_bytes().to_vec())
        .collect()
}

/// The imports both versions share (the request, the response head's common part and panic
/// reports), implemented once for each version's generated traits.
macro_rules! shared_imports {
    ($types:path { $($response_head_extra:tt)* }) => {
        const _: () = {
            use $types as types;

            impl types::HostRequest for StoreState {
                fn method(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<String> {
                    self.request_method()
                }

                fn scheme(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<String> {
                    self.request_scheme()
                }

                fn authority(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<String> {
                    self.request_authority()
                }

                fn path(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<String> {
                    self.request_path()
                }

                fn query(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<Option<String>> {
                    self.request_query()
                }

                fn header(
                    &mut self,
                    _: Resource<RequestHandle>,
                    name: String,
                ) -> wasmtime::Result<Option<Vec<u8>>> {
                    self.request_header(&name)
                }

                fn header_all(
                    &mut self,
                    _: Resource<RequestHandle>,
                    name: String,
                ) -> wasmtime::Result<Vec<Vec<u8>>> {
                    self.request_header_all(&name)
                }

                fn headers(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<types::Headers> {
                    self.request_headers()
                }

                fn drop(&mut self, _: Resource<RequestHandle>) -> wasmtime::Result<()> {
                    // The host only lends borrows of the request; there is nothing to free.
                    Ok(())
                }
            }

            impl types::HostResponseHead for StoreState {
                fn status(&mut self, _: Resource<ResponseHandle>) -> wasmtime::Result<u16> {
                    Ok(self.response()?.status.as_u16())
                }

                fn header(
                    &mut self,
                    _: Resource<ResponseHandle>,
                    name: String,
                ) -> wasmtime::Result<Option<Vec<u8>>> {
                    Ok(first_value(self.response()?.headers, &name))
                }

                fn header_all(
                    &mut self,
                    _: Resource<ResponseHandle>,
                    name: String,
                ) -> wasmtime::Result<Vec<Vec<u8>>> {
                    Ok(all_values(self.response()?.headers, &name))
                }

                fn headers(&mut self, _: Resource<ResponseHandle>) -> wasmtime::Result<types::Headers> {
                    Ok(wit_headers(self.response()?.headers))
                }

                fn drop(&mut self, _: Resource<ResponseHandle>) -> wasmtime::Result<()> {
                    Ok(())
                }

                $($response_head_extra)*
            }

            impl types::Host for StoreState {
                fn report_panic(&mut self, message: String) -> wasmtime::Result<()> {
                    self.keep_panic_message(message);
                    Ok(())
                }
            }
        };
    };
}

shared_imports!(v1::caje::policy::types {});

shared_imports!(v2::caje::policy::types {
    fn origin(&mut self, _: Resource<ResponseHandle>) -> wasmtime::Result<String> {
        Ok(self.response()?.origin.to_owned())
    }
});

impl v2::caje::policy::types::HostClientResponse for StoreState {
    fn status(&mut self, _: Resource<ClientResponseHandle>) -> wasmtime::Result<u16> {
        Ok(self.read_client(Read::Status)?.status.as_u16())
    }

    fn outcome(
        &mut self,
        _: Resource<ClientResponseHandle>,
    ) -> wasmtime::Result<v2::caje::policy::types::CacheOutcome> {
        Ok(self.read_client(Read::Outcome)?.outcome.into())
    }

    fn origin(&mut self, _: Resource<ClientResponseHandle>) -> wasmtime::Result<Option<String>> {
        Ok(self.read_client(Read::Origin)?.origin.map(str::to_owned))
    }

    fn header(
        &mut self,
        _: Resource<ClientResponseHandle>,
        name: String,
    ) -> wasmtime::Result<Option<Vec<u8>>> {
        let read = Read::ResponseHeader(name.to_ascii_lowercase());
        Ok(first_value(self.read_client(read)?.headers, &name))
    }

    fn header_all(
        &mut self,
        _: Resource<ClientResponseHandle>,
        name: String,
    ) -> wasmtime::Result<Vec<Vec<u8>>> {
        let read = Read::ResponseHeaderAll(name.to_ascii_lowercase());
        Ok(all_values(self.read_client(read)?.headers, &name))
    }

    fn headers(
        &mut self,
        _: Resource<ClientResponseHandle>,
    ) -> wasmtime::Result<v2::caje::policy::types::Headers> {
        self.note_all_headers();
        Ok(wit_headers(self.client_response()?.headers))
    }

    fn drop(&mut self, _: Resource<ClientResponseHandle>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl ResourceLimiter for StoreState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_refused = Some(desired);
            bail!("linear memory limit exceeded");
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Table sizes are bounded by the pooling allocator's `table_elements`.
        Ok(true)
    }
}
