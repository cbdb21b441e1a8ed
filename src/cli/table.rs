//! What storegate's command line is: its commands, options and help
//! texts, read by `args` (DESIGN.md has the contract).

use super::args::{Cmd, Opt};

/// `--json`, which `ctl` and each of its commands take.
const JSON: Opt = Opt::flag("json", "Print one JSON document instead of a table");
const CTL_PLAIN: &[Opt] = &[JSON];

const fn ctl_command(name: &'static str, about: &'static str) -> Cmd {
    Cmd {
        opts: CTL_PLAIN,
        ..Cmd::new(name, about)
    }
}

const fn with_mac(cmd: Cmd) -> Cmd {
    Cmd {
        args: &[("MAC", "The device's MAC address")],
        ..cmd
    }
}

/// The command line (help texts as `storegate help` prints them).
pub(super) static STOREGATE: Cmd = Cmd {
    subs: &[
        Cmd {
            opts: &[Opt::value("config", "CONFIG", "The config file")
                .short('c')
                .required()],
            ..Cmd::new("run", "Run the daemon")
        },
        Cmd {
            args: &[("FILE", "The config file (TOML)")],
            ..Cmd::new(
                "check-config",
                "Validate a config file: exit 0 if valid, else 1 with the key at fault",
            )
        },
        Cmd {
            args: &[("FILE", "The UCI config file")],
            ..Cmd::new(
                "uci-to-toml",
                "Translate an OpenWrt UCI config (/etc/config/storegate) into TOML on \
                 stdout, validated; exit 1 naming the UCI section and option at fault",
            )
        },
        Cmd {
            opts: &[
                Opt::value("socket", "SOCKET", "The daemon's control socket")
                    .short('s')
                    .default("/run/storegate/control.sock"),
                JSON,
            ],
            subs: &[
                ctl_command("status", "The daemon's state and counters"),
                ctl_command("clients", "Known clients, authorised and not"),
                with_mac(ctl_command("auth", "Authorise a client by MAC")),
                with_mac(ctl_command("deauth", "End a client's session by MAC")),
                ctl_command("devices", "Devices seen on the LAN"),
                ctl_command("visits", "Visits (open ones first)"),
                ctl_command(
                    "footfall",
                    "Footfall: present now, arrivals per hour, dwell, new vs returning",
                ),
                ctl_command("members", "Members"),
                Cmd {
                    args: &[("MEMBER_ID", "The member's id")],
                    ..ctl_command("member-erase", "Erase a member's data from the box")
                },
                Cmd {
                    opts: &[Opt::flag("retry", "Queue the parked events again"), JSON],
                    ..Cmd::new(
                        "dead-letters",
                        "Events HQ refused (parked); with --retry, queue them again",
                    )
                },
                ctl_command(
                    "dashboard-password",
                    "Set the dashboard's manager password, read from stdin (one line)",
                ),
                Cmd {
                    opts: &[
                        Opt::value("ip", "IP", "The address the device asked for"),
                        Opt::value("hostname", "HOSTNAME", "The host name it sent"),
                        JSON,
                    ],
                    ..with_mac(Cmd::new(
                        "observe",
                        "Record a DHCP request from a device by hand, as if captured \
                         (tests, boxes without capture)",
                    ))
                },
                Cmd {
                    opts: &[
                        Opt::value(
                            "limit",
                            "LIMIT",
                            "How many (newest first kept, printed oldest first)",
                        )
                        .default("100"),
                        JSON,
                    ],
                    ..Cmd::new("events", "The newest events waiting for HQ")
                },
            ],
            ..Cmd::new("ctl", "Talk to the running daemon")
        },
        Cmd {
            opts: &[
                Opt::value(
                    "speed",
                    "SPEED",
                    "Simulated seconds per real second (1 to 10000): at 300 a 12-hour \
                     store day lasts 144 s. The daemon runs on the simulated clock: \
                     dwell, arrivals per hour and every time it shows are the store's",
                )
                .default("120"),
                Opt::value(
                    "seed",
                    "SEED",
                    "Seed of the simulation (random if not given)",
                ),
                Opt::value(
                    "state",
                    "DIR",
                    "Keep the state (config, database, HQ events) here; without it a \
                     temporary directory removed at exit",
                ),
                Opt::value(
                    "port-base",
                    "P",
                    "Listen on this port (portal), +1 (dashboard) and +2 (HQ receiver), \
                     on 127.0.0.1; without it, free ports",
                ),
                Opt::flag(
                    "fresh",
                    "Open on today with no past (by default five weeks of history are \
                     played first, in a few seconds)",
                ),
                Opt::value(
                    "date",
                    "YYYY-MM-DD",
                    "The simulated today, YYYY-MM-DD (default: the real date in the \
                     store's time zone)",
                ),
            ],
            ..Cmd::new(
                "demo",
                "A simulated store with no root and no router: the real daemon on \
                 loopback fed by synthetic shoppers, with an in-process HQ receiver. \
                 Prints the portal, dashboard and HQ URLs; Ctrl-C stops it",
            )
        },
        Cmd {
            opts: &[
                Opt::value("listen", "ADDR", "The address and port to listen on"),
                Opt::value(
                    "secret",
                    "SECRET",
                    "The boxes' [hq] secret (whsec_...); or $STOREGATE_HQ_SECRET",
                ),
                Opt::value(
                    "tls-cert",
                    "PEM",
                    "Serve HTTPS: the certificate chain (PEM, leaf first). Needs --tls-key",
                ),
                Opt::value("tls-key", "PEM", "The private key of --tls-cert (PEM)"),
                Opt::value(
                    "client-ca",
                    "PEM",
                    "Require client certificates issued by this CA (PEM; mutual TLS). \
                     Needs --tls-cert and --tls-key",
                ),
                Opt::value(
                    "sync-file",
                    "JSON",
                    "The document to serve at GET …/sync (JSON; read on every request). \
                     Without it: an empty document",
                ),
            ],
            ..Cmd::new(
                "hq-receiver",
                "A reference HQ endpoint for integrators: verifies signatures, \
                 de-duplicates by event id, prints accepted events as JSON lines",
            )
        },
        Cmd {
            hidden: true,
            args: &[("DIR", "The state directory")],
            ..Cmd::new(
                "migrate-state",
                "Move a version 0.1 state directory (sled) into this version's format. \
                 `run` does this by itself on its first start",
            )
        },
    ],
    ..Cmd::new("storegate", "Captive portal and presence for store routers")
};
