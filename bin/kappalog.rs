//! The `kappalog` binary. Thin: arguments are parsed and the work is done by the library
//! (`kappalog::broker::cli`, `kappalog::broker::server`).

fn main() {
    std::process::exit(kappalog::broker::cli::main());
}
