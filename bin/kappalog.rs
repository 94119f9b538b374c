//! The `kappalog` binary. Thin: arguments are parsed here, the work is done by the library.

fn main() {
    eprintln!("kappalog {}: the broker and CLI are not built yet (see issue 5)", env!("CARGO_PKG_VERSION"));
    std::process::exit(2);
}
