//! navarch kube-proxy: programs nftables for Services. Not implemented yet (issue 6).

fn main() {
    eprintln!(
        "kube-proxy: not implemented yet (tracked in issue 6: kube-proxy and Services); nothing was started"
    );
    std::process::exit(2);
}
