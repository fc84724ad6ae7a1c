//! The reasoning engine: strategies as IO-free state machines.
//!
//! Nothing in this module performs IO or knows any provider plugin: a [`Run`] says which
//! completions it needs next, the caller performs them however it likes (the Python driver
//! does so concurrently with asyncio) and reports the results back.

pub mod answer;
pub mod extract;
pub mod run;
pub mod sampling;
pub mod strategies;
pub mod task;

pub use answer::{Answer, Step};
pub use run::{drive, CallSpec, Poll, Run, Timing};
pub use sampling::Sampling;
pub use task::{StrategyKind, Task};

#[cfg(test)]
mod tests;
