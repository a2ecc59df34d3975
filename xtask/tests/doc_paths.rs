//! Every Markdown document a code comment cites exists, and so does every section it
//! names, in the style of rust-analyzer's `tidy` tests: plain std code walking the
//! source tree.
//!
//! A citation is a path ending in `.md` in a comment line (`//`, `///`, `//!`) of a
//! `.rs` file under `harness/`, `xtask/` or `scenarios/`. It resolves relative to the
//! repository root, or, for a bare file name, under `docs/`. A quoted section right
//! after the path (`procedure.md "Values by Istio version"`, also written
//! `procedure.md ("Values by Istio version")`, possibly wrapped onto the next comment
//! line) must be a heading of that document: any level, compared case-insensitively.
//! A quotation after a colon (`kind-node.md: "..."`) is a quote, not a section.

use std::fs;
use std::path::{Path, PathBuf};

/// The directories whose `.rs` files are scanned, relative to the repository root.
const SCANNED: &[&str] = &["harness", "xtask", "scenarios"];

/// File names comments mention as files the suite writes (the report's per-version and
/// index summaries), not as documents to read.
const NOT_DOCUMENTS: &[&str] = &["summary.md"];

/// How to fix a failure, printed after the list.
const HOW_TO_FIX: &str = "\
How to fix: for a missing document, add it under docs/ (a bare file name is looked up \
there; a path with a directory is taken from the repository root) or correct the path \
in the comment. For a missing section, add a Markdown heading with exactly that text to \
the document (any level; case and extra spaces do not matter), or correct the quoted \
name in the comment. A file name that is an output of the suite rather than a document \
belongs in NOT_DOCUMENTS in xtask/tests/doc_paths.rs.";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").into()
}

#[test]
fn every_cited_document_and_section_exists() {
    let root = repo_root();
    let problems = check_citations(&root);
    assert!(
        problems.is_empty(),
        "{} citation(s) of documents in code comments do not resolve:\n{}\n\n{HOW_TO_FIX}",
        problems.len(),
        problems.join("\n"),
    );
}

/// The check must see the real tree: a scan that found no citation at all would pass
/// vacuously.
#[test]
fn the_repository_has_citations_to_check() {
    let root = repo_root();
    let cited: Vec<Citation> =
        rust_files(&root).iter().flat_map(|f| citations_in(&root, f)).collect();
    assert!(cited.iter().any(|c| c.path == "procedure.md"), "no citation of procedure.md found");
    assert!(cited.iter().any(|c| c.section.is_some()), "no citation of a section found");
}

/// One citation of a document in a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Citation {
    /// The citing file, relative to the root.
    file: String,
    /// 1-based line of the path.
    line: usize,
    /// The path as written.
    path: String,
    /// The quoted section after the path, whitespace collapsed.
    section: Option<String>,
}

/// Every problem with the citations under `root`, one line each:
/// `file:line: cites X, which does not exist` or a missing section.
fn check_citations(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for file in rust_files(root) {
        for c in citations_in(root, &file) {
            let name = c.path.rsplit('/').next().unwrap_or(&c.path);
            if NOT_DOCUMENTS.contains(&name) {
                continue;
            }
            let Some(doc) = resolve(root, &c.path) else {
                problems
                    .push(format!("{}:{}: cites {}, which does not exist", c.file, c.line, c.path));
                continue;
            };
            let Some(section) = &c.section else { continue };
            let text = match fs::read_to_string(&doc) {
                Ok(text) => text,
                Err(e) => {
                    problems.push(format!("{}:{}: cites {}: {e}", c.file, c.line, c.path));
                    continue;
                }
            };
            let headings = headings(&text);
            if !headings.contains(&normalize(section)) {
                problems.push(format!(
                    "{}:{}: cites {} \"{section}\", but {} has no such heading (it has: {})",
                    c.file,
                    c.line,
                    c.path,
                    doc.strip_prefix(root).unwrap_or(&doc).display(),
                    headings.join(" | "),
                ));
            }
        }
    }
    problems
}

/// The document a cited path names: relative to the root, or a bare name under `docs/`.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = path.strip_prefix("./").unwrap_or(path);
    let direct = root.join(relative);
    if direct.is_file() {
        return Some(direct);
    }
    let in_docs = root.join("docs").join(relative);
    (!relative.contains('/') && in_docs.is_file()).then_some(in_docs)
}

/// Every `.rs` file under the scanned directories, sorted, skipping `target/` and
/// hidden directories.
fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = SCANNED.iter().map(|d| root.join(d)).collect();
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The text of a comment line (after `//`, `///` or `//!`), or `None` for a line that
/// is not a comment line.
fn comment_text(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("//")?;
    let rest = rest.strip_prefix('/').or_else(|| rest.strip_prefix('!')).unwrap_or(rest);
    Some(rest.trim())
}

/// The citations in one file. Consecutive comment lines are joined (with one space)
/// so that a quoted section wrapped onto the next line is read whole.
fn citations_in(root: &Path, file: &Path) -> Vec<Citation> {
    let Ok(source) = fs::read_to_string(file) else { return Vec::new() };
    let shown = file.strip_prefix(root).unwrap_or(file).display().to_string();
    let mut found = Vec::new();
    // The current block of comment lines: joined text, and the line where each
    // line's text starts in it.
    let mut text = String::new();
    let mut starts: Vec<(usize, usize)> = Vec::new();
    let lines: Vec<&str> = source.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        match comment_text(line) {
            Some(t) => {
                if !text.is_empty() {
                    text.push(' ');
                }
                starts.push((text.len(), index + 1));
                text.push_str(t);
            }
            None => {
                found.extend(citations_in_text(&shown, &text, &starts));
                text.clear();
                starts.clear();
            }
        }
    }
    found.extend(citations_in_text(&shown, &text, &starts));
    found
}

fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

/// The citations in one block of joined comment text.
fn citations_in_text(file: &str, text: &str, starts: &[(usize, usize)]) -> Vec<Citation> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(pos) = text[from..].find(".md").map(|p| p + from) {
        let end = pos + 3;
        from = end;
        if bytes.get(end).is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_') {
            continue; // `.mdx`, `.md5`, ...
        }
        let mut start = pos;
        while start > 0 && is_path_byte(bytes[start - 1]) {
            start -= 1;
        }
        let path = &text[start..end];
        let stem_ok = path.len() > 3 && !path.ends_with("/.md") && !path.ends_with("..md");
        // URLs (`https://...`) and paths under placeholders (`<dir>/...`, `${DIR}/...`)
        // are not repository documents.
        let placeholder = start > 0 && matches!(bytes[start - 1], b'>' | b'}' | b'*' | b':');
        if !stem_ok || path.contains("//") || placeholder {
            continue;
        }
        let line = starts.iter().rev().find(|(offset, _)| *offset <= pos).map_or(1, |s| s.1);
        found.push(Citation {
            file: file.to_string(),
            line,
            path: path.to_string(),
            section: section_after(&text[end..]),
        });
    }
    found
}

/// A quoted section right after a cited path: ` "Section"` or ` ("Section")`.
fn section_after(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('(').map_or(rest, str::trim_start);
    let quoted = rest.strip_prefix('"')?;
    let section = &quoted[..quoted.find('"')?];
    let section = section.split_whitespace().collect::<Vec<_>>().join(" ");
    (!section.is_empty()).then_some(section)
}

/// A heading or section name as compared: lowercase, whitespace collapsed.
fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The ATX headings of a Markdown document (`#` to `######`, outside fenced code),
/// normalized.
fn headings(markdown: &str) -> Vec<String> {
    let mut in_fence = false;
    let mut found = Vec::new();
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || line.len() - trimmed.len() > 3 {
            continue;
        }
        let level = trimmed.bytes().take_while(|&b| b == b'#').count();
        if !(1..=6).contains(&level) {
            continue;
        }
        let title = &trimmed[level..];
        if !(title.is_empty() || title.starts_with([' ', '\t'])) {
            continue;
        }
        // An optional closing sequence of `#`s.
        let title = title.trim().trim_end_matches('#').trim_end();
        found.push(normalize(title));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny repository: `files` as (relative path, lines of contents). Lines are given
    /// one per string so that no line of this file starts with a comment marker, which
    /// the real scan would read as a citation.
    fn tree(files: &[(&str, &[&str])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, lines) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, lines.join("\n") + "\n").unwrap();
        }
        dir
    }

    const GUIDE: &[&str] = &[
        "# The guide",
        "",
        "## Roles and topology",
        "",
        "### MetalLB, Istio's way ###",
        "",
        "```sh",
        "# Not a heading",
        "```",
    ];

    #[test]
    fn a_missing_document_is_reported_with_file_and_line() {
        let dir = tree(&[
            ("docs/guide.md", GUIDE),
            (
                "harness/src/lib.rs",
                &["//! The crate.", "//! See nowhere.md for more.", "fn f() {}"],
            ),
        ]);
        let problems = check_citations(dir.path());
        assert_eq!(problems, ["harness/src/lib.rs:2: cites nowhere.md, which does not exist"]);
    }

    #[test]
    fn a_missing_section_is_reported_and_an_existing_one_is_not() {
        let dir = tree(&[
            ("docs/guide.md", GUIDE),
            (
                "xtask/src/main.rs",
                &[
                    "/// guide.md \"Roles and topology\" and guide.md \"roles  AND topology\".",
                    "fn a() {}",
                    "/// guide.md \"Values by version\".",
                    "fn b() {}",
                    "/// guide.md \"Not a heading\".",
                ],
            ),
        ]);
        let problems = check_citations(dir.path());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with(
                "xtask/src/main.rs:3: cites guide.md \"Values by version\", but docs/guide.md \
                 has no such heading"
            ),
            "{problems:?}"
        );
        assert!(problems[0].contains("roles and topology"), "lists the headings: {problems:?}");
        assert!(problems[1].starts_with("xtask/src/main.rs:5: "), "fenced code: {problems:?}");
    }

    #[test]
    fn sections_wrapped_onto_the_next_line_or_in_parentheses_are_read_whole() {
        let dir = tree(&[
            ("docs/guide.md", GUIDE),
            (
                "scenarios/src/lib.rs",
                &[
                    "//! Pools (guide.md \"MetalLB,",
                    "//! Istio's way\"), see guide.md (\"The guide\").",
                    "//! Not a section: guide.md: \"a quotation\".",
                ],
            ),
        ]);
        assert_eq!(check_citations(dir.path()), Vec::<String>::new());
        let found = citations_in(dir.path(), &dir.path().join("scenarios/src/lib.rs"));
        let sections: Vec<_> = found.iter().map(|c| c.section.as_deref()).collect();
        assert_eq!(sections, [Some("MetalLB, Istio's way"), Some("The guide"), None]);
        assert_eq!(found.iter().map(|c| c.line).collect::<Vec<_>>(), [1, 2, 3]);

        let dir = tree(&[
            ("docs/guide.md", GUIDE),
            ("scenarios/src/lib.rs", &["// guide.md \"MetalLB,", "// Linkerd's way\""]),
        ]);
        let problems = check_citations(dir.path());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("\"MetalLB, Linkerd's way\""), "{problems:?}");
    }

    #[test]
    fn paths_with_a_directory_resolve_from_the_root_and_bare_names_under_docs() {
        let dir = tree(&[
            ("docs/guide.md", GUIDE),
            ("scenarios/README.md", &["# Scenarios"]),
            ("README.md", &["# Top"]),
            (
                "harness/src/a.rs",
                &[
                    "/// docs/guide.md, scenarios/README.md, README.md, ./docs/guide.md.",
                    "/// docs/absent.md and guide/guide.md and README.md \"Top\".",
                ],
            ),
        ]);
        assert_eq!(
            check_citations(dir.path()),
            [
                "harness/src/a.rs:2: cites docs/absent.md, which does not exist",
                "harness/src/a.rs:2: cites guide/guide.md, which does not exist",
            ]
        );
    }

    #[test]
    fn outputs_urls_placeholders_code_and_build_output_are_not_citations() {
        let dir = tree(&[
            ("docs/guide.md", GUIDE),
            (
                "harness/src/report.rs",
                &[
                    "/// Writes `<dir>/summary.md` and an index summary.md.",
                    "let s = \"missing.md\"; // a trailing comment is not a comment line",
                    "/// See https://example.com/x/CHANGELOG.md and `${DIR}/x.md`, *.md, .md.",
                    "/// Also other.mdx.",
                ],
            ),
            ("harness/target/debug/build/x.rs", &["//! gone.md"]),
            ("harness/.hidden/x.rs", &["//! gone.md"]),
            ("harness/src/notes.txt", &["//! gone.md"]),
            ("elsewhere/src/lib.rs", &["//! gone.md"]),
        ]);
        assert_eq!(check_citations(dir.path()), Vec::<String>::new());
    }
}
