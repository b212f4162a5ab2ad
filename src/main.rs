//! The `airgap` binary: parses arguments, runs one command, prints its
//! outcome, and maps failures to the exit codes the README documents.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = <cli::Args as clap::Parser>::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(cli::exit::FAILURE);
        }
    };
    let handle = runtime.handle().clone();
    // Engine calls bridge into the runtime with block_on, which must not run
    // on a runtime thread: the whole command runs on a blocking thread.
    let outcome = runtime
        .block_on(async move { tokio::task::spawn_blocking(move || cli::run(args, handle)).await });
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(error)) => {
            if cli::exit::is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            match cli::exit::hint(&error) {
                Some(hint) => eprintln!("error: {error:#}; {hint}"),
                None => eprintln!("error: {error:#}"),
            }
            ExitCode::from(cli::exit::code(&error))
        }
        Err(panic) => {
            eprintln!("error: airgap crashed: {panic}");
            ExitCode::from(cli::exit::FAILURE)
        }
    }
}
