use std::process::ExitCode;

fn main() -> ExitCode {
    // Expression workers are this binary too; they must start before anything that writes to stdout.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == millrace::expr::WORKER_SUBCOMMAND)
    {
        return millrace::expr::worker_main();
    }
    ExitCode::SUCCESS
}
