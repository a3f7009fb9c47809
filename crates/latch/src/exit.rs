//! The one mapping from a command's outcome to an exit code: 0 ok, 1 refused or failed,
//! 2 usage error (clap exits with 2 itself for bad arguments).

use std::process::ExitCode;

/// A refusal or failure the user should read; printed as `error: …` and exit 1.
#[derive(Debug)]
pub struct Failed(pub String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

/// A usage mistake clap cannot see (e.g. no server configured); exit 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A program latch ran (psql) failed and said why itself: exit with its code, print nothing.
#[derive(Debug)]
pub struct Silent(pub i32);

impl std::fmt::Display for Silent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exited with {}", self.0)
    }
}

impl std::error::Error for Silent {}

pub fn report(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<Silent>().is_some() => {
            let code = err.downcast_ref::<Silent>().map_or(1, |s| s.0);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            if err.downcast_ref::<Usage>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
