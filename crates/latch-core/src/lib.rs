//! latch's domain: the organisation, the access-request lifecycle as a pure state machine, and the
//! events it emits. No IO, no clock, no randomness: time and ids are passed in.

pub mod catalog;
pub mod duration;
pub mod event;
pub mod lifecycle;
pub mod policy;
pub mod ticket;
pub mod time;

pub use catalog::{Catalog, Resource, ResourceKind, ResourceRole, Team, User, UserRole};
pub use duration::AccessDuration;
pub use event::{Actor, Event, EventKind, StoredEvent, UnplacedEncoding};
pub use lifecycle::{AccessRequest, Command, GrantState, Refusal, RefusalKind, RequestState};
pub use ticket::TicketPattern;
pub use time::Timestamp;
