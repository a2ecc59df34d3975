//! `cargo xtask plan` (not yet written).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask plan` is not implemented yet")
}
