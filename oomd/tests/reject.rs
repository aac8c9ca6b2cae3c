//! The specification's audit tests (TASK-0228, "Security proof"): forged memstat is ignored,
//! critical services are never killed, kills are rate-limited.
//!
//! This file is compiled twice: here, so that `cargo test -p oomd -- reject` runs it, and in
//! `oomd_host` (through `include!`), so that `cargo test -p oomd_host` runs it too. It uses
//! only the public API of `oomd` and `memstat`.

mod reject {
    use memstat::{Frame, SubjectId, MAX_FRAME_LEN};
    use oomd::{
        Answer, Authority, EventKind, EventTag, Input, InputError, Limits, Payload, Policy,
        Registration, Rejection, SubjectClass, TerminationMode, TerminationRequest, Tick, Watchdog,
    };

    #[derive(Default)]
    struct Requests(Vec<TerminationRequest>);

    impl Authority for Requests {
        fn request_termination(&mut self, request: TerminationRequest) {
            self.0.push(request);
        }
        fn request_reclaim(&mut self, request: oomd::ReclaimRequest) {
            panic!("reclaim is off in these tests: {request:?}");
        }
    }

    struct Names(&'static [&'static str]);

    impl oomd::trace::SubjectNames for Names {
        fn name(&self, id: SubjectId) -> Option<&str> {
            self.0
                .iter()
                .copied()
                .find(|n| SubjectId::from_name(n) == id)
        }
    }

    struct Rig {
        wd: Watchdog<16, 256>,
        authority: Requests,
        now: u64,
    }

    impl Rig {
        /// Soft 1000, hard 2000 bytes; at most 2 kills per 10 ticks.
        fn new() -> Self {
            let policy = Policy {
                limits: Limits {
                    soft_bytes: 1_000,
                    hard_bytes: 2_000,
                    soft_grace_ticks: 0,
                    exit_deadline_ticks: 50,
                },
                kill_budget: 2,
                kill_window_ticks: 10,
                ..Policy::default()
            };
            Rig {
                wd: Watchdog::new(policy).expect("valid policy"),
                authority: Requests::default(),
                now: 0,
            }
        }

        fn feed(&mut self, input: Input) -> Result<(), InputError> {
            self.wd.handle(input, &mut self.authority)
        }

        fn register(&mut self, name: &str, critical: bool) {
            let subject = SubjectId::from_name(name);
            let class = SubjectClass::Standard;
            self.feed(Input::Register(Registration {
                subject,
                class,
                critical,
                reports: true,
            }))
            .expect("registered");
        }

        /// `sender` is who the transport says sent the frame; `claim` is what the bytes say.
        fn frame(
            &mut self,
            sender: &str,
            seq: u64,
            bytes: u64,
            claim: Option<&str>,
        ) -> Result<(), InputError> {
            let frame = Frame {
                seq,
                current_bytes: bytes,
                peak_bytes: bytes,
                claimed_subject: claim.map(SubjectId::from_name),
            };
            let mut buf = [0; MAX_FRAME_LEN];
            let n = frame.encode(&mut buf).expect("encodable");
            let sender = SubjectId::from_name(sender);
            self.feed(Input::Frame {
                sender,
                payload: Payload::new(&buf[..n]),
            })
        }

        fn tick(&mut self) {
            self.now += 1;
            self.feed(Input::Tick(Tick(self.now)))
                .expect("forward tick");
        }

        fn lines(&self, names: &Names) -> Vec<String> {
            self.wd
                .events(0, 256)
                .map(|e| {
                    let mut s = String::new();
                    oomd::trace::write_line(&mut s, &e.kind, names).expect("fmt");
                    s
                })
                .collect()
        }
    }

    #[test]
    fn test_reject_fake_memstat() {
        let mut rig = Rig::new();
        rig.register("app", false);
        rig.register("evil", false);
        rig.frame("app", 1, 100, Some("app"))
            .expect("honest frame accepted");

        // "evil" sends a frame whose bytes claim to come from "app" and report far over hard.
        let spoof = rig.frame("evil", 1, 1 << 40, Some("app"));
        assert_eq!(spoof, Err(InputError::Frame(Rejection::ClaimMismatch)));
        // A sender the authority never spawned is not heard at all.
        let stranger = rig.frame("stranger", 1, 1 << 40, Some("stranger"));
        assert_eq!(stranger, Err(InputError::Frame(Rejection::UnknownSender)));
        for _ in 0..20 {
            rig.tick();
        }

        let app = rig.wd.subject(SubjectId::from_name("app")).expect("app");
        assert_eq!(
            app.reported_bytes,
            Some(100),
            "the forged report changed nothing"
        );
        let evil = rig.wd.subject(SubjectId::from_name("evil")).expect("evil");
        assert_eq!(
            evil.reported_bytes, None,
            "the spoofer's own state is untouched too"
        );
        assert!(rig.authority.0.is_empty(), "no kill from a forged report");
        assert_eq!(rig.wd.counters().rejected(Rejection::ClaimMismatch), 1);
        assert_eq!(rig.wd.counters().rejected(Rejection::UnknownSender), 1);
        assert_eq!(rig.wd.counters().events(EventTag::KillDecided), 0);
        let lines = rig.lines(&Names(&["app", "evil"]));
        assert!(
            lines.contains(&"oomd: frame rejected (sender=evil reason=claim-mismatch)".into()),
            "{lines:#?}"
        );
    }

    #[test]
    fn test_reject_critical_service_kill() {
        let mut rig = Rig::new();
        // samgrd is critical by name even though its registration does not say so;
        // "db" is critical because the manifest says so.
        rig.register("samgrd", false);
        rig.register("db", true);
        rig.frame("samgrd", 1, 50_000, None).expect("accepted");
        rig.frame("db", 1, 60_000, None).expect("accepted");
        for seq in 2..30 {
            rig.tick();
            rig.frame("samgrd", seq, 50_000 + seq, None)
                .expect("accepted");
        }

        assert!(
            rig.authority.0.is_empty(),
            "the authority was asked to end a critical service"
        );
        assert_eq!(
            rig.wd.counters().events(EventTag::KillDenied),
            2,
            "one denial per subject per incident"
        );
        assert_eq!(rig.wd.counters().events(EventTag::KillDecided), 0);
        let lines = rig.lines(&Names(&["samgrd", "db"]));
        assert!(
            lines.contains(&"oomd: kill denied (subject=samgrd reason=critical)".into()),
            "{lines:#?}"
        );
        assert!(
            lines.contains(&"oomd: kill denied (subject=db reason=critical)".into()),
            "{lines:#?}"
        );
    }

    #[test]
    fn test_rate_limit_kills() {
        const HOGS: [&str; 4] = ["hog-a", "hog-b", "hog-c", "hog-d"];
        let mut rig = Rig::new();
        // Each hog crosses hard with its frame: its kill is decided in that input, in input
        // order, while the budget (2 per 10 ticks) lasts; the others are throttled.
        for (i, hog) in HOGS.iter().enumerate() {
            rig.register(hog, false);
            rig.frame(hog, 1, 3_000 + i as u64, None).expect("accepted");
        }
        let first: Vec<SubjectId> = rig.authority.0.iter().map(|r| r.subject).collect();
        assert_eq!(
            first,
            [SubjectId::from_name("hog-a"), SubjectId::from_name("hog-b")]
        );
        assert_eq!(rig.wd.counters().events(EventTag::KillThrottled), 2);

        for r in rig.authority.0.clone() {
            rig.feed(Input::Answer {
                ticket: r.ticket,
                answer: Answer::Accepted,
            })
            .expect("pending");
            rig.feed(Input::Exited(r.subject)).expect("running");
        }
        for _ in 1..=9 {
            rig.tick(); // ticks 1..=9: the window (ticks 0..=9) is spent.
            assert_eq!(
                rig.authority.0.len(),
                2,
                "a kill slipped through at tick {}",
                rig.now
            );
        }
        // Tick 10: tick 0 left the window; the two throttled hogs go now, in the tick's
        // order (largest first).
        rig.tick();
        let all: Vec<SubjectId> = rig.authority.0.iter().map(|r| r.subject).collect();
        assert_eq!(
            all[2..],
            [SubjectId::from_name("hog-d"), SubjectId::from_name("hog-c")]
        );
        assert!(rig
            .authority
            .0
            .iter()
            .all(|r| r.mode == TerminationMode::Graceful));
        assert_eq!(
            rig.wd.counters().events(EventTag::KillThrottled),
            2,
            "throttling is logged once per incident"
        );
        assert!(matches!(
            rig.wd.events(0, 256).find(|e| matches!(e.kind, EventKind::KillThrottled { .. })),
            Some(e) if e.tick == Tick(0)
        ));
    }
}
