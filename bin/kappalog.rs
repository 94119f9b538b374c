//! The `kappalog` binary. Thin: arguments are parsed and the work is done by the library
//! (`kappalog::cli`, `kappalog::server`).

fn main() {
    std::process::exit(kappalog::cli::main());
}
