//! navarch kubelet: the node agent driving containerd. Not implemented yet (issue 4).

fn main() {
    eprintln!("kubelet: not implemented yet (tracked in issue 4: the kubelet); nothing was started");
    std::process::exit(2);
}
