//! Client commands: talk to a running latch over its HTTP API.
//! (Being written: this stub lets the binary build.)

use clap::{Args, Subcommand, ValueEnum};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Json,
}

#[derive(Args)]
pub struct GlobalOptions {
    /// How listing commands print: `table` for people, `json` for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Show who the token belongs to.
    Whoami,
}

pub async fn run(_options: &GlobalOptions, _command: ClientCommand) -> anyhow::Result<()> {
    Err(crate::exit::Failed("not yet".into()).into())
}

/// Prints rows as an aligned table.
pub fn print_table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(header.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    println!("{table}");
}
