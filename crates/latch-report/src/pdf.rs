//! The access rows as a printable PDF (A4): one block per access, in the PDF standard fonts
//! (Helvetica), so the file needs no embedded font and opens in any reader.
//!
//! The standard fonts cover Latin-1 (WinAnsi); a character outside it is shown as `?` and the
//! report says so on its first page. The HTML report shows every character.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

use crate::AccessRow;
use crate::csv::{approvers_text, statements_text};
use crate::html::human_duration;

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const SIZE: f32 = 9.0;
const LEADING: f32 = 12.0;
/// Characters per line: Helvetica averages about half an em, with room to spare.
const WRAP: usize = 105;

/// One line of the document, and whether it heads a block (bold).
struct Line {
    text: String,
    bold: bool,
}

/// Latin-1 bytes of `text` (WinAnsi agrees with Latin-1 on printable characters); `?` for the
/// rest. Returns whether anything was replaced.
fn latin1(text: &str) -> (Vec<u8>, bool) {
    let mut replaced = false;
    let bytes = text
        .chars()
        // Typographic punctuation has a plain equivalent; only what has none is flagged.
        .map(|ch| match ch {
            '\u{2013}' | '\u{2014}' | '\u{2212}' => '-',
            '\u{2018}' | '\u{2019}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            other => other,
        })
        .map(|ch| match u8::try_from(u32::from(ch)) {
            Ok(byte) if byte >= 0x20 && byte != 0x7f && !(0x80..0xa0).contains(&byte) => byte,
            _ => {
                replaced = true;
                b'?'
            }
        })
        .collect();
    (bytes, replaced)
}

/// Breaks `text` into lines of at most [`WRAP`] characters, at spaces where it can.
fn wrap(text: &str, indent: &str) -> Vec<String> {
    // Line breaks and tabs in a reason are one space on paper.
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let mut word = word.to_owned();
        loop {
            let used = current.chars().count();
            let room = WRAP.saturating_sub(used + usize::from(used > 0));
            if word.chars().count() <= room {
                if used > 0 {
                    current.push(' ');
                }
                current.push_str(&word);
                break;
            }
            if used > indent.len() {
                lines.push(std::mem::replace(&mut current, indent.to_owned()));
                continue;
            }
            // A word longer than a line is cut.
            let cut: String = word.chars().take(room.max(1)).collect();
            let rest: String = word.chars().skip(room.max(1)).collect();
            current.push_str(&cut);
            lines.push(std::mem::replace(&mut current, indent.to_owned()));
            word = rest;
            if word.is_empty() {
                break;
            }
        }
    }
    if !current.trim().is_empty() {
        lines.push(current);
    }
    lines
}

fn block(row: &AccessRow) -> Vec<Line> {
    let plain = |text: String| {
        wrap(&text, "    ")
            .into_iter()
            .map(|text| Line { text, bold: false })
    };
    let when = |at: Option<latch_core::Timestamp>| at.map_or("-".to_owned(), |at| at.to_string());
    let mut lines = vec![Line {
        text: format!(
            "{}  {} on {} ({}){}",
            row.request_id,
            row.requester,
            row.resource,
            row.role,
            if row.break_glass {
                "  EMERGENCY SELF-APPROVAL"
            } else {
                ""
            }
        ),
        bold: true,
    }];
    lines.extend(plain(format!(
        "Why: {}{}",
        row.reason,
        row.ticket
            .as_ref()
            .map(|ticket| format!(" (ticket {ticket})"))
            .unwrap_or_default()
    )));
    lines.extend(plain(format!(
        "Approved by: {}",
        if row.approvers.is_empty() {
            "-".to_owned()
        } else {
            approvers_text(&row.approvers)
        }
    )));
    lines.extend(plain(format!(
        "Requested {}, decided {}, granted {}, ended {}",
        row.requested_at,
        when(row.decided_at),
        when(row.granted_at),
        when(row.ended_at)
    )));
    lines.extend(plain(format!(
        "Granted for {}, used for {}; outcome: {}",
        human_duration(row.duration_granted_secs),
        human_duration(row.duration_used_secs),
        row.outcome
    )));
    let statements = statements_text(row);
    lines.extend(plain(format!(
        "Sessions: {}; statements: {}; findings: {}",
        row.sessions,
        if statements.is_empty() {
            "none".to_owned()
        } else {
            statements
        },
        if row.findings.is_empty() {
            "none".to_owned()
        } else {
            row.findings.join(", ")
        }
    )));
    lines
}

/// The rows as a PDF document titled `title`, with page numbers; every text is a PDF string
/// (escaped by the writer), never content-stream syntax.
pub fn to_pdf(rows: &[AccessRow], title: &str) -> Vec<u8> {
    let flagged = rows
        .iter()
        .filter(|row| row.break_glass || !row.findings.is_empty())
        .count();
    let mut lines = vec![
        Line {
            text: title.to_owned(),
            bold: true,
        },
        Line {
            text: format!(
                "{} access requests, {flagged} needing attention (emergency access or audit findings). Times are UTC.",
                rows.len()
            ),
            bold: false,
        },
    ];
    let mut blocks: Vec<Vec<Line>> = rows.iter().map(block).collect();
    let replaced = blocks
        .iter()
        .flatten()
        .chain(lines.iter())
        .any(|line| latin1(&line.text).1);
    if replaced {
        lines.push(Line {
            text: "Characters outside Latin-1 are shown as ?: the HTML report shows them."
                .to_owned(),
            bold: false,
        });
    }
    lines.push(Line {
        text: String::new(),
        bold: false,
    });

    // Pages: the heading, then whole blocks (a block that does not fit starts a new page).
    let per_page = ((PAGE_HEIGHT - 2.0 * MARGIN) / LEADING) as usize - 1;
    let mut pages: Vec<Vec<Line>> = vec![lines];
    for block in blocks.drain(..) {
        let used = pages.last().map_or(0, Vec::len);
        if used + block.len() > per_page && used > 0 {
            pages.push(Vec::new());
        }
        if let Some(page) = pages.last_mut() {
            page.extend(block);
            page.push(Line {
                text: String::new(),
                bold: false,
            });
        }
    }

    let mut pdf = Pdf::new();
    let catalog_id = Ref::new(1);
    let tree_id = Ref::new(2);
    let regular_id = Ref::new(3);
    let bold_id = Ref::new(4);
    let mut next = 5;
    let mut alloc = || {
        let id = Ref::new(next);
        next += 1;
        id
    };
    let page_ids: Vec<(Ref, Ref)> = pages.iter().map(|_| (alloc(), alloc())).collect();
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id)
        .kids(page_ids.iter().map(|(page, _)| *page))
        .count(i32::try_from(page_ids.len()).unwrap_or(i32::MAX));
    pdf.type1_font(regular_id)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold_id)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    let total = pages.len();
    for (number, (page_lines, (page_id, content_id))) in pages.iter().zip(&page_ids).enumerate() {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .parent(tree_id)
            .contents(*content_id);
        {
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            fonts.pair(Name(b"F1"), regular_id);
            fonts.pair(Name(b"F2"), bold_id);
        }
        page.finish();

        let mut content = Content::new();
        let mut y = PAGE_HEIGHT - MARGIN;
        for line in page_lines {
            if !line.text.is_empty() {
                let font = if line.bold { b"F2" } else { b"F1" };
                content.begin_text();
                content.set_font(Name(font), SIZE);
                content.next_line(MARGIN, y);
                content.show(Str(&latin1(&line.text).0));
                content.end_text();
            }
            y -= LEADING;
        }
        let footer = format!("page {} of {total}", number + 1);
        content.begin_text();
        content.set_font(Name(b"F1"), SIZE - 1.0);
        content.next_line(MARGIN, MARGIN / 2.0);
        content.show(Str(footer.as_bytes()));
        content.end_text();
        pdf.stream(*content_id, &content.finish());
    }
    pdf.finish()
}
