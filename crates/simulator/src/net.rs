//! The simulated network: what the servers' transports send waits here and
//! is delivered one message at a time in an order the seed picks — lost,
//! duplicated, held back, or cut off by a partition (both ways or one way)
//! — always through the real peer encoding (`consensus::wire`), as on a
//! socket.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use consensus::driver::Transport;
use consensus::membership::Member;
use consensus::raft::eraftpb::{Message, MessageType};
use consensus::random::SplitMix;
use consensus::wire::{self, Frame};

/// What travels.
#[derive(Debug, Clone)]
pub enum Body {
    Raft(Box<Message>),
    Notice(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: u64,
    pub to: u64,
    pub body: Body,
    /// Not delivered before this event.
    pub not_before: u64,
}

impl Envelope {
    pub fn is_snapshot(&self) -> bool {
        matches!(&self.body, Body::Raft(m) if m.get_msg_type() == MessageType::MsgSnapshot)
    }

    /// A vote granted (what a server without its state must never send).
    pub fn grants_vote(&self) -> bool {
        matches!(&self.body, Body::Raft(m)
            if matches!(m.get_msg_type(), MessageType::MsgRequestVoteResponse | MessageType::MsgRequestPreVoteResponse)
                && !m.reject)
    }

    /// The envelope after a trip through the peer encoding.
    pub fn through_the_wire(self) -> Result<Envelope, String> {
        let frame = match self.body {
            Body::Raft(m) => Frame::Raft(m),
            Body::Notice(bytes) => Frame::Service(bytes),
        };
        let mut bytes = Vec::new();
        wire::encode_frame(&frame, &mut bytes);
        let body = match wire::decode_frame(&bytes[4..]) {
            Ok(Frame::Raft(m)) => Body::Raft(m),
            Ok(Frame::Service(b)) => Body::Notice(b),
            other => return Err(format!("a message did not survive the wire: {other:?}")),
        };
        Ok(Envelope { body, ..self })
    }
}

/// Everything in flight.
#[derive(Debug, Default)]
pub struct Network {
    pub in_flight: Vec<Envelope>,
    /// Links (from, to) that lose every message: a partition.
    pub cut: BTreeSet<(u64, u64)>,
}

impl Network {
    /// Picks a deliverable envelope (one not held back), if any.
    pub fn take(&mut self, rng: &mut SplitMix, now: u64) -> Option<Envelope> {
        let ready: Vec<usize> = (0..self.in_flight.len())
            .filter(|&i| self.in_flight[i].not_before <= now)
            .collect();
        if ready.is_empty() {
            return None;
        }
        let i = ready[rng.below(ready.len() as u64) as usize];
        Some(self.in_flight.swap_remove(i))
    }

    pub fn is_cut(&self, from: u64, to: u64) -> bool {
        self.cut.contains(&(from, to))
    }
}

/// One server's transport: its sends join the network.
#[derive(Debug, Clone)]
pub struct SimNet {
    pub my_id: u64,
    pub outbox: Rc<RefCell<Vec<Envelope>>>,
    /// Who the driver keeps connections to (a Raft message to anyone else
    /// cannot be sent, as on the server).
    pub members: BTreeMap<u64, Member>,
}

impl SimNet {
    pub fn new(my_id: u64, outbox: Rc<RefCell<Vec<Envelope>>>) -> SimNet {
        SimNet {
            my_id,
            outbox,
            members: BTreeMap::new(),
        }
    }

    fn push(&self, to: u64, body: Body) {
        self.outbox.borrow_mut().push(Envelope {
            from: self.my_id,
            to,
            body,
            not_before: 0,
        });
    }
}

impl Transport for SimNet {
    /// Messages and notices reach anyone: a server that is not a member in
    /// this one's view gets them on the connection it opened (the server's
    /// transport does the same), and only such a server is ever sent to.
    fn send(&mut self, message: Message) -> bool {
        self.push(message.to, Body::Raft(Box::new(message)));
        true
    }

    fn notify(&mut self, to: u64, notice: Vec<u8>) -> bool {
        self.push(to, Body::Notice(notice));
        true
    }

    fn set_members(&mut self, members: &[Member]) {
        self.members = members
            .iter()
            .filter(|m| m.id != self.my_id)
            .map(|m| (m.id, m.clone()))
            .collect();
    }
}
