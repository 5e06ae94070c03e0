//! Measuring speed (BENCHMARKS.md): circuitscope against PyTorch, Captum and scikit-learn
//! ([`peers`], our side in [`side`]), this CPU's peak FP32 rate ([`peak`]) and the timing
//! helpers `circuitscope bench` and `benches/` share ([`timing`]), users' models imported and
//! spec architectures trained ([`spec`]), live analysis keeping up with training ([`follow`]),
//! every circuit-discovery method on one table ([`circuits`]), cost curves of every stage
//! against width, depth, examples and inputs ([`scale`]). Nothing here is used by a
//! stage, and nothing here is part of the test command's timing: speed is measured here, never
//! asserted in a test.

pub mod agreement;
pub mod circuits;
pub mod evaluation;
pub mod follow;
pub mod peak;
pub mod peers;
pub mod scale;
pub mod side;
pub mod spec;
pub mod timing;
pub mod w6;
