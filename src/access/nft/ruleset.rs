//! The `inet storegate` table as one nftables JSON document.
//!
//! ```text
//! table inet storegate {
//!   set allowed { type ether_addr; flags timeout; }      # authorised clients,
//!                                                        # each with the rest of its session
//!   set active  { type ether_addr; timeout <window>; }   # refreshed by routed traffic
//!   set garden4 / garden6 { flags interval; }            # walled garden
//!   chain portal_nat (nat prerouting, dstnat):
//!     LAN, authorised or garden → return; LAN tcp dport 80 → redirect to :<portal>
//!   chain forward (filter forward, filter - 5):
//!     LAN → off the LAN, authorised → update @active, accept
//!     LAN, authorised → accept
//!     LAN → garden accept; tcp 443 reject with tcp reset; everything else drop
//!   chain input (filter input, filter - 5):
//!     LAN tcp dport <dashboard> → drop (the dashboard is for the
//!     management side, never for guests, authorised or not)
//!     LAN, not authorised, DNS over its per-client rate → drop
//!     LAN: established/related, DHCP/DHCPv6/DNS, ICMP/ICMPv6, the portal
//!     port → accept; any other TCP → reset; everything else drop. The
//!     same for every guest, signed in or not: signing in opens the
//!     Internet, never the router's own services (SSH, LuCI, ...).
//! }
//! ```
//!
//! Matching on `ether saddr` covers IPv4 and IPv6 alike, so there is no
//! IPv6 bypass. The chains run before fw4's (priority filter - 5): a drop
//! here is final, an accept still passes through the router's own rules.
//! The document first adds, deletes and re-adds the table, so applying it
//! replaces any leftover table in one transaction without a gap.

use std::time::Duration;

use ipnet::IpNet;
use serde_json::{Value, json};

use crate::access::Grant;

/// The table storegate owns.
pub const TABLE: &str = "storegate";
/// Set of authorised client MACs.
pub const SET_ALLOWED: &str = "allowed";
/// Set of client MACs that sent traffic within the activity window.
pub const SET_ACTIVE: &str = "active";

const FAMILY: &str = "inet";
/// Upper bound on tracked active clients; more are simply not tracked as
/// active (and so may idle out early) instead of failing the packet path.
const ACTIVE_SET_SIZE: u32 = 65_536;
/// DHCP, DNS and DHCPv6 server ports on the box.
const UDP_SERVICES: [u16; 3] = [53, 67, 547];
/// Set of clients' DNS budgets before sign-in (one token bucket each).
pub const SET_DNS_RATE: &str = "dns_rate";
/// DNS queries a second a client may send before sign-in, and the burst
/// on top: plenty to look names up, too little to tunnel through the
/// box's resolver.
const DNS_RATE: u32 = 20;
const DNS_BURST: u32 = 50;
/// How long a client's bucket outlives its last query.
const DNS_RATE_TIMEOUT_S: u64 = 60;

/// What the ruleset depends on.
#[derive(Debug, Clone)]
pub struct RulesetParams {
    pub lan_interface: String,
    pub portal_port: u16,
    /// The manager dashboard's TCP port: dropped from the guest LAN.
    pub dashboard_port: u16,
    pub walled_garden: Vec<IpNet>,
    /// How long one forwarded packet keeps a client in `active`.
    pub active_window: Duration,
}

/// The whole table, with `grants` as the initial authorised clients.
pub fn document(p: &RulesetParams, grants: &[Grant]) -> Value {
    let (garden4, garden6): (Vec<IpNet>, Vec<IpNet>) = IpNet::aggregate(&p.walled_garden)
        .into_iter()
        .partition(|n| matches!(n, IpNet::V4(_)));
    let table = json!({"family": FAMILY, "name": TABLE});
    let mut cmds = vec![
        json!({"add": {"table": table}}),
        json!({"delete": {"table": table}}),
        json!({"add": {"table": table}}),
        set(SET_ALLOWED, "ether_addr", json!(["timeout"]), None),
        set(
            SET_ACTIVE,
            "ether_addr",
            json!(["timeout"]),
            Some(p.active_window.as_secs().max(1)),
        ),
        set(
            SET_DNS_RATE,
            "ether_addr",
            json!(["timeout"]),
            Some(DNS_RATE_TIMEOUT_S),
        ),
        set("garden4", "ipv4_addr", json!(["interval"]), None),
        set("garden6", "ipv6_addr", json!(["interval"]), None),
    ];
    if !grants.is_empty() {
        let elems: Vec<Value> = grants
            .iter()
            .map(|g| json!({"elem": {"val": g.mac.to_string(), "timeout": ttl_secs(g.ttl)}}))
            .collect();
        cmds.push(elements(SET_ALLOWED, elems));
    }
    for (name, nets) in [("garden4", &garden4), ("garden6", &garden6)] {
        if !nets.is_empty() {
            let elems = nets
                .iter()
                .map(|n| json!({"prefix": {"addr": n.addr().to_string(), "len": n.prefix_len()}}))
                .collect();
            cmds.push(elements(name, elems));
        }
    }

    let lan = || json!({"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": p.lan_interface}});
    let ether_saddr = json!({"payload": {"protocol": "ether", "field": "saddr"}});
    let authorised =
        || json!({"match": {"op": "==", "left": ether_saddr, "right": format!("@{SET_ALLOWED}")}});
    let daddr_in = |proto: &str, set: &str| json!({"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "daddr"}}, "right": format!("@{set}")}});
    let tcp_dport = |port: Value| json!({"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": port}});
    let accept = json!({"accept": null});
    let drop = json!({"drop": null});
    let reset = json!({"reject": {"type": "tcp reset"}});
    let ret = json!({"return": null});

    cmds.push(chain("portal_nat", "nat", "prerouting", -100));
    cmds.push(rule("portal_nat", vec![lan(), authorised(), ret.clone()]));
    cmds.push(rule(
        "portal_nat",
        vec![lan(), daddr_in("ip", "garden4"), ret.clone()],
    ));
    cmds.push(rule(
        "portal_nat",
        vec![lan(), daddr_in("ip6", "garden6"), ret],
    ));
    cmds.push(rule(
        "portal_nat",
        vec![
            lan(),
            tcp_dport(json!(80)),
            json!({"redirect": {"port": p.portal_port}}),
        ],
    ));

    cmds.push(chain("forward", "filter", "forward", -5));
    // Only traffic routed off the LAN counts as activity: where the kernel
    // passes bridged frames through this hook (br_netfilter), a phone's
    // multicast chatter to its neighbours must not keep it signed in.
    let leaves_lan = json!({"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": p.lan_interface}});
    cmds.push(rule(
        "forward",
        vec![
            lan(),
            leaves_lan,
            authorised(),
            json!({"set": {"op": "update", "elem": ether_saddr, "set": format!("@{SET_ACTIVE}")}}),
            accept.clone(),
        ],
    ));
    cmds.push(rule("forward", vec![lan(), authorised(), accept.clone()]));
    cmds.push(rule(
        "forward",
        vec![lan(), daddr_in("ip", "garden4"), accept.clone()],
    ));
    cmds.push(rule(
        "forward",
        vec![lan(), daddr_in("ip6", "garden6"), accept.clone()],
    ));
    cmds.push(rule(
        "forward",
        vec![lan(), tcp_dport(json!(443)), reset.clone()],
    ));
    cmds.push(rule("forward", vec![lan(), drop.clone()]));

    cmds.push(chain("input", "filter", "input", -5));
    // First, before "established": no guest may reach the manager's
    // dashboard (sign-in guessing, metrics).
    cmds.push(rule(
        "input",
        vec![lan(), tcp_dport(json!(p.dashboard_port)), drop.clone()],
    ));
    // DNS before sign-in: each client's own budget, the excess dropped,
    // so the resolver cannot carry a tunnel to the Internet. Before the
    // "established" rule: a tunnel's queries share one conntrack flow.
    cmds.push(rule(
        "input",
        vec![
            lan(),
            json!({"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": {"set": ["udp", "tcp"]}}}),
            json!({"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": 53}}),
            json!({"match": {"op": "!=", "left": ether_saddr, "right": format!("@{SET_ALLOWED}")}}),
            json!({"set": {"op": "update", "elem": ether_saddr, "set": format!("@{SET_DNS_RATE}"), "stmt": [
                {"limit": {"rate": DNS_RATE, "per": "second", "burst": DNS_BURST, "inv": true}}
            ]}}),
            drop.clone(),
        ],
    ));
    cmds.push(rule(
        "input",
        vec![
            lan(),
            json!({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}),
            accept.clone(),
        ],
    ));
    cmds.push(rule(
        "input",
        vec![
            lan(),
            json!({"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": {"set": UDP_SERVICES}}}),
            accept.clone(),
        ],
    ));
    cmds.push(rule(
        "input",
        vec![
            lan(),
            json!({"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": {"set": ["icmp", "ipv6-icmp"]}}}),
            accept.clone(),
        ],
    ));
    cmds.push(rule(
        "input",
        vec![
            lan(),
            tcp_dport(json!({"set": [53, p.portal_port]})),
            accept,
        ],
    ));
    // Every other TCP port of the box is refused at once (nothing hangs),
    // signed in or not: SSH, LuCI, the router's own web server are not for
    // guests.
    cmds.push(rule(
        "input",
        vec![
            lan(),
            json!({"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}),
            reset,
        ],
    ));
    cmds.push(rule("input", vec![lan(), drop]));

    json!({"nftables": cmds})
}

/// nftables' JSON takes whole seconds; round up so a grant never ends
/// before its session.
fn ttl_secs(ttl: Duration) -> u64 {
    ttl.as_millis().div_ceil(1000).max(1) as u64
}

fn set(name: &str, ty: &str, flags: Value, timeout: Option<u64>) -> Value {
    let mut s = json!({"family": FAMILY, "table": TABLE, "name": name, "type": ty, "flags": flags});
    if let Some(t) = timeout {
        s["timeout"] = json!(t);
        s["size"] = json!(ACTIVE_SET_SIZE);
    }
    json!({"add": {"set": s}})
}

fn elements(set: &str, elems: Vec<Value>) -> Value {
    json!({"add": {"element": {"family": FAMILY, "table": TABLE, "name": set, "elem": elems}}})
}

fn chain(name: &str, ty: &str, hook: &str, prio: i32) -> Value {
    json!({"add": {"chain": {
        "family": FAMILY, "table": TABLE, "name": name,
        "type": ty, "hook": hook, "prio": prio, "policy": "accept"
    }}})
}

fn rule(chain: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": {"family": FAMILY, "table": TABLE, "chain": chain, "expr": expr}}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mac::MacAddr;

    fn params() -> RulesetParams {
        RulesetParams {
            lan_interface: "br-lan".into(),
            portal_port: 2050,
            dashboard_port: 8443,
            walled_garden: vec![
                "203.0.113.0/24".parse().unwrap(),
                "203.0.113.7/32".parse().unwrap(),
                "2001:db8::/48".parse().unwrap(),
            ],
            active_window: Duration::from_secs(30),
        }
    }

    fn commands(doc: &Value) -> &Vec<Value> {
        doc["nftables"].as_array().unwrap()
    }

    #[test]
    fn replaces_the_table_in_one_transaction() {
        let doc = document(&params(), &[]);
        let cmds = commands(&doc);
        assert!(cmds[0]["add"]["table"].is_object());
        assert!(cmds[1]["delete"]["table"].is_object());
        assert!(cmds[2]["add"]["table"].is_object());
        assert_eq!(cmds[1]["delete"]["table"]["name"], TABLE);
    }

    #[test]
    fn grants_become_elements_with_rounded_up_timeouts() {
        let a = MacAddr([2, 0, 0, 0, 0, 1]);
        let b = MacAddr([2, 0, 0, 0, 0, 2]);
        let doc = document(
            &params(),
            &[
                Grant {
                    mac: a,
                    ttl: Duration::from_millis(3_600_001),
                },
                Grant {
                    mac: b,
                    ttl: Duration::ZERO,
                },
            ],
        );
        let elems = commands(&doc)
            .iter()
            .find(|c| c["add"]["element"]["name"] == SET_ALLOWED)
            .expect("allowed elements")["add"]["element"]["elem"]
            .clone();
        assert_eq!(elems[0]["elem"]["val"], "02:00:00:00:00:01");
        assert_eq!(elems[0]["elem"]["timeout"], 3601);
        assert_eq!(elems[1]["elem"]["timeout"], 1);
    }

    #[test]
    fn walled_garden_is_merged_and_split_by_family() {
        let doc = document(&params(), &[]);
        let garden = |name: &str| {
            commands(&doc)
                .iter()
                .find(|c| c["add"]["element"]["name"] == name)
                .map(|c| c["add"]["element"]["elem"].clone())
        };
        let g4 = garden("garden4").unwrap();
        assert_eq!(
            g4.as_array().unwrap().len(),
            1,
            "overlapping nets merged: {g4}"
        );
        assert_eq!(g4[0]["prefix"]["addr"], "203.0.113.0");
        assert_eq!(garden("garden6").unwrap()[0]["prefix"]["len"], 48);
        let empty = document(
            &RulesetParams {
                walled_garden: vec![],
                ..params()
            },
            &[],
        );
        assert!(!empty.to_string().contains("\"element\""));
    }

    #[test]
    fn redirect_and_input_use_the_portal_port() {
        let doc = document(
            &RulesetParams {
                portal_port: 8081,
                ..params()
            },
            &[],
        )
        .to_string();
        assert!(doc.contains(r#"{"redirect":{"port":8081}}"#), "{doc}");
        assert!(doc.contains(r#""right":{"set":[53,8081]}"#), "{doc}");
        assert!(!doc.contains("2050"));
    }

    fn input_rules(doc: &Value) -> Vec<&Value> {
        commands(doc)
            .iter()
            .filter_map(|c| c["add"].get("rule"))
            .filter(|r| r["chain"] == "input")
            .collect()
    }

    #[test]
    fn guests_cannot_reach_the_dashboard_port() {
        let doc = document(
            &RulesetParams {
                dashboard_port: 9443,
                ..params()
            },
            &[],
        );
        let input = input_rules(&doc);
        let first = input[0];
        assert_eq!(first["expr"][0]["match"]["right"], "br-lan", "{first}");
        assert_eq!(
            first["expr"][1]["match"]["left"]["payload"],
            json!({"protocol": "tcp", "field": "dport"}),
            "{first}"
        );
        assert_eq!(first["expr"][1]["match"]["right"], 9443, "{first}");
        assert!(first["expr"][2].get("drop").is_some(), "{first}");
        // It comes before anything that accepts (established traffic).
        let accepts: Vec<usize> = input
            .iter()
            .enumerate()
            .filter(|(_, r)| r.to_string().contains(r#""accept""#))
            .map(|(i, _)| i)
            .collect();
        assert!(
            !accepts.is_empty() && accepts.iter().all(|&i| i > 0),
            "{input:?}"
        );
        let drops = input
            .iter()
            .filter(|r| r.to_string().contains(r#""right":9443"#))
            .count();
        assert_eq!(drops, 1);
    }

    #[test]
    fn dns_before_sign_in_has_a_per_client_budget() {
        let doc = document(&params(), &[]);
        let input = input_rules(&doc);
        let limited: Vec<&&Value> = input
            .iter()
            .filter(|r| r.to_string().contains(&format!("@{SET_DNS_RATE}")))
            .collect();
        assert_eq!(limited.len(), 1, "{input:?}");
        let r = limited[0].to_string();
        assert!(
            r.contains(r#""inv":true"#) && r.contains(r#""rate":20"#),
            "{r}"
        );
        assert!(r.contains(r#""drop""#), "{r}");
        // Only before sign-in: signed-in clients are not in its way.
        let not_allowed = &limited[0]["expr"][3]["match"];
        assert_eq!(not_allowed["op"], "!=", "{r}");
        assert_eq!(not_allowed["right"], format!("@{SET_ALLOWED}"), "{r}");
        // It comes before the rule that accepts DNS.
        let at = |needle: &str| input.iter().position(|r| r.to_string().contains(needle));
        assert!(at(SET_DNS_RATE) < at("547"), "{input:?}");
        let set = commands(&doc)
            .iter()
            .find(|c| c["add"]["set"]["name"] == SET_DNS_RATE)
            .expect("the dns_rate set");
        assert_eq!(set["add"]["set"]["timeout"], 60);
    }

    #[test]
    fn signing_in_opens_no_service_of_the_box() {
        let doc = document(&params(), &[]);
        let input = input_rules(&doc);
        // No input rule lets the authorised set through: a signed-in
        // guest reaches the box's services exactly as far as one who is
        // not (the set only exempts it from the DNS budget).
        assert!(
            input.iter().all(|r| {
                let r = r.to_string();
                !(r.contains(&format!("@{SET_ALLOWED}")) && r.contains(r#""accept""#))
            }),
            "{input:?}"
        );
        // Past the few services, TCP is reset and the rest dropped.
        let n = input.len();
        assert!(
            input[n - 2].to_string().contains("tcp reset"),
            "{}",
            input[n - 2]
        );
        assert!(
            input[n - 2].to_string().contains(r#""right":"tcp""#),
            "{}",
            input[n - 2]
        );
        assert!(
            input[n - 1]["expr"][1].get("drop").is_some(),
            "{}",
            input[n - 1]
        );
    }

    #[test]
    fn every_lan_rule_names_the_interface_first() {
        let doc = document(&params(), &[]);
        for c in commands(&doc) {
            if let Some(rule) = c["add"].get("rule") {
                assert_eq!(rule["expr"][0]["match"]["right"], "br-lan", "{rule}");
            }
        }
    }

    #[test]
    fn only_traffic_leaving_the_lan_refreshes_activity() {
        let doc = document(&params(), &[]);
        let updates: Vec<&Value> = commands(&doc)
            .iter()
            .filter_map(|c| c["add"].get("rule"))
            .filter(|r| r.to_string().contains(&format!(r#""set":"@{SET_ACTIVE}""#)))
            .collect();
        assert_eq!(updates.len(), 1, "{updates:?}");
        let m = &updates[0]["expr"][1]["match"];
        assert_eq!(m["left"]["meta"]["key"], "oifname", "{m}");
        assert_eq!(m["op"], "!=");
        assert_eq!(m["right"], "br-lan");
        let active = commands(&doc)
            .iter()
            .find(|c| c["add"]["set"]["name"] == SET_ACTIVE)
            .expect("active set");
        assert_eq!(active["add"]["set"]["timeout"], 30);
    }
}
