//! Connections to execd and oomd, and the waits every behaviour is built from. Every wait
//! has a deadline; none of them sleeps in place of checking a fact.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use memstat::SubjectId;
use oomd::{EventKind, Limits, Policy, PolicyUpdate, SubjectStatus};
use oomd_proto::client::Client;
use oomd_proto::{
    ControlReply, ControlRequest, EventView, ExecdReply, ExecdRequest, ExitStatus, ServiceInfo,
};

/// Where the sockets are and how long a behaviour may take.
#[derive(Debug, Clone)]
pub struct Settings {
    /// execd's control socket.
    pub execd_socket: PathBuf,
    /// oomd's control socket.
    pub oomd_socket: PathBuf,
    /// The longest any single wait may take.
    pub step_timeout: Duration,
    /// The hard limit each hog is given (soft is half of it). A hog injected past it must be
    /// killed; setting it above what a hog can hold makes the kill behaviours fail, which is
    /// how the boot selftest proves it can fail.
    pub hog_hard_bytes: u64,
}

/// An open session with execd and oomd.
#[derive(Debug)]
pub struct Session {
    /// The settings.
    pub settings: Settings,
    execd: Client,
    exits: Client,
    oomd: Client,
    /// Events read so far, in order.
    events: Vec<EventView>,
    /// oomd was restarted under this session (its connection had to be made again): the
    /// events the dead oomd had not shown are lost, and that is expected once.
    oomd_restarted: bool,
    next_event: u64,
    /// Exits reported so far.
    exited: Vec<(SubjectId, ExitStatus)>,
}

/// A step of a behaviour: done, or why it failed.
pub(crate) type Step = Result<(), String>;

fn connect_retrying(path: &std::path::Path, deadline: Instant) -> Result<Client, String> {
    loop {
        match Client::connect(path, Duration::from_millis(500)) {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() >= deadline => return Err(e.to_string()),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

impl Session {
    /// Connects to both services (waiting for their sockets to appear, within the step
    /// timeout) and subscribes to exit notifications.
    pub fn open(settings: Settings) -> Result<Session, String> {
        let deadline = Instant::now() + settings.step_timeout;
        let execd = connect_retrying(&settings.execd_socket, deadline)?;
        let mut exits = connect_retrying(&settings.execd_socket, deadline)?;
        exits.subscribe().map_err(|e| e.to_string())?;
        let oomd = connect_retrying(&settings.oomd_socket, deadline)?;
        Ok(Session {
            settings,
            execd,
            exits,
            oomd,
            events: Vec::new(),
            oomd_restarted: false,
            next_event: 0,
            exited: Vec::new(),
        })
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.settings.step_timeout
    }

    /// One call to oomd. If oomd is not there (it is being restarted by execd), the call is
    /// made again on a new connection, until the step timeout.
    fn oomd_call<T>(
        &mut self,
        call: impl Fn(&mut Client) -> Result<T, oomd_proto::client::ClientError>,
    ) -> Result<T, String> {
        use oomd_proto::client::ClientError;
        let deadline = self.deadline();
        loop {
            match call(&mut self.oomd) {
                Ok(v) => return Ok(v),
                Err(ClientError::NotRunning(..) | ClientError::Wire(_))
                    if Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                    if let Ok(c) =
                        Client::connect(&self.settings.oomd_socket, Duration::from_millis(500))
                    {
                        self.oomd = c;
                        self.oomd_restarted = true;
                    }
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Starts the manifest entry `name`; returns its main pid.
    pub(crate) fn spawn(&mut self, name: &str) -> Result<i32, String> {
        let name = oomd_proto::name(name).map_err(|e| e.to_string())?;
        let replies = self
            .execd
            .execd(&ExecdRequest::Spawn { name: name.clone() })
            .map_err(|e| e.to_string())?;
        match replies.as_slice() {
            [ExecdReply::Spawned { pid, .. }] => Ok(*pid),
            other => Err(format!("execd would not spawn {name}: {other:?}")),
        }
    }

    /// execd's view of one service.
    pub(crate) fn service(&mut self, name: &str) -> Result<ServiceInfo, String> {
        let replies = self
            .execd
            .execd(&ExecdRequest::List)
            .map_err(|e| e.to_string())?;
        replies
            .into_iter()
            .find_map(|r| match r {
                ExecdReply::Service(s) if s.name.as_str() == name => Some(s),
                _ => None,
            })
            .ok_or_else(|| format!("execd does not know {name}"))
    }

    /// oomd's status of `name`, if it knows the service.
    pub(crate) fn status(&mut self, name: &str) -> Result<Option<SubjectStatus>, String> {
        let subjects = self.oomd_call(|c| c.status())?;
        Ok(subjects
            .into_iter()
            .find(|v| v.name.as_str() == name)
            .map(|v| v.status))
    }

    /// Waits until oomd watches `name` as a running subject.
    /// Waits until oomd has accepted a frame of `name`: from then on it is judged on its
    /// reports. (Before its first frame, a service is judged on its kernel figure, which for a
    /// hog is above the small limits the hogs get.)
    pub(crate) fn wait_reporting(&mut self, name: &str) -> Step {
        let deadline = self.deadline();
        loop {
            if self
                .status(name)?
                .is_some_and(|s| s.running && s.reported_bytes.is_some())
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("oomd never accepted a frame of {name}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn wait_watched(&mut self, name: &str) -> Step {
        let deadline = self.deadline();
        loop {
            if self.status(name)?.is_some_and(|s| s.running) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("oomd never registered {name}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn control_done(&mut self, request: ControlRequest) -> Step {
        let replies = self.oomd_call(|c| c.control(&request))?;
        match replies.as_slice() {
            [ControlReply::Done] => Ok(()),
            other => Err(format!("oomd refused {request:?}: {other:?}")),
        }
    }

    /// Gives `name` its own limits.
    pub(crate) fn set_limits(&mut self, name: &str, limits: Limits) -> Step {
        let subject = SubjectId::from_name(name);
        self.control_done(ControlRequest::SetPolicy(PolicyUpdate::SubjectLimits {
            subject,
            limits: Some(limits),
        }))
    }

    /// The global policy.
    pub(crate) fn policy(&mut self) -> Result<Policy, String> {
        let replies = self.oomd_call(|c| c.control(&ControlRequest::GetPolicy))?;
        match replies.as_slice() {
            [ControlReply::Policy(p)] => Ok(*p),
            other => Err(format!("no policy from oomd: {other:?}")),
        }
    }

    /// Replaces the global policy.
    pub(crate) fn set_policy(&mut self, policy: Policy) -> Step {
        self.control_done(ControlRequest::SetPolicy(PolicyUpdate::Global(policy)))
    }

    /// Makes the hog `name` grow by `bytes` (oomd's selftest-only inject). A hog that has
    /// just started may not listen yet: a refused delivery (nothing was delivered) is retried
    /// until the deadline.
    pub(crate) fn inject(&mut self, name: &str, bytes: u64) -> Step {
        let app = oomd_proto::name(name).map_err(|e| e.to_string())?;
        let request = ControlRequest::Inject { app, bytes };
        let deadline = self.deadline();
        loop {
            let replies = self.oomd_call(|c| c.control(&request))?;
            match replies.as_slice() {
                [ControlReply::Done] => return Ok(()),
                [ControlReply::Error(oomd_proto::ControlError::InjectFailed)]
                    if Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return Err(format!("oomd refused {request:?}: {other:?}")),
            }
        }
    }

    /// Reads every new event from oomd into the session's list.
    fn read_events(&mut self) -> Step {
        loop {
            let since = self.next_event;
            let oomd_proto::client::EventPage {
                events, lost, next, ..
            } = self.oomd_call(|c| c.events(since))?;
            if lost > 0 && !core::mem::take(&mut self.oomd_restarted) {
                return Err(format!(
                    "{lost} oomd events were overwritten before they were read"
                ));
            }
            self.next_event = next;
            if events.is_empty() {
                return Ok(());
            }
            self.events.extend(events);
        }
    }

    /// Waits for an event `matches` accepts (also among those already read after `from`);
    /// returns its index in the session's list.
    pub(crate) fn wait_event(
        &mut self,
        from: usize,
        what: &str,
        matches: impl Fn(&EventKind) -> bool,
    ) -> Result<usize, String> {
        let deadline = self.deadline();
        loop {
            if let Some(i) = self
                .events
                .iter()
                .skip(from)
                .position(|e| matches(&e.event.kind))
            {
                return Ok(from + i);
            }
            if Instant::now() >= deadline {
                return Err(format!("no {what} within {:?}", self.settings.step_timeout));
            }
            std::thread::sleep(Duration::from_millis(20));
            self.read_events()?;
        }
    }

    /// Index of the next event to be read: behaviours look for their events from here on.
    pub(crate) fn mark(&mut self) -> Result<usize, String> {
        self.read_events()?;
        Ok(self.events.len())
    }

    /// The events read from index `from` on.
    pub(crate) fn events_since(&self, from: usize) -> &[EventView] {
        &self.events[from.min(self.events.len())..]
    }

    /// Waits for execd's notification that `name` exited.
    pub(crate) fn wait_exit(&mut self, name: &str) -> Result<ExitStatus, String> {
        let subject = SubjectId::from_name(name);
        let deadline = self.deadline();
        loop {
            if let Some((_, status)) = self.exited.iter().find(|(s, _)| *s == subject) {
                return Ok(*status);
            }
            if Instant::now() >= deadline {
                return Err(format!("execd never reported the exit of {name}"));
            }
            match self.exits.recv::<ExecdReply>() {
                Ok(ExecdReply::Exited {
                    subject, status, ..
                }) => self.exited.push((subject, status)),
                Ok(_) => {}
                Err(oomd_proto::client::ClientError::Timeout) => {}
                Err(e) => return Err(format!("execd subscription: {e}")),
            }
        }
    }

    /// Asks execd to end the watchdog (selftest builds of execd only), as a crash would.
    pub(crate) fn end_watchdog(&mut self) -> Step {
        let replies = self
            .execd
            .execd(&ExecdRequest::EndWatchdog)
            .map_err(|e| e.to_string())?;
        match replies.as_slice() {
            [ExecdReply::Terminate(oomd_proto::TerminateOutcome::Accepted)] => Ok(()),
            other => Err(format!("execd would not end the watchdog: {other:?}")),
        }
    }

    /// Forgets earlier exits of `name` (before it is spawned again).
    pub(crate) fn forget_exit(&mut self, name: &str) {
        let subject = SubjectId::from_name(name);
        self.exited.retain(|(s, _)| *s != subject);
    }
}
