//! The live view's data and its publisher. `snapshot` reads the presence
//! machine; `Live::refresh` publishes a snapshot when it differs from the
//! last one; `run` refreshes every [`POLL_EVERY`] while an event stream is
//! open, so a join or a leave reaches every open page within a second, an
//! idle store sends nothing, and with no one watching the presence lock is
//! left alone. Pages, `/api/live` and `/metrics` take a snapshot when
//! theirs is older than they accept (`Live::fresh`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

use crate::presence::PresenceShell;
use crate::presence::local::{days_before, local_date};
use crate::presence::{Classification, DwellBuckets, VisitFrequency};
use crate::time::Timestamp;
use crate::uplink::event::RecognisedBy;

/// Event streams open at once; more get `503`.
pub const MAX_SSE_CLIENTS: usize = 32;
/// How often the presence machine is looked at.
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// Arrivals shown in the feed.
pub const FEED_LEN: usize = 20;

/// One arrival in the feed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Arrival {
    pub started_at: String,
    /// `HH:MM`, store time.
    pub local_time: String,
    pub member_id: Option<String>,
    /// How the member was recognised: `"wifi_key"` or `"mac"`.
    pub recognised_by: Option<&'static str>,
    pub hostname: Option<String>,
    pub os_family: String,
    pub returning: bool,
    /// Still in the store.
    pub present: bool,
}

/// What the live view shows.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct LiveData {
    pub present_now: u32,
    pub members_present: u32,
    pub today: String,
    pub arrivals_today: u32,
    pub arrivals_by_hour: Vec<u32>,
    /// The same weekday a week ago.
    pub last_week: String,
    pub last_week_by_hour: Vec<u32>,
    pub new_devices: u32,
    pub returning_devices: u32,
    pub dwell: DwellBuckets,
    pub visit_frequency: VisitFrequency,
    /// Today's arrivals: members first, then the rest; newest first.
    pub feed: Vec<Arrival>,
}

/// The live view as of `now`.
pub fn snapshot(shell: &PresenceShell, now: Timestamp) -> LiveData {
    take(shell, now).0
}

/// The live view as of `now`, and the number of devices known, read under
/// one hold of the presence lock.
fn take(shell: &PresenceShell, now: Timestamp) -> (LiveData, usize) {
    let m = shell.machine();
    let devices_known = m.devices().count();
    let tz = m.timezone().clone();
    let view = m.footfall(now);
    let today = view.today;
    let week_ago = days_before(today, 7);
    let day = view.days.iter().find(|d| d.date == today);
    let last = view.days.iter().find(|d| d.date == week_ago);
    let members_present = m
        .devices()
        .filter(|d| d.is_present() && d.member_id.is_some() && !m.is_staff(d.mac))
        .count();
    let mut feed: Vec<(bool, Timestamp, Arrival)> = m
        .visits()
        .filter(|v| v.classification == Classification::Visitor)
        .filter(|v| local_date(v.started_at, &tz) == today)
        .map(|v| {
            let device = m.device(v.mac);
            let local = jiff::Timestamp::from_millisecond(v.started_at.millis())
                .map(|t| {
                    t.to_zoned_datetime(tz.clone())
                        .strftime("%H:%M")
                        .to_string()
                })
                .unwrap_or_default();
            (
                v.member_id.is_some(),
                v.started_at,
                Arrival {
                    started_at: v.started_at.rfc3339(),
                    local_time: local,
                    member_id: v.member_id.clone(),
                    recognised_by: shell.recognised_by(v).map(|r| match r {
                        RecognisedBy::WifiKey => "wifi_key",
                        RecognisedBy::Mac => "mac",
                    }),
                    hostname: device.and_then(|d| d.hostname.clone()),
                    os_family: v.os_family.clone(),
                    returning: v.returning,
                    present: v.ended_at.is_none() && device.is_some_and(|d| d.is_present()),
                },
            )
        })
        .collect();
    feed.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    feed.truncate(FEED_LEN);
    let data = LiveData {
        present_now: view.present_now,
        members_present: u32::try_from(members_present).unwrap_or(u32::MAX),
        today: today.to_string(),
        arrivals_today: day.map(|d| d.arrivals).unwrap_or(0),
        arrivals_by_hour: day
            .map(|d| d.arrivals_by_hour.to_vec())
            .unwrap_or(vec![0; 24]),
        last_week: week_ago.to_string(),
        last_week_by_hour: last
            .map(|d| d.arrivals_by_hour.to_vec())
            .unwrap_or(vec![0; 24]),
        new_devices: day.map(|d| d.new_devices).unwrap_or(0),
        returning_devices: day.map(|d| d.returning_devices).unwrap_or(0),
        dwell: day.map(|d| d.dwell).unwrap_or_default(),
        visit_frequency: view.visit_frequency,
        feed: feed.into_iter().map(|(_, _, a)| a).collect(),
    };
    (data, devices_known)
}

/// One published snapshot; `seq` grows with every change.
#[derive(Debug, Default)]
pub struct Published {
    pub seq: u64,
    pub data: LiveData,
}

/// The publisher and the cap on event streams.
pub struct Live {
    tx: watch::Sender<Arc<Published>>,
    pub(crate) streams: Arc<Semaphore>,
    /// When the last snapshot was taken, and the devices known then.
    taken: Mutex<Option<(Instant, usize)>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            tx: watch::Sender::new(Arc::new(Published::default())),
            streams: Arc::new(Semaphore::new(MAX_SSE_CLIENTS)),
            taken: Mutex::new(None),
        }
    }
}

impl Live {
    /// Takes a snapshot; publishes it if it changed. Returns whether it did.
    pub fn refresh(&self, shell: &PresenceShell) -> bool {
        let (data, devices_known) = take(shell, shell.clock().now());
        *self.taken.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), devices_known));
        let current = self.tx.borrow().clone();
        if current.seq > 0 && current.data == data {
            return false;
        }
        self.tx.send_replace(Arc::new(Published {
            seq: current.seq + 1,
            data,
        }));
        true
    }

    /// The published snapshot, taken again first unless it is younger
    /// than `max_age`; and the devices known as of it. Bounds how often
    /// readers take the presence lock, however often they ask.
    pub fn fresh(&self, shell: &PresenceShell, max_age: Duration) -> (Arc<Published>, usize) {
        let taken = *self.taken.lock().unwrap_or_else(|e| e.into_inner());
        let known = match taken {
            Some((at, known)) if at.elapsed() < max_age && self.current().seq > 0 => known,
            _ => {
                self.refresh(shell);
                self.taken
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .map_or(0, |(_, known)| known)
            }
        };
        (self.current(), known)
    }

    pub fn current(&self) -> Arc<Published> {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    /// Event streams open now.
    pub fn streams_open(&self) -> usize {
        MAX_SSE_CLIENTS - self.streams.available_permits()
    }
}

/// Refreshes the snapshot until shutdown, while an event stream is open.
pub async fn run(dashboard: Arc<super::Dashboard>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // No one is watching: leave the presence lock alone. A stream that
        // opens takes its own first snapshot.
        if dashboard.live.streams_open() == 0 {
            continue;
        }
        let d = dashboard.clone();
        // The presence lock can be held by a persisting task: not here.
        let _ = tokio::task::spawn_blocking(move || d.live.refresh(&d.app.presence)).await;
    }
}
