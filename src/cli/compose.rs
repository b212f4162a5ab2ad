//! The compose options `pack` and `plan` share, named as `docker compose`
//! names them, and the library's `ComposeOptions` they turn into.

use std::path::PathBuf;

use airgap::plan::ComposeOptions;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Compose project")]
pub struct ComposeArgs {
    /// A compose file; repeat to merge several, later ones over earlier ones (default: $COMPOSE_FILE, else compose.yaml… in the current directory or a parent).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Vec<PathBuf>,
    /// The project directory (default: the first compose file's directory).
    #[arg(long, value_name = "DIR")]
    project_directory: Option<PathBuf>,
    /// The project name, which names build-only images <project>-<service> (default: $COMPOSE_PROJECT_NAME, `name:`, the directory name).
    #[arg(short = 'p', long, value_name = "NAME")]
    project_name: Option<String>,
    /// Enable a profile; repeatable (default: $COMPOSE_PROFILES).
    #[arg(long, value_name = "PROFILE")]
    profile: Vec<String>,
    /// Enable every profile.
    #[arg(long, conflicts_with = "profile")]
    all_profiles: bool,
    /// Read variables from this file instead of the project's .env; repeatable.
    #[arg(long, value_name = "FILE")]
    env_file: Vec<PathBuf>,
}

impl ComposeArgs {
    /// The library options, with the current directory and the process environment.
    pub fn options(self) -> anyhow::Result<ComposeOptions> {
        Ok(ComposeOptions {
            files: self.file,
            project_directory: self.project_directory,
            project_name: self.project_name,
            profiles: self.profile,
            all_profiles: self.all_profiles,
            env_files: self.env_file,
            current_dir: std::env::current_dir()?,
            // Variables that are not UTF-8 cannot be interpolated by Compose either.
            environment: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        })
    }
}
