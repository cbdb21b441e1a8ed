//! What the demo prints once the daemon is ready: the seed and speed,
//! the portal to open, the dashboard and its password (only when the
//! dashboard really listens), the HQ receiver, HQ's page of targeted
//! messages and the control socket.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::sim::DAY_SECS;

/// The phone number the tour suggests (any number of the store's country
/// works: the demo's HQ "texts" the code to the terminal).
pub const TEST_PHONE: &str = "138 0013 8000";

/// What the demo prints once the daemon is ready.
pub(super) struct Banner {
    pub(super) hq_url: String,
    pub(super) hq_page: String,
    pub(super) events_path: PathBuf,
    pub(super) dashboard: SocketAddr,
    pub(super) password_path: PathBuf,
    pub(super) state: PathBuf,
    pub(super) control: PathBuf,
    pub(super) seed: u64,
    pub(super) speed: f64,
}

impl Banner {
    pub(super) async fn print(&self, portal_url: &str) {
        let day = Duration::from_secs_f64(DAY_SECS as f64 / self.speed);
        let mut text = format!(
            "storegate demo: a simulated store (seed {}, speed {}x: a 12-hour day lasts {:.0} s)\n\
             portal:    {portal_url}   (open it: your browser is one of the phones)\n",
            self.seed,
            self.speed,
            day.as_secs_f64(),
        );
        // The dashboard is its own part of the daemon: show it only when
        // it is really there.
        if listening(self.dashboard).await {
            let password = std::fs::read_to_string(&self.password_path).unwrap_or_default();
            text.push_str(&format!(
                "dashboard: https://{}/   (self-signed certificate)\n\
                 password:  {}\n",
                self.dashboard,
                password.trim_end()
            ));
        } else {
            text.push_str("dashboard: not available in this build\n");
        }
        text.push_str(&format!(
            "hq:        {}   (accepted events in {})\n\
             messages:  {}   (HQ's targeted messages as members arrive)\n\
             state:     {}\n\
             control:   storegate ctl -s {} status\n\
             \n\
             A tour:\n\
             \x20 1. The dashboard: five weeks of history behind today (same day last week,\n\
             \x20    returning visitors, how often people come); today fills in hour by hour.\n\
             \x20 2. The portal, as a member: \"Member sign-in\", mobile number {TEST_PHONE}, tick\n\
             \x20    \"Remember this device\" and \"Marketing messages\"; the code is texted here (\"[hq] text to\")\n\
             \x20    and lasts an hour of the store's time: {code_secs:.0} s at this speed.\n\
             \x20 3. Your phone is now a member's: when the store next opens it arrives as one. The\n\
             \x20    dashboard's arrival feed shows it and HQ's message page the offer it sent you.\n\
             \x20    Members' arrivals message HQ all day: see the \"[hq] message to member\" lines.\n\
             Stop with Ctrl-C.\n",
            self.hq_url,
            self.events_path.display(),
            self.hq_page,
            self.state.display(),
            self.control.display(),
            code_secs = 3600.0 / self.speed,
        ));
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// Whether something accepts connections at `addr` (a few tries: the
/// server may start just after the daemon says it is ready).
async fn listening(addr: SocketAddr) -> bool {
    for _ in 0..10 {
        let connect = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
