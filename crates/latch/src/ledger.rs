//! `latch ledger …`: the public key, export to a bundle and the offline verifier over a store or
//! a bundle (no server needed), and checkpoints and proofs from a server, checked here.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use latch_ledger::{Hash, VerifierKey};
use latch_store::Store;

use latch_api::{CheckpointView, ConsistencyProofView, InclusionProofView, LedgerKey};

use crate::client::Output;
use crate::client::api::Api;
use crate::exit::{Failed, Usage};
use crate::verify::{PreparedRow, Replay, Verifier, parse_hex};

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Print the ledger's verifier key (derived from the signing key the config names).
    PublicKey,
    /// Ask the server to sign a checkpoint now, and print it (auditors and admins).
    Checkpoint,
    /// Prove that an event is in a signed checkpoint, and check the proof here.
    Prove {
        /// The event's sequence number (`latch events` lists them).
        event: u64,
        /// The size of the checkpoint to prove against (default: the latest).
        #[arg(long)]
        checkpoint: Option<u64>,
        /// The verifier key to trust; by default the server's (`latch ledger public-key`).
        #[arg(long)]
        key: Option<String>,
    },
    /// Prove that a later checkpoint extends an earlier one, and check the proof here.
    Consistency {
        #[arg(long)]
        from: u64,
        /// Default: the latest checkpoint.
        #[arg(long)]
        to: Option<u64>,
        #[arg(long)]
        key: Option<String>,
    },
    /// Check a proof saved with `latch ledger prove … --output json` (or `consistency`) using
    /// nothing but the verifier key: no server, no store.
    CheckProof {
        /// The JSON file the proof was saved to.
        file: PathBuf,
        /// The verifier key to trust (`latch ledger public-key`).
        #[arg(long)]
        key: String,
    },
    /// Recompute every leaf and the tree, check every signed checkpoint and that the projections
    /// match a replay; exit 1 naming the first bad index on any edit, deletion, reordering or
    /// insertion. Works offline, over the store the config names or over an exported bundle.
    Verify {
        /// Verify an exported bundle (see `latch ledger export`) instead of the store.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// The verifier key to trust (`latch ledger public-key`); by default the config's
        /// signing key, or the bundle's `public-key.txt`.
        #[arg(long)]
        key: Option<String>,
        /// A signed checkpoint kept outside the store (saved from `latch ledger checkpoint`,
        /// or published): the events must match it too. Repeatable. Guards against an operator
        /// who deletes checkpoints from the store along with the events they cover.
        #[arg(long = "checkpoint", value_name = "FILE")]
        trusted: Vec<PathBuf>,
    },
    /// Write the events (JSONL), the signed checkpoints and the public key to a new directory,
    /// for verification elsewhere with `latch ledger verify --bundle DIR`.
    Export {
        #[arg(long)]
        out: PathBuf,
    },
}

const EVENTS_FILE: &str = "events.jsonl";
const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";
const KEY_FILE: &str = "public-key.txt";

fn config_path(config: Option<&Path>) -> anyhow::Result<&Path> {
    config.ok_or_else(|| {
        Usage("this command needs the config: pass `--config FILE` or set LATCH_CONFIG".into())
            .into()
    })
}

fn load_config(path: &Path) -> anyhow::Result<latch_config::Config> {
    latch_config::load(path).map_err(|err| Failed(err.to_string()).into())
}

fn configured_key(config: &latch_config::Config) -> anyhow::Result<VerifierKey> {
    let path = &config.ledger.signing_key_file;
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the signing key `{}` (it is created by the first `latch serve`)",
            path.display()
        )
    })?;
    let key = latch_ledger::SigningKey::parse(text.trim()).map_err(|err| {
        Failed(format!(
            "`{}` is not a latch signing key: {err}",
            path.display()
        ))
    })?;
    Ok(key.verifier_key())
}

fn parse_key(text: &str) -> anyhow::Result<VerifierKey> {
    VerifierKey::parse(text.trim())
        .map_err(|err| Failed(format!("invalid verifier key `{}`: {err}", text.trim())).into())
}

pub async fn run(
    config: Option<&Path>,
    command: LedgerCommand,
    options: &crate::client::GlobalOptions,
) -> anyhow::Result<()> {
    match command {
        LedgerCommand::Checkpoint => {
            let api = Api::new(&crate::client::target::resolve(options)?)?;
            let checkpoint: CheckpointView = api.post_empty("ledger/checkpoint").await?;
            match options.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&checkpoint)?),
                Output::Table => print!("{}", checkpoint.note),
            }
            Ok(())
        }
        LedgerCommand::Prove {
            event,
            checkpoint,
            key,
        } => {
            let api = Api::new(&crate::client::target::resolve(options)?)?;
            let key = trusted_key(&api, key).await?;
            let mut query = vec![("seq", event.to_string())];
            if let Some(size) = checkpoint {
                query.push(("size", size.to_string()));
            }
            let proof: InclusionProofView = api.get("ledger/inclusion", &query).await?;
            let (opened, _) = check_inclusion(&proof, &key)?;
            let path = &proof.proof;
            match options.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&proof)?),
                Output::Table => println!(
                    "event {event} is in the checkpoint of size {} (root {}), signed by `{key}`: a proof of {} hashes, verified",
                    opened.size,
                    opened.root,
                    path.len()
                ),
            }
            Ok(())
        }
        LedgerCommand::CheckProof { file, key } => {
            let key = parse_key(&key)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read `{}`", file.display()))?;
            if let Ok(proof) = serde_json::from_str::<InclusionProofView>(&text) {
                let (opened, event) = check_inclusion(&proof, &key)?;
                println!(
                    "ok: event {} ({} by {} at {}) is in the checkpoint of size {} signed by `{key}`",
                    proof.seq,
                    event.event.kind.type_name(),
                    event.event.actor,
                    event.event.at,
                    opened.size
                );
                return Ok(());
            }
            let proof: ConsistencyProofView = serde_json::from_str(&text).map_err(|_| {
                Failed(format!("`{}` is neither an inclusion nor a consistency proof from `latch ledger … --output json`", file.display()))
            })?;
            let (old, new) = check_consistency(&proof, &key)?;
            println!(
                "ok: the checkpoint of size {} extends the one of size {}, both signed by `{key}`",
                new.size, old.size
            );
            Ok(())
        }
        LedgerCommand::Consistency { from, to, key } => {
            let api = Api::new(&crate::client::target::resolve(options)?)?;
            let key = trusted_key(&api, key).await?;
            let mut query = vec![("from", from.to_string())];
            if let Some(to) = to {
                query.push(("to", to.to_string()));
            }
            let proof: ConsistencyProofView = api.get("ledger/consistency", &query).await?;
            let (old, new) = check_consistency(&proof, &key)?;
            match options.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&proof)?),
                Output::Table => println!(
                    "the checkpoint of size {} extends the one of size {}: consistency proof verified with `{key}`",
                    new.size, old.size
                ),
            }
            Ok(())
        }
        LedgerCommand::PublicKey => {
            let config = load_config(config_path(config)?)?;
            println!("{}", configured_key(&config)?);
            Ok(())
        }
        LedgerCommand::Export { out } => export(config_path(config)?, &out).await,
        LedgerCommand::Verify {
            bundle: Some(dir),
            key,
            trusted,
        } if crate::evidence::is_pack(&dir) => {
            if !trusted.is_empty() {
                return Err(Usage(
                    "`--checkpoint` applies to ledger exports, not to evidence packs".into(),
                )
                .into());
            }
            let key_file = dir.join(latch_evidence::files::PUBLIC_KEY);
            let key = match key {
                Some(key) => parse_key(&key)?,
                None => {
                    eprintln!(
                        "warning: no --key given: trusting the key the pack names itself; pass the key you obtained independently"
                    );
                    parse_key(
                        &std::fs::read_to_string(&key_file)
                            .with_context(|| format!("cannot read `{}`", key_file.display()))?,
                    )?
                }
            };
            crate::evidence::verify_pack(&dir, &key)
        }
        LedgerCommand::Verify {
            bundle: Some(dir),
            key,
            trusted,
        } => {
            let key = match key {
                Some(key) => parse_key(&key)?,
                None => parse_key(&std::fs::read_to_string(dir.join(KEY_FILE)).with_context(
                    || {
                        format!(
                            "cannot read `{}`: is `{}` a bundle from `latch ledger export`?",
                            dir.join(KEY_FILE).display(),
                            dir.display()
                        )
                    },
                )?)?,
            };
            verify_bundle(&dir, &key, &read_trusted(&trusted, &key)?).await
        }
        LedgerCommand::Verify {
            bundle: None,
            key,
            trusted,
        } => {
            let config = load_config(config_path(config)?)?;
            let key = match key {
                Some(key) => parse_key(&key)?,
                None => configured_key(&config)?,
            };
            verify_store(&config, &key, &read_trusted(&trusted, &key)?).await
        }
    }
}

async fn trusted_key(api: &Api, key: Option<String>) -> anyhow::Result<VerifierKey> {
    match key {
        Some(key) => parse_key(&key),
        None => {
            let published: LedgerKey = api.get("ledger/public-key", &[]).await?;
            parse_key(&published.verifier_key)
        }
    }
}

/// Checks an inclusion proof against its checkpoint with `key`; returns the checkpoint and the
/// proven event.
fn check_inclusion(
    proof: &InclusionProofView,
    key: &VerifierKey,
) -> anyhow::Result<(latch_ledger::Checkpoint, latch_core::StoredEvent)> {
    let opened = open_note(&proof.checkpoint.note, key)?;
    let leaf = latch_ledger::leaf_hash(proof.body.as_bytes());
    latch_ledger::verify_inclusion(
        proof.index,
        opened.size,
        &leaf,
        &hashes(&proof.proof)?,
        &opened.root,
    )
    .map_err(|err| Failed(format!("the proof does not verify: {err}")))?;
    let event = latch_core::StoredEvent::decode(&proof.body)
        .map_err(|err| Failed(format!("the proven event does not decode: {err}")))?;
    if event.seq != proof.seq || proof.index + 1 != proof.seq {
        return Err(Failed(format!(
            "the proof is for event {} at index {}, but its body says event {}",
            proof.seq, proof.index, event.seq
        ))
        .into());
    }
    Ok((opened, event))
}

/// Checks a consistency proof between its two checkpoints with `key`.
fn check_consistency(
    proof: &ConsistencyProofView,
    key: &VerifierKey,
) -> anyhow::Result<(latch_ledger::Checkpoint, latch_ledger::Checkpoint)> {
    let old = open_note(&proof.from.note, key)?;
    let new = open_note(&proof.to.note, key)?;
    latch_ledger::verify_consistency(
        old.size,
        new.size,
        &hashes(&proof.proof)?,
        &old.root,
        &new.root,
    )
    .map_err(|err| Failed(format!("the proof does not verify: {err}")))?;
    Ok((old, new))
}

fn open_note(note: &str, key: &VerifierKey) -> anyhow::Result<latch_ledger::Checkpoint> {
    latch_ledger::open(note, key).map_err(|err| {
        Failed(format!(
            "the checkpoint does not verify with `{key}`: {err}"
        ))
        .into()
    })
}

fn hashes(list: &[String]) -> anyhow::Result<Vec<Hash>> {
    list.iter()
        .map(|hex| {
            parse_hex(hex)
                .ok_or_else(|| Failed(format!("malformed hash `{hex}` in the proof")).into())
        })
        .collect()
}

fn progress(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message("verifying");
    bar
}

fn failed(failure: crate::verify::Failure) -> anyhow::Error {
    Failed(format!("ledger verification failed: {failure}")).into()
}

/// Signed checkpoints the auditor kept, each opened with `key` so a bad file fails here.
fn read_trusted(files: &[PathBuf], key: &VerifierKey) -> anyhow::Result<Vec<(u64, String)>> {
    files
        .iter()
        .map(|file| {
            let note = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read `{}`", file.display()))?;
            let opened = latch_ledger::open(&note, key).map_err(|err| {
                Failed(format!(
                    "`{}` is not a checkpoint signed by `{key}`: {err}",
                    file.display()
                ))
            })?;
            Ok((opened.size, note))
        })
        .collect()
}

/// Events per page read from the store; a page is also the window of projections compared.
const PAGE: usize = 5000;

/// Pages decoded and hashed at once on the blocking pool while the verifier checks the page
/// before them: with the reader's thread, every core has work.
const PREPARING: usize = 2;

/// Pages being prepared ([`crate::verify::prepare_rows`] and the like) on the blocking pool,
/// handed back in order.
#[derive(Default)]
struct Preparing {
    pages: std::collections::VecDeque<tokio::task::JoinHandle<Vec<PreparedRow>>>,
}

impl Preparing {
    fn is_full(&self) -> bool {
        self.pages.len() >= PREPARING
    }

    fn start(&mut self, work: impl FnOnce() -> Vec<PreparedRow> + Send + 'static) {
        self.pages.push_back(tokio::task::spawn_blocking(work));
    }

    /// The oldest page, once prepared; `None` when none is being prepared.
    async fn next(&mut self) -> anyhow::Result<Option<Vec<PreparedRow>>> {
        match self.pages.pop_front() {
            Some(page) => Ok(Some(
                page.await.context("preparing a page of events failed")?,
            )),
            None => Ok(None),
        }
    }
}

async fn verify_store(
    config: &latch_config::Config,
    key: &VerifierKey,
    trusted: &[(u64, String)],
) -> anyhow::Result<()> {
    let store = std::sync::Arc::new(
        crate::admin::open_store(config, latch_store::OpenMode::ReadOnly).await?,
    );
    let mut checkpoints: Vec<(u64, String)> = store
        .checkpoints()
        .await?
        .into_iter()
        .map(|c| (c.size, c.note))
        .collect();
    checkpoints.extend_from_slice(trusted);
    let mut verifier = Verifier::new(&checkpoints, key).map_err(failed)?;
    let total = store.ledger_size().await?;
    let bar = progress(total);
    // The ledger comes first: a projection drift is reported only when the events themselves
    // verify, so the message names the deeper problem.
    let mut replay = Replay::default();
    let mut sessions = crate::verify::SessionReplay::default();
    let mut first_drift: Option<crate::verify::Failure> = None;
    // Three things at once: the rows are read (on a thread of their own), the next pages are
    // decoded and hashed (on the blocking pool), and the page before them is checked here.
    let mut pages = latch_store::raw_event_pages(page_source(config, &store), 0, PAGE);
    let mut preparing = Preparing::default();
    // A read that fails is reported after the pages before it are checked, as when reading
    // one page at a time: damage in those is the first thing wrong.
    let mut read_error = None;
    let mut read_all = false;
    let mut after = 0;
    loop {
        while !read_all && !preparing.is_full() {
            match pages.next().await {
                Some(Ok(rows)) => preparing.start(move || crate::verify::prepare_rows(&rows)),
                Some(Err(err)) => {
                    read_error = Some(err);
                    read_all = true;
                }
                None => read_all = true,
            }
        }
        let Some(page) = preparing.next().await? else {
            break;
        };
        let Some(last) = page.last() else { continue };
        let window = (after, last.stored_seq);
        after = last.stored_seq;
        if first_drift.is_none() {
            replay.expect(store.requests_finished_between(window.0, window.1).await?);
        }
        let count = page.len() as u64;
        for row in page {
            let index = verifier.size();
            // Only the events the replays need were kept (`verify::replayed`).
            let Some(decoded) = verifier
                .push_prepared(row.stored_seq, row.prepared, row.stored_leaf.as_ref())
                .map_err(failed)?
            else {
                continue;
            };
            sessions.push(&decoded);
            if first_drift.is_none()
                && let Err(failure) = replay.push(index, &decoded)
            {
                first_drift = Some(failure);
            }
        }
        if first_drift.is_none()
            && let Err(failure) = replay.end_window()
        {
            first_drift = Some(failure);
        }
        bar.inc(count);
    }
    drop(pages);
    if let Some(err) = read_error {
        return Err(err.into());
    }
    verifier.finish().map_err(failed)?;
    bar.finish_and_clear();
    if first_drift.is_none() {
        let leftovers = replay.leftovers();
        for chunk in leftovers.chunks(crate::verify::COMPARE_BATCH) {
            let ids: Vec<String> = chunk.iter().map(|r| r.id.clone()).collect();
            let projected = store.requests_by_id(&ids).await?;
            if let Err(drift) = crate::verify::compare(chunk, projected) {
                first_drift = Some(drift);
                break;
            }
        }
    }
    if first_drift.is_none()
        && let Some(orphan) = store.orphan_requests(1).await?.pop()
    {
        first_drift = Some(crate::verify::Failure::Drift {
            request: orphan,
            problem: "projected but no event created it".into(),
        });
    }
    if first_drift.is_none() {
        let projected = store
            .sessions(&latch_store::SessionFilter {
                limit: u32::MAX,
                ..latch_store::SessionFilter::default()
            })
            .await?;
        first_drift = sessions.compare(projected).err();
    }
    if first_drift.is_none()
        && let Some((session, problem)) = store.statement_index_drift().await?
    {
        first_drift = Some(crate::verify::Failure::SessionDrift { session, problem });
    }
    if let Some(drift) = first_drift {
        return Err(failed(drift));
    }
    report(
        &verifier,
        key,
        &[&format!(
            "projections ({} requests and their grants, {} gateway sessions and their statements) match a replay of the events",
            replay.requests,
            sessions.len()
        )],
    );
    Ok(())
}

/// Where the bulk read of the events goes: the SQLite file itself, or the store.
fn page_source(
    config: &latch_config::Config,
    store: &std::sync::Arc<latch_store::SqlStore>,
) -> latch_store::PageSource {
    match &config.server.database {
        latch_config::Database::Sqlite { path } => {
            latch_store::PageSource::SqliteFile(path.clone())
        }
        latch_config::Database::Postgres { .. } => latch_store::PageSource::Store(store.clone()),
    }
}

fn report(verifier: &Verifier, key: &VerifierKey, extra: &[&str]) {
    println!(
        "ledger ok: {} events, tree size {}, root {}",
        verifier.size(),
        verifier.size(),
        verifier.root()
    );
    println!(
        "  - every event decodes, is canonical and sits at its own index (no gap, insertion or reordering)"
    );
    println!("  - every leaf and the tree recomputed (RFC 6962, SHA-256)");
    println!(
        "  - {} signed checkpoints verified with key `{}` and consistent with the events and each other",
        verifier.checkpoints_checked, key
    );
    for line in extra {
        println!("  - {line}");
    }
    if verifier.uncovered() > 0 {
        println!(
            "  ! the last {} events are not covered by a signed checkpoint yet (they are protected \
             once the next checkpoint is signed; keep checkpoints outside the store and pass them \
             with --checkpoint to guard against deleted checkpoints)",
            verifier.uncovered()
        );
    }
}

async fn verify_bundle(
    dir: &Path,
    key: &VerifierKey,
    trusted: &[(u64, String)],
) -> anyhow::Result<()> {
    let checkpoints_path = dir.join(CHECKPOINTS_FILE);
    let text = std::fs::read_to_string(&checkpoints_path)
        .with_context(|| format!("cannot read `{}`", checkpoints_path.display()))?;
    let mut checkpoints = Vec::new();
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let entry: serde_json::Value = serde_json::from_str(line).map_err(|err| {
            Failed(format!(
                "{}:{}: not JSON: {err}",
                checkpoints_path.display(),
                line_no + 1
            ))
        })?;
        let size = entry["size"].as_u64();
        let note = entry["note"].as_str();
        match (size, note) {
            (Some(size), Some(note)) => checkpoints.push((size, note.to_owned())),
            _ => {
                return Err(Failed(format!(
                    "{}:{}: expected {{\"size\": N, \"note\": \"…\"}}",
                    checkpoints_path.display(),
                    line_no + 1
                ))
                .into());
            }
        }
    }
    checkpoints.extend_from_slice(trusted);
    let mut verifier = Verifier::new(&checkpoints, key).map_err(failed)?;
    let events_path = dir.join(EVENTS_FILE);
    let file = std::fs::File::open(&events_path)
        .with_context(|| format!("cannot read `{}`", events_path.display()))?;
    let total = std::io::BufReader::new(std::fs::File::open(&events_path)?)
        .lines()
        .count() as u64;
    let bar = progress(total);
    let mut lines = std::io::BufReader::new(file).lines();
    let mut preparing = Preparing::default();
    // As in `verify_store`: a line that cannot be read is reported after the lines before it.
    let mut read_error = None;
    let mut read_all = false;
    let mut line_no = 0u64;
    loop {
        while !read_all && !preparing.is_full() {
            let mut page = Vec::with_capacity(PAGE);
            for line in lines.by_ref().take(PAGE) {
                match line {
                    Ok(line) => page.push(line),
                    Err(err) => {
                        read_error = Some(err);
                        break;
                    }
                }
            }
            read_all = page.len() < PAGE;
            if !page.is_empty() {
                let first = line_no;
                line_no += page.len() as u64;
                preparing.start(move || crate::verify::prepare_lines(first, page));
            }
        }
        let Some(page) = preparing.next().await? else {
            break;
        };
        let count = page.len() as u64;
        for row in page {
            verifier
                .push_prepared(row.stored_seq, row.prepared, None)
                .map_err(failed)?;
        }
        bar.inc(count);
    }
    if let Some(err) = read_error {
        return Err(err).with_context(|| format!("cannot read `{}`", events_path.display()));
    }
    verifier.finish().map_err(failed)?;
    bar.finish_and_clear();
    report(&verifier, key, &[]);
    Ok(())
}

async fn export(config_path: &Path, out: &Path) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Failed(format!(
            "`{}` exists and is not empty: export into a new directory",
            out.display()
        ))
        .into());
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    let key = configured_key(&config)?;
    let store = std::sync::Arc::new(
        crate::admin::open_store(&config, latch_store::OpenMode::ReadOnly).await?,
    );
    let mut events = std::io::BufWriter::new(std::fs::File::create(out.join(EVENTS_FILE))?);
    let total = store.ledger_size().await?;
    let bar = progress(total);
    bar.set_message("exporting");
    let mut pages = latch_store::raw_event_pages(page_source(&config, &store), 0, PAGE);
    while let Some(page) = pages.next().await {
        let page = page?;
        for event in page.iter() {
            // Canonical JSON has no raw newlines (they are escaped), so one event is one line.
            writeln!(events, "{}", event.body)?;
        }
        bar.inc(page.len() as u64);
    }
    events.flush()?;
    bar.finish_and_clear();
    let mut checkpoints =
        std::io::BufWriter::new(std::fs::File::create(out.join(CHECKPOINTS_FILE))?);
    let stored = store.checkpoints().await?;
    for checkpoint in &stored {
        writeln!(
            checkpoints,
            "{}",
            serde_json::json!({"size": checkpoint.size, "note": checkpoint.note})
        )?;
    }
    checkpoints.flush()?;
    std::fs::write(out.join(KEY_FILE), format!("{key}\n"))?;
    std::fs::write(
        out.join("README.txt"),
        format!(
            "latch ledger export\n\n{EVENTS_FILE}: every event, in order, one canonical JSON document per line (the Merkle leaves)\n\
             {CHECKPOINTS_FILE}: the signed checkpoints (C2SP signed notes)\n{KEY_FILE}: the verifier key\n\n\
             Verify offline, trusting a key you obtained independently:\n  latch ledger verify --bundle . --key '{key}'\n"
        ),
    )?;
    println!(
        "exported {total} events and {} checkpoints to {}",
        stored.len(),
        out.display()
    );
    Ok(())
}
