//! The hostile guest LAN: attacks a guest can make from a phone on the
//! open Wi-Fi, each run against the real daemon in the lab, each with the
//! figure it checks. Every attack must leave the daemon serving.
//!
//! * [`box_services`]: a signed-in guest reaches none of the router's own
//!   services (SSH, the router's web server, the dashboard, any high
//!   port); DNS, DHCP and the portal still work.
//! * [`dns_tunnel`]: before sign-in the box's resolver answers each client
//!   only at a lookup's pace, never a tunnel's.
//! * [`forged_packets`]: raw DHCP and ARP frames naming other devices (a
//!   flood of invented phones, a remembered member's MAC) are not
//!   believed; a real phone joining during the flood is tracked; phones
//!   invented with MACs of their own are taken in only at a shopper's pace.
//! * [`portal_flood`]: one guest opening 2,000 idle connections to the
//!   portal leaves room for another phone's sign-in sheet.

mod box_services;
mod dns_tunnel;
mod forged_packets;
mod portal_flood;
