//! navarch controller-manager: level-triggered controllers. Not implemented yet (issue 5).

fn main() {
    eprintln!(
        "controller-manager: not implemented yet (tracked in issue 5: the controller-manager); nothing was started"
    );
    std::process::exit(2);
}
