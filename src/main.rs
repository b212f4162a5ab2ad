//! The `airgap` binary: parses arguments, runs one command, prints its
//! outcome, and maps failures to the exit codes the README documents.

mod cli;

use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};

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
    let outcome = runtime.block_on(async move {
        // Engine calls bridge into the runtime with block_on, which must not
        // run on a runtime thread: the whole command runs on a blocking thread.
        let command = tokio::task::spawn_blocking(move || cli::run(args, handle));
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return Some(command.await);
        };
        tokio::select! {
            outcome = command => Some(outcome),
            _ = interrupt.recv() => None,
            _ = terminate.recv() => None,
        }
    });
    match outcome {
        Some(Ok(Ok(()))) => ExitCode::SUCCESS,
        Some(Ok(Err(error))) => {
            if cli::exit::is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            // Messages quote what bundles, archives and engines said; escaped
            // here too, so no cause can break the one line or print raw escapes.
            let message = airgap::display::escape(&cli::exit::message(&error)).into_owned();
            match cli::exit::hint(&error) {
                Some(hint) => eprintln!("error: {message}; {hint}"),
                None => eprintln!("error: {message}"),
            }
            ExitCode::from(cli::exit::code(&error))
        }
        Some(Err(panic)) => {
            eprintln!("error: airgap crashed: {panic}");
            ExitCode::from(cli::exit::FAILURE)
        }
        None => {
            // The blocking thread cannot be stopped; its temporary files are
            // removed here, and exiting drops any engine transfer mid-way,
            // which the engine treats as a failed load.
            airgap::files::cleanup::remove_all();
            eprintln!(
                "error: interrupted; temporary files were removed; run the same command again to finish"
            );
            std::process::exit(130);
        }
    }
}
