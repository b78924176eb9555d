//! The edit journal and export plan.
