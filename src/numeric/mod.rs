//! Shared numerics, one floor below every stage: linear algebra (PCA, PLS, SVD, principal
//! angles), scores for partitions and rankings (ARI, NMI, purity, Spearman, ROC AUC, curve
//! areas) and generic clustering helpers. This module knows nothing of networks, models or
//! runs; it must never import another circuitscope module.

pub mod cluster;
pub mod linalg;
pub mod score;
