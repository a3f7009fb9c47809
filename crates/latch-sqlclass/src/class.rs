//! The result types: a statement class ordered by severity and a classified query text.

use std::fmt;

/// What a statement does, for enforcement and for the audit record.
///
/// Ordered by severity: `Other < Read < Write < Ddl < Privilege < Unparsed`. A query text holding
/// several statements takes the most severe class of its statements.
///
/// **Invariant:** every statement classed `Other` is harmless to a read-only session; anything
/// that could escape one (a role change, `BEGIN READ WRITE`, `RESET ALL`, …) is `Privilege`,
/// anything opaque (`EXECUTE` of a prepared name) is `Unparsed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatementClass {
    /// Transaction control, ordinary `SET`/`RESET`/`DISCARD`, `LISTEN`, `DEALLOCATE`: changes no
    /// data and no privilege.
    Other,
    /// Reads data or settings: `SELECT`, `VALUES`, `TABLE`, `SHOW`, `COPY … TO STDOUT`, `EXPLAIN`.
    Read,
    /// Changes data, takes row or table locks, or has another side effect outside the session.
    Write,
    /// Changes the schema: `CREATE`, `ALTER`, `DROP` of objects other than roles.
    Ddl,
    /// Changes who may do what, or which role is acting.
    Privilege,
    /// Could not be parsed or its effect cannot be known from its text; enforcement treats it
    /// as the most severe class.
    Unparsed,
}

impl StatementClass {
    /// The lowercase name used in audit records and metrics labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Other => "other",
            Self::Read => "read",
            Self::Write => "write",
            Self::Ddl => "ddl",
            Self::Privilege => "privilege",
            Self::Unparsed => "unparsed",
        }
    }

    /// Whether a session restricted to reading may run a statement of this class.
    ///
    /// True for `Read` and `Other` only; see the invariant on [`StatementClass`].
    pub fn is_read_only(&self) -> bool {
        matches!(self, Self::Read | Self::Other)
    }
}

impl fmt::Display for StatementClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The classification of one query text, which may hold several statements.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Classified {
    /// The most severe class among the statements; `Other` for an empty text.
    pub class: StatementClass,
    /// Tables, views, sequences, functions, schemas and roles the text names, deduplicated and
    /// sorted, qualified as written, unquoted identifiers lowercased and quoted ones kept
    /// quoted when they need it (`public.accounts`, `"Accounts"`). For the audit record, not
    /// for enforcement: a name can be missing (see the crate's known limitations).
    pub objects: Vec<String>,
    /// How many statements the text holds (0 for an empty text or one holding only comments).
    pub statements: usize,
}

impl Classified {
    /// Whether every statement in the text may run in a read-only session: the gate the
    /// gateway applies to enforced read roles.
    pub fn is_read_only(&self) -> bool {
        self.class.is_read_only()
    }
}
