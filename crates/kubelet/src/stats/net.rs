//! Network counters from the kernel's text files: `/proc/<pid>/net/dev` (one line of counters per
//! interface of the reader's network namespace) and `/proc/net/route` (which interface carries the
//! default route: the node's "primary" interface, as the kubelet reports it). Parsing only; the
//! reads (entering a pod's namespace) are in [`super::host`].

/// One interface's cumulative counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceStats {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// The interfaces of a `net/dev` file but `lo`, in the file's order. The file has two header lines,
/// then `name: rx_bytes rx_packets rx_errs rx_drop fifo frame compressed multicast tx_bytes
/// tx_packets tx_errs tx_drop ...`; malformed lines are skipped.
pub fn parse_net_dev(text: &str) -> Vec<InterfaceStats> {
    text.lines()
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            let v: Vec<u64> = counters.split_whitespace().map(|f| f.parse().ok()).collect::<Option<_>>()?;
            if name == "lo" || name.is_empty() || v.len() < 12 {
                return None;
            }
            Some(InterfaceStats {
                name: name.to_string(),
                rx_bytes: v[0],
                rx_packets: v[1],
                rx_errors: v[2],
                rx_dropped: v[3],
                tx_bytes: v[8],
                tx_packets: v[9],
                tx_errors: v[10],
                tx_dropped: v[11],
            })
        })
        .collect()
}

/// The interface of the default route (destination and mask 0) in a `/proc/net/route` file, the one
/// with the lowest metric when there are several.
pub fn default_route_interface(text: &str) -> Option<String> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
            (f.len() >= 8 && f[1] == "00000000" && f[7] == "00000000")
                .then(|| (f[6].parse::<u64>().unwrap_or(u64::MAX), f[0].to_string()))
        })
        .min()
        .map(|(_, name)| name)
}

/// The counters of several interfaces added up (a pod's), named `name`.
pub fn sum(name: &str, interfaces: &[InterfaceStats]) -> InterfaceStats {
    interfaces.iter().fold(InterfaceStats { name: name.to_string(), ..Default::default() }, |mut t, i| {
        t.rx_bytes += i.rx_bytes;
        t.rx_packets += i.rx_packets;
        t.rx_errors += i.rx_errors;
        t.rx_dropped += i.rx_dropped;
        t.tx_bytes += i.tx_bytes;
        t.tx_packets += i.tx_packets;
        t.tx_errors += i.tx_errors;
        t.tx_dropped += i.tx_dropped;
        t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0: 5210113    4321    1    2    0     0          0         0   812345    2100    3    4    0     0       0          0
 veth1a2b:   20      1    0    0    0     0          0         0       40      2    0    0    0     0       0          0
";

    #[test]
    fn net_dev_lines_but_loopback() {
        let ifs = parse_net_dev(NET_DEV);
        assert_eq!(ifs.len(), 2);
        assert_eq!(
            ifs[0],
            InterfaceStats {
                name: "eth0".into(),
                rx_bytes: 5_210_113,
                rx_packets: 4321,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 812_345,
                tx_packets: 2100,
                tx_errors: 3,
                tx_dropped: 4,
            }
        );
        assert_eq!(ifs[1].name, "veth1a2b");
        let total = sum("pod", &ifs);
        assert_eq!((total.rx_bytes, total.tx_bytes, total.tx_packets), (5_210_133, 812_385, 2102));
        assert!(parse_net_dev("eth0: 1 2 3\ngarbage\n").is_empty());
    }

    #[test]
    fn default_route_has_the_lowest_metric() {
        let route = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
navarch0\t00580A0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
enp3s0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
";
        assert_eq!(default_route_interface(route).as_deref(), Some("enp3s0"));
        assert_eq!(default_route_interface("Iface Destination\n"), None);
    }
}
