//! One simulated server: its disk, and while its process runs, the driver
//! that ships (`consensus::driver::Driver`) over a simulated transport and
//! its disk, with the tree as its state machine. It starts exactly as the
//! binary does: the tree is recovered from the store
//! (`storage::recovery`, committed entries replayed), the driver's state
//! read from it (`storage::consensus_log`), and a store it must not run on
//! is refused with the driver's reason.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use consensus::driver::{Driver, DriverConfig, DriverFaults};
use consensus::membership::Member;
use storage::recovery::{Replay, recover_with};

use crate::disk::Disk;
use crate::machine::{Machine, Registry, SimWrite};
use crate::net::{Envelope, SimNet};

/// Ticks of an election timeout.
pub const ELECTION_TICKS: usize = 10;

pub type SimDriver = Driver<SimWrite, SimNet, Disk>;

/// A running process.
#[derive(Debug)]
pub struct Running {
    pub driver: SimDriver,
    pub machine: Machine,
}

/// A server's clock. Ticks that reach every server (the common clock)
/// advance each by `speed` quarter ticks: a server whose clock runs fast
/// times out sooner than the others for as long as it runs fast.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Quarter ticks per common tick; 4 is true time.
    pub speed: u64,
    quarters: u64,
}

impl Clock {
    pub const TRUE: Clock = Clock {
        speed: 4,
        quarters: 0,
    };
    /// Half, true (twice as likely: drifts also end), 1.5×, double and
    /// triple speed.
    pub const SPEEDS: [u64; 6] = [2, 4, 4, 6, 8, 12];

    /// Advances by one common tick: how many ticks the server sees.
    pub fn advance(&mut self) -> u64 {
        self.quarters += self.speed;
        let ticks = self.quarters / 4;
        self.quarters %= 4;
        ticks
    }
}

#[derive(Debug)]
pub struct Server {
    pub id: u64,
    /// Its own `server.N` line (its address).
    pub line: Member,
    /// The members its zoo.cfg lists.
    pub configured: Vec<Member>,
    /// What its zoo.cfg said before a fault made it stale (what the
    /// operator puts back).
    pub intended: Vec<Member>,
    /// The id its `myid` says (another server's, for a wrong config).
    pub my_id: u64,
    /// `conclave.join=true` in its zoo.cfg.
    pub join: bool,
    pub disk: Disk,
    pub running: Option<Running>,
    /// Its process was started once: initial members from the beginning,
    /// joiners when a plan first adds them.
    pub started: bool,
    /// Why its last start was refused, until it starts again.
    pub refused: Option<String>,
    /// Paused (SIGSTOP) until this event.
    pub paused_until: Option<u64>,
    pub clock: Clock,
    /// Seeds each start's driver (a restarted process draws anew).
    pub seed: u64,
    /// How many times its process was started.
    pub starts: u64,
}

impl Server {
    pub fn new(line: Member, configured: Vec<Member>, seed: u64) -> Server {
        Server {
            id: line.id,
            my_id: line.id,
            line,
            intended: configured.clone(),
            configured,
            join: false,
            disk: Disk::new(),
            running: None,
            started: false,
            refused: None,
            paused_until: None,
            clock: Clock::TRUE,
            seed,
            starts: 0,
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    pub fn is_paused(&self, now: u64) -> bool {
        self.paused_until.is_some_and(|until| until > now)
    }

    /// Starts the process on its disk, as the binary does; a refusal is
    /// kept as the reason and the process stays down.
    pub fn start(
        &mut self,
        outbox: &Rc<RefCell<Vec<Envelope>>>,
        registry: &Registry,
        clock: &Rc<Cell<i64>>,
        faults: DriverFaults,
    ) -> Result<(), String> {
        self.started = true;
        self.starts += 1;
        self.running = None;
        match self.open(outbox, registry, clock, faults) {
            Ok(running) => {
                self.running = Some(running);
                self.refused = None;
                Ok(())
            }
            Err(e) => {
                self.refused = Some(e.clone());
                Err(e)
            }
        }
    }

    fn open(
        &mut self,
        outbox: &Rc<RefCell<Vec<Envelope>>>,
        registry: &Registry,
        clock: &Rc<Cell<i64>>,
        faults: DriverFaults,
    ) -> Result<Running, String> {
        if self.disk.state().corrupt {
            return Err("the store fails its checksums".into());
        }
        let recovered = recover_with(Box::new(self.disk.clone()), Replay::Committed)
            .map_err(|e| format!("recovering: {e}"))?;
        let stored =
            storage::consensus_log::stored_state(recovered.store.as_ref(), &recovered.tree)
                .map_err(|e| format!("reading the store: {e}"))?;
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let mut config = DriverConfig::new(
            self.my_id,
            self.configured.clone(),
            ELECTION_TICKS,
            self.seed,
        );
        config.join = self.join;
        config.heartbeat_ticks = 2;
        config.status_every_ticks = 5;
        config.reconfig_deadline_ticks = 20 * ELECTION_TICKS as u64;
        config.retained_entries = 40;
        // A byte budget that, depending on the seed, cuts the log shorter
        // than the count (a dozen small entries) or leaves it to the count.
        config.retained_bytes = 2048 << ((self.seed >> 24) % 4);
        // Images in many small chunks, a narrow window and a tight budget
        // (the simulated trees are small), varied by the seed: transfers
        // span many events, so faults land in the middle of them.
        config.snapshot_chunk_bytes = 64 << (self.seed % 5);
        config.snapshot_window_chunks = 1 + (self.seed >> 8) as usize % 4;
        config.snapshot_bytes_per_tick =
            config.snapshot_chunk_bytes as u64 * (1 + (self.seed >> 16) % 4);
        config.faults = faults;
        let net = SimNet::new(self.my_id, outbox.clone());
        let driver =
            Driver::new(config, stored, net, self.disk.clone()).map_err(|e| e.to_string())?;
        let machine = Machine::new(
            self.my_id,
            recovered.tree,
            self.disk.clone(),
            registry.clone(),
            clock.clone(),
        );
        Ok(Running { driver, machine })
    }
}
