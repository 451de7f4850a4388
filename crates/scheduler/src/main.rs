//! navarch scheduler: binds pending pods to nodes that fit. Not implemented yet (issue 3).

fn main() {
    eprintln!("scheduler: not implemented yet (tracked in issue 3: the scheduler); nothing was started");
    std::process::exit(2);
}
