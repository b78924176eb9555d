//! The native command-line interface (`weightscope`), on the same core as the page.

pub fn main() -> i32 {
    0
}
pub mod stats_cmd;
