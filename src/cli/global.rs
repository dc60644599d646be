//! What every subcommand starts from: the options all of them take ([`Global`]), the
//! config and model they load, and how an unusable config ends a command (exit 2).

use std::path::PathBuf;
use std::process::ExitCode;

use hlsys_core::config::host::Host;
use hlsys_core::config::{Config, ConfigError, CONFIG_ENV};
use hlsys_core::exit::EXIT_CONFIG;
use hlsys_core::model::Model;

use crate::resolve::{targets, Target};

/// Options every subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Config file [default: $HLSYS_CONFIG, else /etc/hlsys/hlsys.toml]
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl Global {
    /// The host as this process sees it: `--config` beats `HLSYS_CONFIG` beats the
    /// default; relative paths are from the working directory. The only place the CLI
    /// reads them: the core is handed the result.
    pub fn host(&self) -> Host {
        let asked = self
            .config
            .clone()
            .map(Into::into)
            .or_else(|| std::env::var_os(CONFIG_ENV));
        let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
        Host::new(None, asked, &cwd)
    }

    pub fn load_config(&self) -> Result<Config, ConfigError> {
        self.host().load_config()
    }

    /// Config and tree; `Err` only when the config itself is unusable.
    pub fn load_model(&self) -> Result<Model, ConfigError> {
        let config = self.load_config()?;
        hlsys_core::tree::build(config)
    }
}

/// Prints a config error and gives exit status 2.
pub fn config_failure(e: &ConfigError) -> ExitCode {
    eprintln!("hlsys: config error: {e}");
    ExitCode::from(EXIT_CONFIG)
}

/// Loads the model and resolves the NAMEs; `Err(exit code)` after printing why not.
pub fn model_and_targets(global: &Global, names: &[String]) -> Result<(Model, Vec<Target>), ExitCode> {
    let model = match global.load_model() {
        Ok(m) => m,
        Err(e) => return Err(config_failure(&e)),
    };
    match targets(&model, names) {
        Ok(t) => Ok((model, t)),
        Err(e) => {
            eprintln!("hlsys: {e}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}
