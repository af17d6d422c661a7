//! The caching proxy end to end: a real caje node in front of a real origin, over loopback HTTP.

mod caching;
mod coalescing;
mod errors;
mod invalidation;
mod recording;
mod revalidation;
mod store;
