//! Streaming statistics and histograms of tensors.
