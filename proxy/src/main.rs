fn main() -> std::process::ExitCode {
    edgeway::cli::main()
}
