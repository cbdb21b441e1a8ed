//! The captive portal as a shopper's phone sees it, against the real daemon
//! in the lab (storegate + nftables + dnsmasq + real DHCP clients). Every
//! test builds its own lab, so they run in parallel.
//!
//! * [`probes`]: before sign-in, only DNS, DHCP and the portal work: port-80
//!   HTTP is redirected to the sign-in page (`302`, `no-store`), TCP 443 is
//!   refused at once, everything else is dropped, over IPv4 and IPv6.
//! * [`signin`]: RFC 8908 `/api/captive` reports the state; click-through
//!   sign-in opens the internet for that phone only, and at once; `ctl
//!   deauth` and `/logout` cut a phone off again, `ctl auth` lets one in.
//! * [`timeouts`]: the session timeout cuts a phone off; the idle timeout
//!   follows its traffic.
//! * [`restart`]: authorised sessions survive a graceful restart and a
//!   SIGKILL (traffic keeps flowing while the daemon is dead, and is
//!   enforced again within 1 s of the new process starting).
//! * [`bad_input`]: garbage, oversized headers and bodies get 4xx answers
//!   and the portal keeps serving; bad MACs and bad config keys are named in
//!   the errors.

mod bad_input;
mod probes;
mod restart;
mod signin;
mod timeouts;
