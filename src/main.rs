use std::process::ExitCode;

fn main() -> ExitCode {
    // Expression workers and step guards are this binary too; they must start before anything
    // that writes to stdout.
    match std::env::args_os().nth(1) {
        Some(arg) if arg == millrace::expr::WORKER_SUBCOMMAND => millrace::expr::worker_main(),
        Some(arg) if arg == millrace::exec::GUARD_SUBCOMMAND => millrace::exec::guard_main(),
        _ => millrace::cli::main(),
    }
}
