//! The access-summary projection: one [`AccessSummary`] per request, folded from the ledger by
//! [`catch_up`] and read a period at a time by [`read_page`], so that reports and the dashboard
//! read a period's accesses instead of refolding every event (most of which are statements).
//!
//! The projection is derived and rebuildable: its cursor says how far into the ledger it has
//! folded, and every reader catches it up first, so what it returns is as current as the
//! ledger. Any number of followers may catch it up at once (the server's, a CLI's): the cursor
//! moves by compare-and-set, and a follower that loses the race folds again from where the
//! winner stopped.

use std::collections::HashSet;

use latch_core::{EventKind, Timestamp};
use latch_report::{AccessFold, AccessSummary, Lookup, lookup, row_key};
use latch_store::{ReportLines, Store, StoreError, SummaryPosition, SummaryRange, SummaryRecord};

/// Events folded per transaction of the projection.
const FOLD_PAGE: u32 = 5000;

/// Folds every event the projection has not yet seen; returns the `seq` it has folded up to.
///
/// It stops at the head of the ledger as it finds it, and does not chase events appended while
/// it folds (the next catch-up folds them): under a steady stream of statements, chasing made
/// the server's follower fold a commit's worth of events at a time, hundreds of transactions a
/// second, each with its own fsync, instead of one pass a second.
pub async fn catch_up(store: &dyn Store) -> Result<u64, StoreError> {
    catch_up_with(store, FOLD_PAGE).await
}

/// [`catch_up`] in pages of `page` events.
pub async fn catch_up_with(store: &dyn Store, page: u32) -> Result<u64, StoreError> {
    loop {
        let from = store.summary_cursor().await?;
        let events = store.events(from, page).await?;
        let Some(last) = events.last() else {
            return Ok(from);
        };
        let to = last.event.seq;

        // What the page's events need that the page does not start itself.
        let mut created: HashSet<&str> = HashSet::new();
        let mut started: HashSet<&str> = HashSet::new();
        let mut keys: HashSet<&str> = HashSet::new();
        let mut sessions: HashSet<&str> = HashSet::new();
        for entry in &events {
            let event = &entry.event.event;
            match &event.kind {
                EventKind::RequestCreated { .. } => {
                    created.insert(row_key(&event.subject));
                }
                EventKind::SessionStarted { .. } => {
                    started.insert(event.subject.as_str());
                }
                _ => {}
            }
            match lookup(event) {
                Lookup::Key(key) if !created.contains(key) => {
                    keys.insert(key);
                }
                Lookup::Session(id) if !started.contains(id) => {
                    sessions.insert(id);
                }
                _ => {}
            }
        }
        let mut fold = AccessFold::new();
        let mut keys: Vec<String> = keys.into_iter().map(str::to_owned).collect();
        if !sessions.is_empty() {
            let ids: Vec<String> = sessions.into_iter().map(str::to_owned).collect();
            for (session, key) in store.summary_sessions(&ids).await? {
                keys.push(key.clone());
                fold.load_session(session, key);
            }
        }
        for record in store.summaries_by_key(&keys).await? {
            fold.load(decode(&record)?);
        }
        for entry in &events {
            fold.observe(&entry.event);
        }
        let (changed, learnt) = fold.take_changed();
        let records = changed.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        // `false`: another follower folded these events first; go on from where it stopped.
        let saved = store.save_summaries(from, to, &records, &learnt).await?;
        // A short page is the head of the ledger as it was when read.
        if saved && events.len() < page as usize {
            return Ok(to);
        }
    }
}

fn encode(summary: &AccessSummary) -> Result<SummaryRecord, StoreError> {
    let mut csv = String::new();
    latch_report::csv_row(&mut csv, &summary.row);
    Ok(SummaryRecord {
        csv,
        key: summary.key().to_owned(),
        created_seq: summary.created_seq,
        requested_at: summary.row.requested_at,
        requester: summary.row.requester.clone(),
        resource: summary.row.resource.clone(),
        body: postcard::to_stdvec(summary)
            .map_err(|err| StoreError::Database(format!("cannot encode a summary: {err}")))?,
    })
}

fn decode(record: &SummaryRecord) -> Result<AccessSummary, StoreError> {
    postcard::from_bytes(&record.body).map_err(|err| {
        StoreError::Corrupt(format!(
            "the access summary of `req_{}` does not decode: {err}",
            record.key
        ))
    })
}

/// The range of a report's or the dashboard's filters: requests created in `[from, to)`, on
/// `resource` if given, by a member of `team` and by `principal` if given.
pub fn range(
    from: Timestamp,
    to: Timestamp,
    resource: Option<&str>,
    team: Option<&std::collections::BTreeSet<String>>,
    principal: Option<&str>,
) -> SummaryRange {
    let requesters = match (team, principal) {
        (None, None) => None,
        (Some(members), None) => Some(members.iter().cloned().collect()),
        // A principal outside the team: nobody.
        (team, Some(who)) => Some(if team.is_none_or(|members| members.contains(who)) {
            vec![who.to_owned()]
        } else {
            Vec::new()
        }),
    };
    SummaryRange {
        from,
        to,
        resource: resource.map(str::to_owned),
        requesters,
    }
}

/// Where the page after `records` (read with `limit`) starts; `None` when it was the last.
fn next_page(records: &[SummaryRecord], limit: u32) -> Option<SummaryPosition> {
    match records.last() {
        Some(last) if records.len() >= limit as usize => Some(last.position()),
        _ => None,
    }
}

/// Accesses per page of [`read_page`] by default.
pub const READ_PAGE: u32 = 5000;

/// A page of the accesses `range` selects, after `after`, with where the next page starts
/// (`None` once the range is exhausted). Catch the projection up first ([`catch_up`]) for
/// accesses as current as the ledger.
pub async fn read_page(
    store: &dyn Store,
    range: &SummaryRange,
    after: Option<SummaryPosition>,
    limit: u32,
) -> Result<(Vec<AccessSummary>, Option<SummaryPosition>), StoreError> {
    let records = store.summaries_page(range, after, limit).await?;
    let next = next_page(&records, limit);
    // Decoding costs more than reading: off the async workers, and beside the next read.
    let summaries = tokio::task::spawn_blocking(move || {
        records.iter().map(decode).collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|err| StoreError::Database(format!("decoding summaries failed: {err}")))??;
    Ok((summaries, next))
}

/// Every access `range` selects, caught up first, in memory. The dashboard's figures use
/// [`consume`] instead, which holds a page at a time.
pub async fn read_all(
    store: &dyn Store,
    range: &SummaryRange,
) -> Result<Vec<AccessSummary>, StoreError> {
    consume(store, range, |accesses| accesses.collect()).await?
}

/// Pages read ahead of the consumer of [`consume`].
const PAGES_AHEAD: usize = 2;

/// Hands every access `range` selects (caught up first) to `consumer`, as an iterator, on a
/// blocking thread, and returns what it returns. The next page is read while the consumer
/// decodes and folds the one before, so the read and the figures of a quarter of a million
/// accesses take the two cores of a small machine; memory holds a few pages. A consumer may
/// stop early: the reading stops with it.
pub async fn consume<T, C>(
    store: &dyn Store,
    range: &SummaryRange,
    consumer: C,
) -> Result<T, StoreError>
where
    T: Send + 'static,
    C: FnOnce(&mut Accesses) -> T + Send + 'static,
{
    catch_up(store).await?;
    let (pages, receiver) = tokio::sync::mpsc::channel(PAGES_AHEAD);
    let consuming = tokio::task::spawn_blocking(move || {
        consumer(&mut Accesses {
            pages: receiver,
            page: Vec::new().into_iter(),
        })
    });
    let reading = async move {
        let mut after = None;
        loop {
            let page = store.summaries_page(range, after, READ_PAGE).await;
            let next = page
                .as_ref()
                .ok()
                .and_then(|records| next_page(records, READ_PAGE));
            let failed = page.is_err();
            // A closed channel: the consumer stopped.
            if pages.send(page).await.is_err() || failed {
                return;
            }
            match next {
                Some(next) => after = Some(next),
                None => return,
            }
        }
    };
    let ((), consumed) = tokio::join!(reading, consuming);
    consumed.map_err(|err| StoreError::Database(format!("reading the accesses failed: {err}")))
}

/// The dashboard's analytics of the accesses `range` selects (caught up first) that `filter`
/// admits: [`consume`] feeding a [`latch_analytics::Analyzer`], so the window is folded as it
/// is read, off the async workers.
pub async fn analytics(
    store: &dyn Store,
    range: &SummaryRange,
    catalog: std::sync::Arc<latch_core::Catalog>,
    ticket_patterns: std::collections::BTreeMap<String, latch_core::TicketPattern>,
    filter: latch_analytics::AnalyticsFilter,
    settings: latch_analytics::Settings,
) -> Result<latch_analytics::Analytics, StoreError> {
    consume(store, range, move |accesses| {
        let mut analyzer =
            latch_analytics::Analyzer::new(&catalog, &ticket_patterns, &filter, &settings);
        for access in accesses {
            analyzer.observe(access?);
        }
        Ok(analyzer.finish())
    })
    .await?
}

/// The accesses of [`consume`], decoded as they are taken: a summary that does not decode, or
/// a page the store could not read, is an error item.
pub struct Accesses {
    pages: tokio::sync::mpsc::Receiver<Result<Vec<SummaryRecord>, StoreError>>,
    page: std::vec::IntoIter<SummaryRecord>,
}

impl Iterator for Accesses {
    type Item = Result<AccessSummary, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.page.next() {
                return Some(decode(&record));
            }
            match self.pages.blocking_recv()? {
                Ok(page) => self.page = page.into_iter(),
                Err(err) => return Some(Err(err)),
            }
        }
    }
}

/// The CSV report of `range` written to `sink` as its lines are read: memory stays flat however
/// long the period. The lines were rendered when the summaries were saved, so this is a read
/// (one query over the whole period) and a write, side by side. Returns the rows written.
/// Caught up first, as [`consume`] is.
pub async fn write_csv(
    store: &dyn Store,
    range: &SummaryRange,
    sink: &mut dyn std::io::Write,
) -> Result<u64, CsvError> {
    catch_up(store).await?;
    let mut header = String::new();
    latch_report::csv_header(&mut header);
    sink.write_all(header.as_bytes())?;
    let (lines, mut received) = tokio::sync::mpsc::channel::<ReportLines>(PAGES_AHEAD);
    let writing = async move {
        let mut rows = 0;
        while let Some(run) = received.recv().await {
            sink.write_all(&run.text)?;
            rows += run.rows;
        }
        // Returning drops the receiver: a failed write stops the reading.
        Ok::<u64, std::io::Error>(rows)
    };
    let (read, written) = tokio::join!(store.summary_lines(range, lines), writing);
    let rows = written?;
    read?;
    Ok(rows)
}

/// Why [`write_csv`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the report: {0}")]
    Write(#[from] std::io::Error),
}
