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

/// One problem per invalid network, then one per overlapping pair, naming the networks.
pub fn problems(networks: &BTreeMap<String, NetworkConfig>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut valid: Vec<(&str, IpNet)> = Vec::new();
    for (name, net) in networks {
        match parse_subnet(net) {
            Ok(Some(s)) => valid.push((name, s)),
            Ok(None) => {}
            Err(e) => out.push((name.clone(), format!("network {name}: {e}"))),
        }
    }
    for (i, (a, sa)) in valid.iter().enumerate() {
        for (b, sb) in &valid[i + 1..] {
            if overlap(sa, sb) {
                out.push((a.to_string(), format!("networks {a} ({sa}) and {b} ({sb}) overlap")));
            }
        }
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
}
