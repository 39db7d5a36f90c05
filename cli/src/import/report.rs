//! What an import could not carry over (and what it changed on the way), one line per item
//! with its path in the source file.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Something the source configuration does that the output will not do.
    LeftOut,
    /// Carried over with a change worth knowing, or not needed by Switchboard.
    Note,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Where it is in the source file, e.g. `router_settings.routing_strategy`.
    pub path: String,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::LeftOut => "left out",
            Severity::Note => "note",
        };
        write!(f, "{label}: {}: {}", self.path, self.message)
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub items: Vec<Item>,
}

impl Report {
    /// Adds an item; returns its index (for messages finished later).
    pub fn left_out(&mut self, path: impl Into<String>, message: impl Into<String>) -> usize {
        self.push(path.into(), Severity::LeftOut, message.into())
    }

    pub fn note(&mut self, path: impl Into<String>, message: impl Into<String>) -> usize {
        self.push(path.into(), Severity::Note, message.into())
    }

    fn push(&mut self, path: String, severity: Severity, message: String) -> usize {
        self.items.push(Item {
            path,
            severity,
            message,
        });
        self.items.len() - 1
    }

    pub fn left_out_count(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.severity == Severity::LeftOut)
            .count()
    }

    /// Orders the items by `key` of their paths, keeping the order among equal keys.
    pub fn sort_by_path<K: Ord>(&mut self, key: impl Fn(&str) -> K) {
        self.items.sort_by_key(|i| key(&i.path));
    }

    /// One line per item.
    pub fn lines(&self) -> String {
        self.items.iter().map(|i| format!("{i}\n")).collect()
    }
}
