//! The compose options `pack` and `plan` share, named as `docker compose`
//! names them, and the library's `ComposeOptions` they turn into.

use std::path::PathBuf;

use airgap::plan::{ComposeOptions, Plan};

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
    /// True when no compose file is named on the command line.
    pub fn names_no_file(&self) -> bool {
        self.file.is_empty()
    }

    pub fn options(self) -> anyhow::Result<ComposeOptions> {
        Ok(ComposeOptions {
            files: self.file,
            project_directory: self.project_directory,
            project_name: self.project_name,
            profiles: self.profile,
            all_profiles: self.all_profiles,
            env_files: self.env_file,
            current_dir: working_directory()?,
            // Variables that are not UTF-8 cannot be interpolated by Compose either.
            environment: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        })
    }
}

/// The current directory as the shell names it: `$PWD` when it is the same
/// directory, as Go's `os.Getwd` (and so Compose) does. Through a symbolic
/// link, the project is then named after the link, not its target.
fn working_directory() -> std::io::Result<PathBuf> {
    let physical = std::env::current_dir()?;
    if let Some(pwd) = std::env::var_os("PWD").map(PathBuf::from)
        && pwd.is_absolute()
        && std::fs::canonicalize(&pwd).ok() == std::fs::canonicalize(&physical).ok()
    {
        return Ok(pwd);
    }
    Ok(physical)
}

/// Warns, as Compose does, about each variable that was unset where the
/// compose files use it plainly: it became an empty string, which can
/// quietly change an image name.
pub fn warn_unset_variables(plan: &Plan) {
    let Some(project) = &plan.project else {
        return;
    };
    for name in &project.unset_variables {
        eprintln!("warning: variable {name} is not set; it was replaced by an empty string");
    }
}
