//! Circuits this process originates: built hop by hop, then carrying streams to the last hop.
//!
//! The client builds its 3-hop circuits here, and the directory authority's bandwidth
//! scanner its 2-hop measurement circuits; both are the *origin* of the circuit, holding
//! every hop's keys.
//! - [`circuit`]: the telescoping build and the circuit task with its streams and RESOLVEs.
//! - [`links`]: links to first hops, shared by circuits through the same relay.

pub mod circuit;
pub mod links;

pub use circuit::{BuildError, CircuitHandle, StreamError, build};
pub use links::{EntryLink, EntryLinks};
