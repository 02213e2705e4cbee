//! What every ser binary shares around its library: the `-v`/`-q` flags, the log filter they
//! choose, the stderr subscriber, and how a run's result becomes the exit status. Each stage
//! binary flattens [`LogArgs`] into its clap parser, calls [`LogArgs::init`] with the filter it
//! logs at by default, and ends `main` with [`exit`].

use std::fmt::Display;
use std::process::{ExitCode, Termination};

/// Verbosity flags shared by every ser binary.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct LogArgs {
    /// More log output (-v info for libraries, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors; no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// How log lines are written: text for people, json (one object a line) for log shippers.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogArgs {
    /// The filter directives these flags choose; `default` is the binary's own, used with
    /// neither flag (for example `"warn,ser_eval=info"`: the stage's progress, others' warnings).
    pub fn directives<'a>(&self, default: &'a str) -> &'a str {
        if self.quiet {
            return "error";
        }
        match self.verbose {
            0 => default,
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    }

    /// Installs the global subscriber: log lines on stderr (stdout stays for results), filtered
    /// by `RUST_LOG` when it is set and by [`LogArgs::directives`] otherwise.
    pub fn init(&self, default: &str) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(self.directives(default)));
        let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
        match self.log_format {
            LogFormat::Text => fmt.with_target(false).init(),
            LogFormat::Json => fmt.json().with_current_span(true).with_span_list(false).init(),
        }
    }
}

/// `--device`, for the binaries that run a network: `cpu`, or `cuda` (a build with `--features
/// cuda`). `ser_model::select_device` turns the choice into a device.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct DeviceArgs {
    /// Where to run: cpu, or cuda (needs a build with `--features cuda`).
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    #[default]
    Cpu,
    Cuda,
}

impl DeviceArgs {
    pub fn wants_cuda(&self) -> bool {
        self.device == Device::Cuda
    }
}

/// The exit status of a run: what `Ok` reports (success for `()`), or the error with its chain of
/// causes (`{:#}`, as anyhow prints them) on stderr and failure.
pub fn exit<T: Termination, E: Display>(result: Result<T, E>) -> ExitCode {
    match result {
        Ok(outcome) => outcome.report(),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    fn directives(args: &[&str]) -> String {
        let cli = Cli::try_parse_from(std::iter::once("bin").chain(args.iter().copied())).unwrap();
        cli.log.directives("warn,stage=info").to_string()
    }

    #[test]
    fn flags_choose_the_filter() {
        assert_eq!(directives(&[]), "warn,stage=info");
        assert_eq!(directives(&["-v"]), "info");
        assert_eq!(directives(&["-vv"]), "debug");
        assert_eq!(directives(&["-vvvv"]), "trace");
        assert_eq!(directives(&["-q"]), "error");
        assert_eq!(directives(&["--quiet"]), "error");
    }

    #[test]
    fn quiet_and_verbose_conflict() {
        let err = Cli::try_parse_from(["bin", "-q", "-v"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn errors_fail_and_outcomes_report_themselves() {
        assert_eq!(exit(Ok::<(), String>(())), ExitCode::SUCCESS);
        assert_eq!(exit(Ok::<ExitCode, String>(ExitCode::FAILURE)), ExitCode::FAILURE);
        assert_eq!(exit(Err::<(), _>("broken")), ExitCode::FAILURE);
    }
}
