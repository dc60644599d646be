//! Offline checks of the configured Docker networks: what can be known wrong without
//! asking Docker (invalid CIDR, host bits set, a gateway outside its subnet or without
//! one, two configured subnets overlapping). Pure, so the generator, `hlsys plan`,
//! `hlsys stacks` and `hlsys check` report the same problems before
//! `homelab-networks.service` would fail at boot.
//!
//! A problem here is not a config error: the networks unit would fail, and with it the
//! stacks that need Docker networks, but every unit is still generated (the stacks that
//! need no configured network still start) and the problem is reported and logged.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::capped::thousands;
use crate::config::NetworkConfig;

/// The subnet of a network, `None` when it sets none; an error says what is wrong.
pub fn parse_subnet(net: &NetworkConfig) -> Result<Option<IpNet>, String> {
    let Some(s) = &net.subnet else {
        if net.gateway.is_some() {
            return Err("gateway is set but subnet is not".into());
        }
        return Ok(None);
    };
    let subnet: IpNet = s
        .parse()
        .map_err(|_| format!("subnet {s:?} is not a CIDR prefix like 10.20.0.0/24"))?;
    if subnet.trunc() != subnet {
        return Err(format!(
            "subnet {s:?} has host bits set (did you mean {}?)",
            subnet.trunc()
        ));
    }
    if let Some(g) = &net.gateway {
        let gw: IpAddr = g.parse().map_err(|_| format!("gateway {g:?} is not an IP address"))?;
        if !subnet.contains(&gw) {
            return Err(format!("gateway {g} is outside subnet {subnet}"));
        }
    }
    Ok(Some(subnet))
}

pub fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Problems of one class (invalid networks, overlapping pairs) named in full; the rest
/// are counted in one more problem, so a networks.toml of thousands of overlapping
/// networks gives a few lines, not one per pair (hlsys.toml(5), LIMITS).
pub const MAX_NAMED: usize = 10;

/// The invalid networks, then the overlapping pairs, each class named up to
/// [`MAX_NAMED`] times and the rest counted. Each problem comes with the network it is
/// filed under (for the file that defines it).
pub fn problems(networks: &BTreeMap<String, NetworkConfig>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut valid: Vec<(&str, IpNet)> = Vec::new();
    let mut invalid: Vec<&str> = Vec::new();
    for (name, net) in networks {
        match parse_subnet(net) {
            Ok(Some(s)) => valid.push((name, s)),
            Ok(None) => {}
            Err(e) => {
                if invalid.len() < MAX_NAMED {
                    out.push((name.clone(), format!("network {name}: {e}")));
                }
                invalid.push(name);
            }
        }
    }
    if let Some(first) = invalid.get(MAX_NAMED) {
        let rest = invalid.len() - MAX_NAMED;
        out.push((
            first.to_string(),
            format!("… and {} more invalid networks (from {first} on)", thousands(rest)),
        ));
    }
    out.extend(overlaps(&valid));
    out
}

/// The overlapping pairs among `valid`, by one sweep over the subnets sorted by address
/// (O(n log n), however many pairs): two prefixes overlap only when one holds the other,
/// so in address order (a larger prefix before the smaller ones it holds) the prefixes
/// holding a subnet are exactly the chain of open ones before it. Names the first
/// [`MAX_NAMED`] pairs (each subnet with the nearest one holding it), counts the rest.
fn overlaps(valid: &[(&str, IpNet)]) -> Vec<(String, String)> {
    let key = |n: &IpNet| match n {
        IpNet::V4(v) => (false, u128::from(u32::from(v.network())), v.prefix_len()),
        IpNet::V6(v) => (true, u128::from(v.network()), v.prefix_len()),
    };
    let mut sorted: Vec<&(&str, IpNet)> = valid.iter().collect();
    sorted.sort_by(|a, b| (key(&a.1), a.0).cmp(&(key(&b.1), b.0)));
    let mut out = Vec::new();
    // The chain of prefixes holding the current one, outermost first; for the outermost,
    // whether it was counted as overlapping yet (the others are held, so they were).
    let mut open: Vec<(&(&str, IpNet), bool)> = Vec::new();
    let (mut pairs, mut involved) = (0usize, 0usize);
    let mut first_unnamed = None;
    for net in sorted {
        while let Some((top, _)) = open.last() {
            if top.1.contains(&net.1.network()) {
                break;
            }
            open.pop();
        }
        if let Some(&(holder, _)) = open.last() {
            let ((a, sa), (b, sb)) = if holder.0 <= net.0 {
                (holder, net)
            } else {
                (net, holder)
            };
            if out.len() < MAX_NAMED {
                out.push((a.to_string(), format!("networks {a} ({sa}) and {b} ({sb}) overlap")));
            } else if first_unnamed.is_none() {
                first_unnamed = Some(a.to_string());
            }
            pairs += open.len();
            involved += 1;
            if !open[0].1 {
                open[0].1 = true;
                involved += 1;
            }
        }
        open.push((net, false));
    }
    let named = out.len();
    if pairs > named {
        let file = first_unnamed.unwrap_or_else(|| out[0].0.clone());
        out.push((
            file,
            format!(
                "… and {} more overlapping pairs ({} in all, among {} networks)",
                thousands(pairs - named),
                thousands(pairs),
                thousands(involved)
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(subnet: Option<&str>, gateway: Option<&str>) -> NetworkConfig {
        NetworkConfig {
            driver: "bridge".into(),
            internal: false,
            subnet: subnet.map(str::to_string),
            gateway: gateway.map(str::to_string),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn invalid_and_overlapping_networks() {
        let nets: BTreeMap<String, NetworkConfig> = [
            ("a", net(Some("10.1.0.0/16"), None)),
            ("b", net(Some("10.1.2.0/24"), Some("10.1.2.1"))),
            ("c", net(Some("10.300.0.0/24"), None)),
            ("d", net(Some("10.9.0.0/24"), Some("10.8.0.1"))),
            ("e", net(None, None)),
        ]
        .into_iter()
        .map(|(n, c)| (n.to_string(), c))
        .collect();
        let p: Vec<String> = problems(&nets).into_iter().map(|(_, m)| m).collect();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("network c") && p[0].contains("CIDR"), "{p:?}");
        assert!(p[1].contains("outside subnet"), "{p:?}");
        assert!(p[2].contains("a (10.1.0.0/16) and b"), "{p:?}");
    }

    fn nets(list: &[(String, &str)]) -> BTreeMap<String, NetworkConfig> {
        list.iter().map(|(n, s)| (n.clone(), net(Some(s), None))).collect()
    }

    /// Pairs counted by brute force, for the sweep to agree with.
    fn brute_pairs(n: &BTreeMap<String, NetworkConfig>) -> usize {
        let v: Vec<IpNet> = n.values().map(|c| parse_subnet(c).unwrap().unwrap()).collect();
        (0..v.len())
            .map(|i| v[i + 1..].iter().filter(|b| overlap(&v[i], b)).count())
            .sum()
    }

    #[test]
    fn a_flood_of_overlaps_is_named_a_few_times_and_counted() {
        let mut list: Vec<(String, &str)> = (0..2000).map(|i| (format!("same{i:04}"), "10.1.0.0/16")).collect();
        list.push(("apart".into(), "192.168.9.0/24"));
        let p = problems(&nets(&list));
        assert_eq!(p.len(), MAX_NAMED + 1, "{p:?}");
        assert_eq!(
            p[0].1,
            "networks same0000 (10.1.0.0/16) and same0001 (10.1.0.0/16) overlap"
        );
        let last = &p[MAX_NAMED].1;
        assert_eq!(
            last,
            &format!(
                "… and {} more overlapping pairs (1,999,000 in all, among 2,000 networks)",
                thousands(1_999_000 - MAX_NAMED)
            )
        );
        assert!(!p.iter().any(|(_, m)| m.contains("apart")), "{p:?}");
    }

    #[test]
    fn the_sweep_counts_what_pairwise_counts() {
        let subnets = [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.0/24",
            "10.1.2.0/24",
            "10.1.3.0/24",
            "10.2.0.0/16",
            "11.0.0.0/8",
            "10.1.2.128/25",
            "fd00::/8",
            "fd00:1::/32",
            "fe80::/10",
            "0.0.0.0/0",
        ];
        // Every subset of a few, so nesting, equal prefixes and families mix.
        for mask in 0u32..(1 << subnets.len()) {
            let list: Vec<(String, &str)> = subnets
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(i, s)| (format!("n{i:02}"), *s))
                .collect();
            let n = nets(&list);
            let want = brute_pairs(&n);
            let p = problems(&n);
            let got = match p.last() {
                Some((_, last)) if last.starts_with('…') => {
                    assert!(last.contains(&format!("({} in all", thousands(want))), "{mask}: {last}");
                    assert!(p.len() <= MAX_NAMED + 1, "{mask}: {p:?}");
                    want
                }
                _ => p.len(),
            };
            assert_eq!(got, want, "{mask}: {p:?}");
        }
    }

    #[test]
    fn invalid_networks_are_capped_too() {
        let list: Vec<(String, &str)> = (0..500).map(|i| (format!("bad{i:03}"), "10.300.0.0/24")).collect();
        let p = problems(&nets(&list));
        assert_eq!(p.len(), MAX_NAMED + 1);
        assert_eq!(p[MAX_NAMED].0, "bad010");
        assert_eq!(p[MAX_NAMED].1, "… and 490 more invalid networks (from bad010 on)");
    }
}
